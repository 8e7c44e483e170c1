//! The schema file (docs/internals.md §6; the Go side is `tools/apischema/schema.go`): every
//! API method and hook with its Go signature and exact wire structs, and every named type
//! reachable from them.
//!
//! One model for every consumer: it holds each key one of them reads. A key is optional
//! (`#[serde(default)]`) when any consumer treated it as optional; keys not modelled here
//! (`tags`, `service_method`, `args_type`, `of`, `note`, `wire_note`,
//! `methods` ...) are ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{GoType, SchemaError};

/// The whole schema.
#[derive(Debug, Deserialize)]
pub struct Schema {
    /// Go module path the schema was extracted from.
    pub module: String,
    /// Its version.
    pub version: String,
    /// `plugin.API` methods, in declaration order.
    pub api: Vec<Method>,
    /// `plugin.Hooks` methods, in declaration order (`Implemented` included).
    pub hooks: Vec<Method>,
    /// Named types by short name (`model.Post`).
    pub types: BTreeMap<String, NamedType>,
    /// Names registered with `gob.Register`.
    #[serde(default)]
    pub registered: Vec<Registered>,
}

/// One API method or hook.
#[derive(Debug, Deserialize)]
pub struct Method {
    pub name: String,
    /// The Go doc comment.
    #[serde(default)]
    pub doc: String,
    #[serde(default)]
    pub min_server_version: Option<String>,
    /// The Go signature's parameters.
    pub params: Vec<Param>,
    /// The Go signature's results.
    pub results: Vec<Param>,
    /// The net/rpc args struct (`Z_GetUserArgs`), if the call has one.
    #[serde(default)]
    pub args_struct: Option<String>,
    /// The net/rpc reply struct (`Z_GetUserReturns`), if the call has one.
    #[serde(default)]
    pub returns_struct: Option<String>,
    /// Fields of the args struct, exactly as on the wire.
    #[serde(default)]
    pub args_fields: Vec<Field>,
    /// Fields of the returns struct, exactly as on the wire.
    #[serde(default)]
    pub returns_fields: Vec<Field>,
    /// True when the `Z_` fields are simply the params/results in order.
    #[serde(default)]
    pub regular: bool,
    /// Other wire forms of the same method (`PluginHTTP` is first tried as
    /// `Plugin.PluginHTTPStream`).
    #[serde(default)]
    pub alternates: Vec<Wire>,
}

/// An alternate net/rpc shape of a method.
#[derive(Debug, Deserialize)]
pub struct Wire {
    /// `Plugin.PluginHTTPStream`.
    pub service_method: String,
    #[serde(default)]
    pub args_struct: Option<String>,
    #[serde(default)]
    pub returns_struct: Option<String>,
    #[serde(default)]
    pub args_fields: Vec<Field>,
    #[serde(default)]
    pub returns_fields: Vec<Field>,
}

/// A parameter or result of a Go signature.
#[derive(Debug, Deserialize)]
pub struct Param {
    /// Empty for unnamed results.
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// A `...T` parameter (its type is shown as `[]T`).
    #[serde(default)]
    pub variadic: bool,
}

/// A field of a named struct type or of a `Z_` wire struct.
#[derive(Debug, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// The json tag's name (struct types; empty when there is none).
    #[serde(default)]
    pub json: String,
    #[serde(default)]
    pub embedded: bool,
    /// The Go doc comment (struct types).
    #[serde(default)]
    pub doc: String,
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
    /// `struct`, `named` (any other underlying type) or `interface`.
    pub kind: String,
    /// Full import path of its package.
    #[serde(default)]
    pub package: String,
    /// The Go doc comment.
    #[serde(default)]
    pub doc: String,
    /// Fields of a `struct` (none when `gob` is set: opaque bytes on the wire).
    #[serde(default)]
    pub fields: Vec<Field>,
    /// The underlying type expression of a `named` type.
    #[serde(default)]
    pub underlying: Option<String>,
    /// `GobEncoder` or `BinaryMarshaler` when gob sends the type as that method's bytes.
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

impl Schema {
    /// Parses a schema document.
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        Ok(serde_json::from_str(text)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"module":"m","version":"v","api":[{"name":"X","params":[{"name":"a","type":"*model.Post"}],"results":[{"type":"error"}]}],"hooks":[],"types":{"model.Post":{"kind":"struct","fields":[{"name":"Id","type":"string"}],"gob":null}},"future_key":1}"#;

    #[test]
    fn optional_and_unknown_keys() {
        let s = Schema::parse(MINIMAL).unwrap();
        assert!(s.registered.is_empty());
        let m = s.api_method("X").unwrap();
        assert!(!m.regular && m.args_struct.is_none() && m.args_fields.is_empty());
        assert_eq!(m.results[0].name, "");
        assert_eq!(s.types["model.Post"].fields[0].json, "");
        assert!(s.types["model.Post"].underlying.is_none());
        assert!(s.hook("X").is_none());
    }

    #[test]
    fn resolve_checks_named_types() {
        let s = Schema::parse(MINIMAL).unwrap();
        assert_eq!(
            s.resolve("map[string][]*model.Post").unwrap().to_string(),
            "map[string][]*model.Post"
        );
        assert!(matches!(
            s.resolve("*model.User"),
            Err(SchemaError::Undefined(n)) if n == "model.User"
        ));
        assert!(matches!(s.resolve("map[string"), Err(SchemaError::Type(_))));
        assert!(matches!(
            Schema::parse("{not json"),
            Err(SchemaError::Json(_))
        ));
    }
}
