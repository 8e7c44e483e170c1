//! The schema file written by `tools/apischema` (docs/internals.md §6). Only the parts the
//! generator reads are modelled; unknown keys are ignored so the extractor can grow.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Schema {
    pub module: String,
    pub version: String,
    pub api: Vec<Method>,
    pub hooks: Vec<Method>,
    pub types: BTreeMap<String, Type>,
    #[serde(default)]
    pub registered: Vec<Registered>,
}

#[derive(Debug, Deserialize)]
pub struct Method {
    pub name: String,
    #[serde(default)]
    pub doc: String,
    #[serde(default)]
    pub min_server_version: Option<String>,
    pub params: Vec<Var>,
    pub results: Vec<Var>,
    #[serde(default)]
    pub regular: bool,
}

#[derive(Debug, Deserialize)]
pub struct Var {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub variadic: bool,
}

#[derive(Debug, Deserialize)]
pub struct Type {
    pub kind: String,
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub doc: String,
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub underlying: String,
    #[serde(default)]
    pub gob: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub json: String,
    #[serde(default)]
    pub embedded: bool,
    #[serde(default)]
    pub doc: String,
}

#[derive(Debug, Deserialize)]
pub struct Registered {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}
