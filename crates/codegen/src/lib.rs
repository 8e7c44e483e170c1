//! Generates the mmplug protobuf contract from the extracted Mattermost API schema.
//!
//! Regenerate everything after bumping the pinned `server/public` module:
//!
//! ```text
//! go run ./tools/apischema          # writes schema/mattermost-api.json
//! cargo run -p mmplug-codegen       # writes proto/mattermost/plugin/v1/{models,api,hooks}.proto
//! ```
//!
//! `common.proto` and `http.proto` in the same directory are hand-written and only read (for
//! the names they define). The mapping rules are those of docs/internals.md §7; the choices the
//! contract leaves open are documented on [`generate`](mod@generate). The schema model and the
//! Go type parser are the shared `mmplug-schema` crate's.

pub mod generate;
pub mod names;

use std::path::{Path, PathBuf};

pub use generate::{Generated, generate};
pub use mmplug_schema::Schema;

/// Directory of the generated and hand-written files, relative to the proto root.
pub const PROTO_DIR: &str = "mattermost/plugin/v1";
/// The hand-written files the generated ones import.
pub const HANDWRITTEN: &[&str] = &["common.proto", "http.proto"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid schema: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("Go type {ty:?}: {msg}")]
    GoType { ty: String, msg: String },
    #[error("{0}")]
    Unsupported(String),
}

impl From<mmplug_schema::ParseError> for Error {
    fn from(e: mmplug_schema::ParseError) -> Self {
        Error::GoType {
            ty: e.expr,
            msg: format!("{} at byte {}", e.message, e.at),
        }
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a schema file.
pub fn load_schema(path: &Path) -> Result<Schema, Error> {
    let text = read(path)?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Generates from `schema_path` into `proto_root`. With `check`, writes nothing and returns
/// the files whose content would change (empty when up to date); otherwise writes the files
/// that changed and returns them.
pub fn run(schema_path: &Path, proto_root: &Path, check: bool) -> Result<Vec<PathBuf>, Error> {
    let schema = load_schema(schema_path)?;
    let dir = proto_root.join(PROTO_DIR);
    let mut handwritten = Vec::new();
    for name in HANDWRITTEN {
        handwritten.push(read(&dir.join(name))?);
    }
    let refs: Vec<&str> = handwritten.iter().map(String::as_str).collect();
    let out = generate(&schema, &refs)?;
    let mut changed = Vec::new();
    for (name, content) in &out.files {
        let path = dir.join(name);
        let old = std::fs::read_to_string(&path).ok();
        if old.as_deref() == Some(content.as_str()) {
            continue;
        }
        if !check {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            std::fs::write(&path, content).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        changed.push(path);
    }
    Ok(changed)
}
