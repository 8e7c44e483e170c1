//! The bridge's own log lines and those it forwards from Python, with their levels. The line
//! shape (hclog JSON on stderr: level, message with its fields, time) is the transport's:
//! [`goplugin::log`].

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
    goplugin::log::format_line(level.as_str(), module, message, fields)
}

pub use goplugin::log::{entry, message_with_fields, timestamp_now, write_line};

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
    fn line_is_hclog_json_with_fields_in_the_message_and_a_time() {
        let line = format_line(Level::Warn, "m", "hello \"x\"", &[("k", "v".into())]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "hello \"x\" (k=v)");
        assert!(v["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(v.get("@module").is_none() && v.get("k").is_none());
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(Level::parse("TRACE"), Some(Level::Debug));
        assert_eq!(Level::parse("Warn"), Some(Level::Warn));
        assert_eq!(Level::parse("nope"), None);
    }
}
