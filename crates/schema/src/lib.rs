//! mmplug-schema: the extracted Mattermost API schema (`schema/mattermost-api.json`, written
//! by `tools/apischema` from the pinned `server/public` module) and the Go type expressions
//! it is written in. Both consumers read it through this crate: `mmplug-codegen` (schema →
//! `.proto`) and `mmplug-bridge` (schema-driven gob ⇄ protobuf translation).
//!
//! - [`Schema`] and its parts: one serde model of the file (docs/internals.md §6). It holds
//!   every key either consumer reads; unknown keys are ignored so the extractor can grow.
//! - [`GoType`]: one parser for the type expressions (`*model.Post`, `map[string][]string`,
//!   `[4]uint8`, `interface {}`, `error`, `struct {}`,
//!   `model.PropertyOptions[*model.PluginPropertyOption]` ...), printed back by `Display`.
//!
//! This is the lowest layer of the workspace: it knows the file format and Go's type syntax,
//! not gob, protobuf or any consumer.

mod gotype;
mod model;

pub use gotype::{Basic, GoType, ParseError};
pub use model::{Field, Method, NamedType, Param, Registered, Schema, Wire};

/// Errors loading a schema or resolving its type expressions.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The document is not a schema.
    #[error("schema is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A type expression does not parse.
    #[error(transparent)]
    Type(#[from] ParseError),
    /// A type expression names a type the schema does not define.
    #[error("schema names type {0} but does not define it")]
    Undefined(String),
    /// A well-formed type a consumer cannot carry (the bridge: unnamed interfaces with
    /// methods, unnamed structs with fields).
    #[error("schema uses type {0}, which is not supported")]
    Unsupported(String),
}
