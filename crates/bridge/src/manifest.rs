//! The plugin's `plugin.json`, as far as the bridge needs it.
//!
//! Mattermost runs the executable with the *server's* working directory and no arguments, so the
//! bridge finds its bundle by walking up from its own path to the first directory holding a
//! `plugin.json` (the executable normally sits at `server/dist/plugin-linux-amd64`).
//!
//! mmplug's own settings live under `props.mmplug` so the stock manifest schema is untouched:
//!
//! ```json
//! { "id": "com.example.hello", "props": { "mmplug": {
//!     "entry": "plugin.py",              // the Python module to run, relative to the bundle
//!     "env": ["HTTPS_PROXY"],            // server environment variables Python may see
//!     "ready_timeout_seconds": 60,       // how long activation waits for Python
//!     "hook_timeout_seconds": 30,        // how long a hook may run before the server gets
//!                                        // its answer without Python (see bridge.rs)
//!     "hook_timeouts": {"MessageWillBePosted": 5},  // per-hook overrides, in seconds
//!     "on_failure": {"UserWillLogIn": "reject"},     // per gating hook: "reject" or "allow"
//!     "cpu_placement": "together"        // bridge and Python on one CPU, or "any" (see cpu.rs)
//! } } }
//! ```
//!
//! `on_failure` decides what a gating hook (one whose last result is a rejection reason)
//! answers when the bridge cannot get Python's decision: see [`FailurePolicy`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cpu::Placement;

/// Errors finding or reading the manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("no plugin.json found in {0} or any parent directory")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid plugin manifest: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    id: String,
    #[serde(default)]
    props: Option<RawProps>,
}

#[derive(Debug, Deserialize)]
struct RawProps {
    #[serde(default)]
    mmplug: Option<RawSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    entry: Option<String>,
    #[serde(default)]
    env: Vec<String>,
    ready_timeout_seconds: Option<u64>,
    hook_timeout_seconds: Option<u64>,
    #[serde(default)]
    hook_timeouts: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    on_failure: std::collections::BTreeMap<String, FailurePolicy>,
    cpu_placement: Option<Placement>,
}

/// What a gating hook answers when the bridge cannot get Python's decision: the request could
/// not be translated, Python was not running, did not answer within the hook's time limit, or
/// answered with something the bridge could not read. A plugin's own exception is not such a
/// failure (the server proceeds as if the hook changed nothing, as documented in the guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Reject the post, edit, upload, … with a reason naming the plugin (fail closed).
    Reject,
    /// Let it through unchanged, as the server does for a Go plugin that fails (fail open).
    Allow,
}

/// Gating hooks that fail closed unless plugin.json says otherwise: those that let content
/// in. The others (logins, channel and team membership, downloads, notifications) fail open
/// by default, because rejecting them while Python is down would lock users out of the
/// server; `props.mmplug.on_failure` turns any of them to `reject`.
pub const REJECT_ON_FAILURE: &[&str] = &[
    "MessageWillBePosted",
    "MessageWillBeUpdated",
    "FileWillBeUploaded",
    "ScheduledPostWillBeCreated",
    "DraftWillBeUpserted",
];

/// What the bridge reads from the manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The bundle directory (where plugin.json is).
    pub dir: PathBuf,
    /// The plugin id.
    pub id: String,
    /// Absolute path of the Python module to run.
    pub entry: PathBuf,
    /// Names of server environment variables passed through to Python.
    pub env_passthrough: Vec<String>,
    /// How long activation waits for the Python process to become ready.
    pub ready_timeout: Duration,
    /// How long a hook may take in Python (ServeHTTP, ServeMetrics and FileWillBeUploaded are
    /// streams and have none: their bodies are the pace).
    pub hook_timeout: Duration,
    /// Per-hook overrides of `hook_timeout`.
    pub hook_timeouts: std::collections::BTreeMap<String, Duration>,
    /// Per-hook overrides of the default failure policy ([`REJECT_ON_FAILURE`]).
    pub on_failure: std::collections::BTreeMap<String, FailurePolicy>,
    /// Where the bridge and Python run ([`crate::cpu`]).
    pub cpu_placement: Placement,
}

/// Default module name when the manifest names none.
pub const DEFAULT_ENTRY: &str = "plugin.py";
/// Default readiness wait: generous, because importing a large Python app can take seconds
/// and activation is allowed to wait (the handshake is already out).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default per-hook limit: long enough for any reasonable hook, short enough that a hung Python
/// never holds a user's post (or the server's hook goroutine) for long.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

impl Manifest {
    /// The time limit for one call of hook `name`.
    pub fn timeout_of(&self, name: &str) -> Duration {
        self.hook_timeouts
            .get(name)
            .copied()
            .unwrap_or(self.hook_timeout)
    }

    /// What gating hook `name` answers when the bridge cannot get Python's decision.
    pub fn failure_policy_of(&self, name: &str) -> FailurePolicy {
        match self.on_failure.get(name) {
            Some(p) => *p,
            None if REJECT_ON_FAILURE.contains(&name) => FailurePolicy::Reject,
            None => FailurePolicy::Allow,
        }
    }

    /// Finds the manifest by walking up from `start` (normally the executable's directory).
    pub fn discover(start: &Path) -> Result<Manifest, ManifestError> {
        let mut dir = Some(start);
        while let Some(d) = dir {
            let candidate = d.join("plugin.json");
            if candidate.is_file() {
                return Manifest::load(d);
            }
            dir = d.parent();
        }
        Err(ManifestError::NotFound(start.to_path_buf()))
    }

    /// Reads `dir/plugin.json`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join("plugin.json");
        let text = std::fs::read(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        let raw: RawManifest =
            serde_json::from_slice(&text).map_err(|source| ManifestError::Parse {
                path: path.clone(),
                source,
            })?;
        if raw.id.is_empty() {
            return Err(ManifestError::Invalid {
                path,
                message: "\"id\" is empty".into(),
            });
        }
        let settings = raw.props.and_then(|p| p.mmplug).unwrap_or_default();
        let entry_rel = settings.entry.unwrap_or_else(|| DEFAULT_ENTRY.to_string());
        let entry = safe_join(dir, &entry_rel).ok_or_else(|| ManifestError::Invalid {
            path: path.clone(),
            message: format!(
                "props.mmplug.entry {entry_rel:?} must be a relative path inside the bundle"
            ),
        })?;
        if let Some(zero) = settings
            .hook_timeouts
            .iter()
            .find(|(_, s)| **s == 0)
            .map(|(h, _)| h.clone())
            .or_else(|| (settings.hook_timeout_seconds == Some(0)).then(|| "*".to_string()))
        {
            return Err(ManifestError::Invalid {
                path,
                message: format!("a hook timeout of 0 s ({zero}) would fail every call"),
            });
        }
        Ok(Manifest {
            dir: dir.to_path_buf(),
            id: raw.id,
            entry,
            env_passthrough: settings.env,
            ready_timeout: settings
                .ready_timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_READY_TIMEOUT),
            hook_timeout: settings
                .hook_timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_HOOK_TIMEOUT),
            hook_timeouts: settings
                .hook_timeouts
                .into_iter()
                .map(|(h, s)| (h, Duration::from_secs(s)))
                .collect(),
            on_failure: settings.on_failure,
            cpu_placement: settings.cpu_placement.unwrap_or_default(),
        })
    }
}

/// Joins a manifest-supplied relative path to the bundle dir, refusing absolute paths and `..`.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return None;
    }
    for c in rel.components() {
        match c {
            std::path::Component::Normal(_) | std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(dir.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) {
        std::fs::write(dir.join("plugin.json"), json).unwrap();
    }

    #[test]
    fn discovers_from_nested_executable_dir() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            r#"{"id":"com.example.x","props":{"mmplug":{"entry":"src/main.py","env":["A"]}}}"#,
        );
        let nested = tmp.path().join("server/dist");
        std::fs::create_dir_all(&nested).unwrap();
        let m = Manifest::discover(&nested).unwrap();
        assert_eq!(m.id, "com.example.x");
        assert_eq!(m.entry, tmp.path().join("src/main.py"));
        assert_eq!(m.env_passthrough, vec!["A".to_string()]);
        assert_eq!(m.ready_timeout, DEFAULT_READY_TIMEOUT);
        assert_eq!(m.timeout_of("MessageWillBePosted"), DEFAULT_HOOK_TIMEOUT);
    }

    #[test]
    fn failure_policy_defaults_and_overrides() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), r#"{"id":"x"}"#);
        let m = Manifest::load(tmp.path()).unwrap();
        for content in REJECT_ON_FAILURE {
            assert_eq!(
                m.failure_policy_of(content),
                FailurePolicy::Reject,
                "{content}"
            );
        }
        assert_eq!(m.failure_policy_of("UserWillLogIn"), FailurePolicy::Allow);
        write(
            tmp.path(),
            r#"{"id":"x","props":{"mmplug":{"on_failure":{"UserWillLogIn":"reject","MessageWillBePosted":"allow"}}}}"#,
        );
        let m = Manifest::load(tmp.path()).unwrap();
        assert_eq!(m.failure_policy_of("UserWillLogIn"), FailurePolicy::Reject);
        assert_eq!(
            m.failure_policy_of("MessageWillBePosted"),
            FailurePolicy::Allow
        );
        write(
            tmp.path(),
            r#"{"id":"x","props":{"mmplug":{"on_failure":{"UserWillLogIn":"closed"}}}}"#,
        );
        assert!(matches!(
            Manifest::load(tmp.path()),
            Err(ManifestError::Parse { .. })
        ));
    }

    #[test]
    fn hook_timeouts_default_and_override() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            r#"{"id":"x","props":{"mmplug":{"hook_timeout_seconds":7,"hook_timeouts":{"MessageWillBePosted":2}}}}"#,
        );
        let m = Manifest::load(tmp.path()).unwrap();
        assert_eq!(m.timeout_of("MessageWillBePosted"), Duration::from_secs(2));
        assert_eq!(m.timeout_of("OnDeactivate"), Duration::from_secs(7));
        write(
            tmp.path(),
            r#"{"id":"x","props":{"mmplug":{"hook_timeouts":{"OnActivate":0}}}}"#,
        );
        let err = Manifest::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("OnActivate") && err.contains("0 s"), "{err}");
    }

    #[test]
    fn cpu_placement_defaults_to_together() {
        let tmp = tempfile::tempdir().unwrap();
        for (settings, want) in [
            ("{}", Some(Placement::Together)),
            (r#"{"cpu_placement":"together"}"#, Some(Placement::Together)),
            (r#"{"cpu_placement":"any"}"#, Some(Placement::Any)),
            (r#"{"cpu_placement":"spread"}"#, None),
        ] {
            write(
                tmp.path(),
                &format!(r#"{{"id":"x","props":{{"mmplug":{settings}}}}}"#),
            );
            match (Manifest::load(tmp.path()), want) {
                (Ok(m), Some(want)) => assert_eq!(m.cpu_placement, want, "{settings}"),
                (Err(e), None) => assert!(e.to_string().contains("spread"), "{e}"),
                (got, _) => panic!("{settings}: {got:?}"),
            }
        }
    }

    #[test]
    fn defaults_entry() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), r#"{"id":"x"}"#);
        assert_eq!(
            Manifest::load(tmp.path()).unwrap().entry,
            tmp.path().join("plugin.py")
        );
    }

    #[test]
    fn rejects_escaping_entry_and_unknown_settings() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            r#"{"id":"x","props":{"mmplug":{"entry":"../evil.py"}}}"#,
        );
        let err = Manifest::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("inside the bundle"), "{err}");
        write(
            tmp.path(),
            r#"{"id":"x","props":{"mmplug":{"entyr":"a.py"}}}"#,
        );
        let err = Manifest::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("entyr"), "{err}");
    }

    #[test]
    fn missing_manifest_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Manifest::discover(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("no plugin.json"), "{err}");
    }
}
