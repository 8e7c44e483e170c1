//! The extracted Mattermost API schema (`schema/mattermost-api.json`, written by
//! tools/apischema from the pinned `server/public` module): every API method and hook with
//! its Go signature and exact wire structs, and every named type reachable from them.
//!
//! The bridge embeds the file it was built with; the format is specified in
//! docs/internals.md ("The schema").

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::gotype::{GoType, ParseError};

/// The schema file compiled into this bridge.
pub const EMBEDDED: &str = include_str!("../../../schema/mattermost-api.json");

/// The whole schema.
#[derive(Debug, Deserialize)]
pub struct Schema {
    /// Go module path the schema was extracted from.
    pub module: String,
    /// Its version.
    pub version: String,
    /// `plugin.API` methods, in declaration order.
    pub api: Vec<Method>,
    /// `plugin.Hooks` methods, in declaration order.
    pub hooks: Vec<Method>,
    /// Named types by short name (`model.Post`).
    pub types: BTreeMap<String, NamedType>,
    /// Names registered with `gob.Register`.
    pub registered: Vec<Registered>,
}

/// One API method or hook.
#[derive(Debug, Deserialize)]
pub struct Method {
    pub name: String,
    #[serde(default)]
    pub doc: String,
    #[serde(default)]
    pub min_server_version: Option<String>,
    pub params: Vec<Param>,
    pub results: Vec<Param>,
    pub args_struct: Option<String>,
    pub returns_struct: Option<String>,
    #[serde(default)]
    pub args_fields: Vec<Field>,
    #[serde(default)]
    pub returns_fields: Vec<Field>,
    pub regular: bool,
}

/// A parameter or result of a Go signature.
#[derive(Debug, Deserialize)]
pub struct Param {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// A struct field.
#[derive(Debug, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub embedded: bool,
    /// For `Z_` struct fields: `param` or `result` when the field carries the signature's
    /// parameter/result number `index`; anything else (stream ids) needs the method's own path.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub index: Option<usize>,
}

/// A named Go type.
#[derive(Debug, Deserialize)]
pub struct NamedType {
    pub kind: String,
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub underlying: Option<String>,
    #[serde(default)]
    pub gob: Option<String>,
}

/// A `gob.Register` name and the type it stands for.
#[derive(Debug, Deserialize)]
pub struct Registered {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// Errors loading the schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Type(#[from] ParseError),
    #[error("schema names type {0} but does not define it")]
    Undefined(String),
}

impl Schema {
    /// Parses a schema document.
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The schema this bridge was built with.
    pub fn embedded() -> Result<Schema, SchemaError> {
        Schema::parse(EMBEDDED)
    }

    /// Looks a method up by name among the API methods.
    pub fn api_method(&self, name: &str) -> Option<&Method> {
        self.api.iter().find(|m| m.name == name)
    }

    /// Looks a hook up by name.
    pub fn hook(&self, name: &str) -> Option<&Method> {
        self.hooks.iter().find(|m| m.name == name)
    }

    /// Parses a type expression, checking that every named type in it is defined.
    pub fn resolve(&self, expr: &str) -> Result<GoType, SchemaError> {
        let t = GoType::parse(expr)?;
        self.check_defined(&t)?;
        Ok(t)
    }

    fn check_defined(&self, t: &GoType) -> Result<(), SchemaError> {
        match t {
            GoType::Named(n) if !self.types.contains_key(n) => {
                Err(SchemaError::Undefined(n.clone()))
            }
            GoType::Ptr(e) | GoType::Slice(e) | GoType::Array(_, e) => self.check_defined(e),
            GoType::Map(k, v) => {
                self.check_defined(k)?;
                self.check_defined(v)
            }
            _ => Ok(()),
        }
    }
}
