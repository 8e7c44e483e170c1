//! The bridge's own log lines, written to stderr in the JSON shape go-plugin's host parses
//! (hclog: `@level`, `@message`, extra keys become key-value pairs in the server log).
//!
//! `@timestamp` is left out on purpose: go-plugin rejects the whole line as non-JSON when the
//! timestamp is not in its exact layout, and the server stamps the entry itself.

use std::io::Write;

/// Log levels understood by go-plugin's stderr parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The lowercase name hclog expects in `@level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// Parses an hclog level name, case-insensitively (`trace` counts as debug, as the
    /// Mattermost hclog adapter maps it).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "trace" | "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" | "critical" | "fatal" => Some(Level::Error),
            _ => None,
        }
    }
}

/// Formats one log line (without the newline).
pub fn format_line(level: Level, module: &str, message: &str, fields: &[(&str, String)]) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("@level".into(), level.as_str().into());
    obj.insert("@message".into(), message.into());
    obj.insert("@module".into(), module.into());
    for (k, v) in fields {
        obj.insert((*k).to_string(), v.clone().into());
    }
    serde_json::Value::Object(obj).to_string()
}

/// Writes one line to stderr. A failed write is ignored: stderr is the only place we could
/// report it, and the server reading it has gone away.
pub fn write_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
    let _ = err.flush();
}

/// Logs a message from the bridge itself.
pub fn log(level: Level, message: &str, fields: &[(&str, String)]) {
    write_line(&format_line(level, "mmplug-bridge", message, fields));
}

/// `log(Level::Info, ..)` with no fields.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// `log(Level::Warn, ..)` with no fields.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// `log(Level::Error, ..)` with no fields.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_hclog_json_without_timestamp() {
        let line = format_line(Level::Warn, "m", "hello \"x\"", &[("k", "v".into())]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "hello \"x\"");
        assert_eq!(v["@module"], "m");
        assert_eq!(v["k"], "v");
        assert!(v.get("@timestamp").is_none());
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(Level::parse("TRACE"), Some(Level::Debug));
        assert_eq!(Level::parse("Warn"), Some(Level::Warn));
        assert_eq!(Level::parse("nope"), None);
    }
}
