//! The extracted Mattermost API schema this bridge was built with. The file
//! (`schema/mattermost-api.json`, written by tools/apischema from the pinned `server/public`
//! module; format in docs/internals.md "The schema") is compiled in; its model, the Go type
//! parser and [`Schema::resolve`] are the shared `mmplug-schema` crate's.

use mmplug_schema::{Schema, SchemaError};

/// The schema file compiled into this bridge.
pub static EMBEDDED: &str = include_str!("../../../schema/mattermost-api.json");

/// The schema this bridge was built with.
pub fn embedded() -> Result<Schema, SchemaError> {
    Schema::parse(EMBEDDED)
}
