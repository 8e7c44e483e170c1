//! The launch handshake: magic cookie, protocol version, and the stdout line.
//!
//! Facts (hashicorp/go-plugin v1.8.0 `server.go` `Serve`, `protocolVersion`):
//! - An empty cookie key or value in the plugin's own config is a misconfiguration; a
//!   cookie env var that differs from the value means "not launched by a host". Both print
//!   a fixed text to stderr and exit with status 1.
//! - `PLUGIN_PROTOCOL_VERSIONS` is a comma list of ints; a bad entry prints
//!   `server sent invalid plugin version "X"` (no newline) to stderr and is skipped.
//! - The served version is the highest one we have that the host offered, else the lowest
//!   we have (the host then reports the mismatch itself).
//! - The line is `CORE|APP|NETWORK|ADDR|PROTOCOL|CERT` + `\n`, CORE = 1, CERT empty here.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// go-plugin's own protocol version (`CoreProtocolVersion`).
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// Exit status go-plugin uses for both cookie failures.
pub const COOKIE_EXIT_CODE: i32 = 1;

/// Printed when the cookie env var is missing or wrong (go-plugin's exact text).
pub const NOT_A_PLUGIN_MESSAGE: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// Printed when the serve config itself has no cookie (go-plugin's exact text).
pub const MISCONFIGURED_MESSAGE: &str = "Misconfigured ServeConfig given to serve this plugin: no magic cookie\n\
key or value was set. Please notify the plugin author and report\n\
this as a bug.\n";

/// What must match between host and plugin before anything else happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// The application protocol version (Mattermost: 1).
    pub protocol_version: u32,
    /// Env var the host sets (Mattermost: `MATTERMOST_PLUGIN`).
    pub magic_cookie_key: String,
    /// Value it must hold.
    pub magic_cookie_value: String,
}

impl HandshakeConfig {
    /// Mattermost's handshake (`server/public/plugin/api.go`).
    pub fn mattermost() -> HandshakeConfig {
        HandshakeConfig {
            protocol_version: 1,
            magic_cookie_key: "MATTERMOST_PLUGIN".into(),
            magic_cookie_value: "Securely message teams, anywhere.".into(),
        }
    }
}

impl Default for HandshakeConfig {
    fn default() -> HandshakeConfig {
        HandshakeConfig::mattermost()
    }
}

/// Why the cookie check failed; `Display` is go-plugin's stderr text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// Our own config has an empty key or value.
    #[error("{}", MISCONFIGURED_MESSAGE)]
    Misconfigured,
    /// The env var is absent or different: we were not launched by a plugin host.
    #[error("{}", NOT_A_PLUGIN_MESSAGE)]
    NotLaunchedByHost,
}

impl CookieError {
    /// The exit status go-plugin uses.
    pub fn exit_code(&self) -> i32 {
        COOKIE_EXIT_CODE
    }
}

/// Checks the cookie against `env` (a lookup such as `|k| std::env::var(k).ok()`).
pub fn check_cookie(
    config: &HandshakeConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), CookieError> {
    if config.magic_cookie_key.is_empty() || config.magic_cookie_value.is_empty() {
        return Err(CookieError::Misconfigured);
    }
    // An unset variable reads as "" in Go, which can never equal the non-empty value.
    match env(&config.magic_cookie_key) {
        Some(v) if v == config.magic_cookie_value => Ok(()),
        _ => Err(CookieError::NotLaunchedByHost),
    }
}

/// Picks the protocol version to serve from the versions we have and the host's
/// `PLUGIN_PROTOCOL_VERSIONS` value. Returns the version and the warnings go-plugin would
/// print to stderr for unparsable entries (already formatted, without newline, as Go does).
///
/// Returns `None` only when `ours` is empty.
pub fn negotiate_version(ours: &BTreeSet<u32>, host_offer: Option<&str>) -> (Option<u32>, String) {
    let mut warnings = String::new();
    let mut offered = Vec::new();
    if let Some(list) = host_offer.filter(|s| !s.is_empty()) {
        for s in list.split(',') {
            match s.parse::<i64>() {
                Ok(v) => offered.push(v),
                Err(_) => {
                    let _ = write!(
                        warnings,
                        "server sent invalid plugin version {}",
                        go_quote(s)
                    );
                }
            }
        }
    }
    let best = ours
        .iter()
        .rev()
        .find(|v| offered.contains(&i64::from(**v)))
        .or_else(|| ours.iter().next())
        .copied();
    (best, warnings)
}

/// The handshake line for a unix socket at `path`, with its trailing newline.
pub fn handshake_line(app_version: u32, socket_path: &str) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{app_version}|unix|{socket_path}|netrpc|\n")
}

/// Go's `%q` for the strings we print: quotes, Go escapes for control bytes.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(key: &'static str, val: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| (k == key).then(|| val.to_string())
    }

    #[test]
    fn cookie_must_match_exactly() {
        let c = HandshakeConfig::mattermost();
        assert_eq!(
            check_cookie(
                &c,
                env_with("MATTERMOST_PLUGIN", "Securely message teams, anywhere.")
            ),
            Ok(())
        );
        assert_eq!(
            check_cookie(
                &c,
                env_with("MATTERMOST_PLUGIN", "Securely message teams, anywhere")
            ),
            Err(CookieError::NotLaunchedByHost)
        );
        assert_eq!(
            check_cookie(&c, |_| None),
            Err(CookieError::NotLaunchedByHost)
        );
        let mut bad = c.clone();
        bad.magic_cookie_value.clear();
        assert_eq!(
            check_cookie(&bad, |_| None),
            Err(CookieError::Misconfigured)
        );
        assert!(
            CookieError::NotLaunchedByHost
                .to_string()
                .starts_with("This binary is a plugin.")
        );
        assert_eq!(CookieError::Misconfigured.exit_code(), 1);
    }

    #[test]
    fn version_is_highest_common_else_lowest_ours() {
        let ours: BTreeSet<u32> = [1, 2, 5].into();
        assert_eq!(negotiate_version(&ours, Some("1,2")).0, Some(2));
        assert_eq!(negotiate_version(&ours, Some("5,1")).0, Some(5));
        assert_eq!(negotiate_version(&ours, Some("7")).0, Some(1));
        assert_eq!(negotiate_version(&ours, None).0, Some(1));
        assert_eq!(negotiate_version(&BTreeSet::new(), Some("1")).0, None);
    }

    #[test]
    fn bad_version_entries_warn_like_go() {
        let ours: BTreeSet<u32> = [1].into();
        let (v, warn) = negotiate_version(&ours, Some("x,1, 2"));
        assert_eq!(v, Some(1));
        assert_eq!(
            warn,
            "server sent invalid plugin version \"x\"server sent invalid plugin version \" 2\""
        );
    }

    #[test]
    fn line_has_six_fields_and_newline() {
        assert_eq!(
            handshake_line(1, "/tmp/plugin123"),
            "1|1|unix|/tmp/plugin123|netrpc|\n"
        );
    }
}
