//! Generates the mmplug protobuf contract from the extracted Mattermost API schema.
//!
//! Regenerate everything after bumping the pinned `server/public` module:
//!
//! ```text
//! go run ./tools/apischema          # writes schema/mattermost-api.json
//! cargo run -p mmplug-codegen       # writes proto/mattermost/plugin/v1/{models,api,hooks}.proto,
//!                                   # python/src/mattermost_plugin/_generated/*.py
//!                                   # and docs/reference/{hooks,api}.md
//! ```
//!
//! `common.proto` and `http.proto` in the same directory are hand-written and only read (for
//! the names they define). The mapping rules are those of docs/internals.md §7; the choices the
//! contract leaves open are documented on [`generate`](mod@generate). The schema model and the
//! Go type parser are the shared `mmplug-schema` crate's.

pub mod generate;
pub mod names;
pub mod python;
pub mod reference;

use std::path::{Path, PathBuf};

pub use generate::{Generated, generate};
pub use mmplug_schema::Schema;
pub use python::{PY_DIR, generate_python};
pub use reference::{REFERENCE_DIR, generate_reference};

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

/// Where the generator writes.
#[derive(Debug, Clone)]
pub struct OutDirs {
    /// The proto root (`proto/`).
    pub proto_root: PathBuf,
    /// The `mattermost_plugin` package directory.
    pub python_pkg: PathBuf,
    /// The Markdown reference (`docs/reference/`).
    pub docs: PathBuf,
}

/// Everything the generator writes: (path, content), proto files under `proto_root`, Python
/// modules under `python_pkg`, the reference pages under `docs`.
pub fn generate_all(schema_path: &Path, dirs: &OutDirs) -> Result<Vec<(PathBuf, String)>, Error> {
    let (proto_root, python_pkg) = (&dirs.proto_root, &dirs.python_pkg);
    let schema = load_schema(schema_path)?;
    let dir = proto_root.join(PROTO_DIR);
    let mut handwritten = Vec::new();
    for name in HANDWRITTEN {
        handwritten.push(read(&dir.join(name))?);
    }
    let refs: Vec<&str> = handwritten.iter().map(String::as_str).collect();
    let out = generate(&schema, &refs)?;
    let named: Vec<(&str, &str)> = HANDWRITTEN
        .iter()
        .map(|f| f.trim_end_matches(".proto"))
        .zip(refs.iter().copied())
        .collect();
    let py = generate_python(&schema, &out, &named)?;
    let reference = generate_reference(&schema, &out, &named)?;
    let mut files: Vec<(PathBuf, String)> = out
        .files
        .into_iter()
        .map(|(name, content)| (dir.join(name), content))
        .collect();
    let py_dir = python_pkg.join(PY_DIR);
    files.extend(
        py.into_iter()
            .map(|(name, content)| (py_dir.join(name), content)),
    );
    files.extend(
        reference
            .into_iter()
            .map(|(name, content)| (dirs.docs.join(name), content)),
    );
    Ok(files)
}

/// Generates from `schema_path` into `dirs`. With `check`, writes
/// nothing and returns the files whose content would change (empty when up to date);
/// otherwise writes the files that changed and returns them.
pub fn run(schema_path: &Path, dirs: &OutDirs, check: bool) -> Result<Vec<PathBuf>, Error> {
    let files = generate_all(schema_path, dirs)?;
    let mut changed = Vec::new();
    for (path, content) in &files {
        let path = path.clone();
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
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
