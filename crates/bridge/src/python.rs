//! The Python process: interpreter discovery, a scrubbed environment, spawn, log forwarding,
//! and shutdown.
//!
//! The child is locked down: it sees only an allow-list of the server's environment (the server
//! passes everything it has, database DSNs included), talks to the bridge over unix sockets in a
//! private 0700 directory, and must present a per-launch token on every call (checked by the
//! gRPC layer). It runs in its own process group so a terminal's Ctrl-C reaches only the server,
//! and it gets SIGKILL from the kernel if the bridge dies (`PR_SET_PDEATHSIG`), so a SIGKILLed
//! bridge leaves no orphan.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::log::{self, Level};
use crate::manifest::Manifest;
use crate::pyenv::PythonSetup;

/// Server environment variables every Python process may see: enough to run an interpreter and
/// find locale/time-zone data, nothing that configures the server.
pub const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// How long an exited Python's remaining output may take to be forwarded.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// How many stderr lines are kept to explain a Python process that died.
const STDERR_TAIL_LINES: usize = 40;

/// Errors starting or supervising Python.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error(
        "no Python interpreter found: looked for venv/bin/python3, venv/bin/python, .venv/bin/python3, .venv/bin/python in {dir} and python3 on PATH; install Python {}.{} or newer or ship a venv in the bundle",
        crate::pyenv::MIN_PYTHON.0,
        crate::pyenv::MIN_PYTHON.1
    )]
    NoInterpreter { dir: PathBuf },
    #[error("cannot create the private socket directory: {0}")]
    PrivateDir(std::io::Error),
    #[error("cannot start {interpreter}: {source}")]
    Spawn {
        interpreter: PathBuf,
        source: std::io::Error,
    },
}

/// Finds the interpreter: a plugin-local venv first (the bundle's own dependencies), then
/// `python3` on the given PATH.
pub fn find_interpreter(
    plugin_dir: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, PythonError> {
    for rel in [
        "venv/bin/python3",
        "venv/bin/python",
        ".venv/bin/python3",
        ".venv/bin/python",
    ] {
        let candidate = plugin_dir.join(rel);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    if let Some(candidate) = on_path("python3", path_var) {
        return Ok(candidate);
    }
    Err(PythonError::NoInterpreter {
        dir: plugin_dir.to_path_buf(),
    })
}

/// The first executable file called `name` in the directories of `path_var` (a PATH value).
pub(crate) fn on_path(name: &str, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Builds the child's environment from the server's: the allow-list plus the manifest's
/// opt-ins, then mmplug's own variables.
pub fn scrubbed_env(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    opt_in: &[String],
) -> Vec<(OsString, OsString)> {
    inherited
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            ENV_ALLOW.contains(&k.as_ref()) || opt_in.iter().any(|o| o == k.as_ref())
        })
        .collect()
}

/// Where the two processes meet: a private directory with both sockets, and the token.
#[derive(Debug)]
pub struct Rendezvous {
    dir: tempfile::TempDir,
    /// Unix socket the bridge serves `PluginAPI` on.
    pub api_socket: PathBuf,
    /// Unix socket Python serves `PluginHooks` on.
    pub hooks_socket: PathBuf,
    /// Unix socket the bridge serves the lane on, when unary calls use it (crate::lane).
    pub lane_socket: Option<PathBuf>,
    /// The per-launch secret both sides present on every call.
    pub token: String,
}

impl Rendezvous {
    /// Creates the 0700 directory (mkdtemp creates it owner-only) and a fresh 256-bit token.
    pub fn new() -> Result<Rendezvous, PythonError> {
        let dir = tempfile::Builder::new()
            .prefix("mmplug-")
            .tempdir()
            .map_err(PythonError::PrivateDir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .map_err(PythonError::PrivateDir)?;
        }
        let token: [u8; 32] = rand::random();
        Ok(Rendezvous {
            api_socket: dir.path().join("api.sock"),
            hooks_socket: dir.path().join("hooks.sock"),
            lane_socket: crate::lane::enabled().then(|| dir.path().join("lane.sock")),
            token: hex::encode(token),
            dir,
        })
    }

    /// The private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A running Python plugin process.
#[derive(Debug)]
pub struct PythonProcess {
    pid: u32,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl PythonProcess {
    /// Starts `python -m mattermost_plugin <entry>` in the bundle directory.
    ///
    /// Must be called from a thread that outlives the child (the runtime thread, not a blocking-pool
    /// thread): `PR_SET_PDEATHSIG` fires when the *thread* that forked exits.
    pub fn spawn(
        manifest: &Manifest,
        rv: &Rendezvous,
        setup: &PythonSetup,
    ) -> Result<PythonProcess, PythonError> {
        let interpreter = setup.interpreter.clone();
        let mut cmd = Command::new(&interpreter);
        cmd.arg("-m")
            .arg("mattermost_plugin")
            .arg(&manifest.entry)
            .current_dir(&manifest.dir)
            .env_clear()
            .envs(scrubbed_env(std::env::vars_os(), &manifest.env_passthrough))
            .env("MMPLUG_API_SOCKET", &rv.api_socket)
            .env("MMPLUG_HOOKS_SOCKET", &rv.hooks_socket)
            // The token goes down stdin, not in the environment: the kernel keeps a process's
            // initial environment readable in /proc/PID/environ for its whole life.
            .env("MMPLUG_TOKEN_FD", "0")
            .env("MMPLUG_PLUGIN_ID", &manifest.id)
            .env("MMPLUG_PLUGIN_DIR", &manifest.dir)
            .env("MMPLUG_ENTRY", &manifest.entry)
            .env("PYTHONUNBUFFERED", "1");
        if let Some(lane) = &rv.lane_socket {
            cmd.env("MMPLUG_LANE_SOCKET", lane);
        }
        if let Some(site) = &setup.site {
            // The bundle's unpacked wheels come before anything the server's Python has
            // installed, and the server user's own site-packages stay out.
            cmd.env("PYTHONPATH", site).env("PYTHONNOUSERSITE", "1");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (prctl, getppid, setpgid, _exit semantics via return).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody would kill us.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("bridge exited during spawn"));
                }
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child: Child = cmd.spawn().map_err(|source| PythonError::Spawn {
            interpreter: interpreter.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        // One line into the pipe's buffer (far below its 64 KiB), then EOF: the SDK reads it
        // first thing and puts /dev/null in its place.
        if let Some(mut stdin) = child.stdin.take() {
            let line = format!("{}\n", rv.token);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(line.as_bytes()).await;
            });
        }
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let stderr = child
            .stderr
            .take()
            .map(|e| tokio::spawn(forward_stderr(e, stderr_tail.clone())));
        let stdout = child.stdout.take().map(|o| tokio::spawn(forward_stdout(o)));
        let (tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            // Publish the exit only once Python's last output is logged and in the tail: the
            // activation error and the unexpected-exit line quote it, and the bridge may exit
            // right after. Bounded, because a grandchild may hold the pipes open.
            let drained = async {
                for forwarder in [stderr, stdout].into_iter().flatten() {
                    let _ = forwarder.await;
                }
            };
            let _ = tokio::time::timeout(OUTPUT_DRAIN, drained).await;
            match status {
                Ok(status) => {
                    let _ = tx.send(Some(status));
                }
                Err(e) => log::log(
                    Level::Error,
                    "waiting for the Python process failed",
                    &[("error", e.to_string())],
                ),
            }
        });
        log::log(
            Level::Info,
            "started Python",
            &[
                ("interpreter", interpreter.display().to_string()),
                ("pid", pid.to_string()),
            ],
        );
        Ok(PythonProcess {
            pid,
            exit,
            stderr_tail,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the process has exited and its output has been forwarded.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Resolves when the process has exited and its output has been forwarded.
    pub async fn exited(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        loop {
            if let Some(status) = *rx.borrow_and_update() {
                return status;
            }
            if rx.changed().await.is_err() {
                // The waiter task is gone: treat the process as exited with an unknown status.
                use std::os::unix::process::ExitStatusExt;
                return ExitStatus::from_raw(-1);
            }
        }
    }

    /// The last lines Python wrote to stderr, oldest first: what an activation error shows.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Asks Python to stop (SIGTERM), then kills it after `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        if self.exit_status().is_some() || self.pid == 0 {
            return;
        }
        signal(self.pid, libc::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            log::warn("Python did not exit within the grace period; killing it");
            signal(self.pid, libc::SIGKILL);
            let _ = self.exited().await;
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid we spawned; the exit watcher has not reaped it yet (checked by
    // the caller), so the pid cannot have been reused.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Forwards Python's stderr to ours as leveled log lines.
///
/// The SDK writes hclog JSON lines (before the server's API is open, and for its own loggers);
/// those keep their level and time, with their fields moved into the message. Anything else (an interpreter traceback, a C extension's warning) becomes one
/// entry per line: lines of a `Traceback` block at error level, the rest at warn, because plain
/// text on stderr is never routine output.
async fn forward_stderr(stderr: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    let mut in_traceback = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.clone());
        }
        log::write_line(&classify_stderr_line(&line, &mut in_traceback));
    }
}

/// Turns one line of Python's stderr into one hclog JSON line.
pub fn classify_stderr_line(line: &str, in_traceback: &mut bool) -> String {
    if let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str::<serde_json::Value>(line)
        && let Some(level) = obj
            .get("@level")
            .and_then(|l| l.as_str())
            .and_then(Level::parse)
    {
        *in_traceback = false;
        // The SDK's fields go into the message, as the bridge's own do (goplugin::log says
        // why); its time is kept when it is in hclog's layout, else replaced by now.
        let message = match obj.remove("@message") {
            Some(serde_json::Value::String(m)) => m,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let timestamp = match obj.remove("@timestamp") {
            Some(serde_json::Value::String(t)) if is_hclog_time(&t) => t,
            _ => log::timestamp_now(),
        };
        for key in ["@level", "@module"] {
            obj.remove(key);
        }
        let fields: Vec<(String, String)> = obj
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        let text = log::message_with_fields(
            &message,
            fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        return log::entry(level.as_str(), &text, &timestamp);
    }
    if line.starts_with("Traceback (most recent call last):") {
        *in_traceback = true;
    }
    let level = if *in_traceback {
        Level::Error
    } else {
        Level::Warn
    };
    // A traceback ends with the unindented "ExceptionType: message" line.
    if *in_traceback && !line.starts_with(' ') && !line.starts_with("Traceback") {
        *in_traceback = false;
    }
    log::format_line(level, "python", line, &[])
}

/// Whether `t` is in hclog's JSON time layout (`2006-01-02T15:04:05.000000Z07:00`), the only
/// one go-plugin accepts: any other makes it print the whole line as plain text.
fn is_hclog_time(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let zone = &t.get(26..).unwrap_or("");
    b.len() >= 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && (*zone == "Z"
            || (zone.len() == 6
                && matches!(zone.as_bytes()[0], b'+' | b'-')
                && zone.as_bytes()[3] == b':'))
}

async fn forward_stdout(stdout: impl AsyncRead + Unpin) {
    // Python's stdout must never reach ours (ours carried the handshake and the host discards
    // the rest), so print() output becomes log entries instead.
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log::write_line(&log::format_line(Level::Info, "python.stdout", &line, &[]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_scrubbed_to_the_allow_list_and_opt_ins() {
        let inherited = vec![
            ("PATH".into(), "/bin".into()),
            (
                "MM_SQLSETTINGS_DATASOURCE".into(),
                "postgres://secret".into(),
            ),
            ("HTTPS_PROXY".into(), "http://proxy".into()),
            ("MATTERMOST_PLUGIN".into(), "cookie".into()),
        ];
        let env = scrubbed_env(inherited, &["HTTPS_PROXY".to_string()]);
        let keys: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(keys, vec!["PATH", "HTTPS_PROXY"]);
    }

    #[test]
    fn interpreter_prefers_plugin_venv_then_path() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let on_path = bin.join("python3");
        std::fs::write(&on_path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&on_path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plugin = tmp.path().join("plugin");
        std::fs::create_dir_all(plugin.join("venv/bin")).unwrap();
        let path = std::ffi::OsString::from(bin.as_os_str());
        assert_eq!(find_interpreter(&plugin, Some(&path)).unwrap(), on_path);
        let venv_py = plugin.join("venv/bin/python3");
        std::fs::write(&venv_py, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&venv_py, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_interpreter(&plugin, Some(&path)).unwrap(), venv_py);
        let err = find_interpreter(&tmp.path().join("nowhere"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Python 3.10 or newer"), "{err}");
    }

    #[test]
    fn rendezvous_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let rv = Rendezvous::new().unwrap();
        let mode = std::fs::metadata(rv.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(rv.token.len(), 64);
        assert_ne!(rv.token, Rendezvous::new().unwrap().token);
    }

    #[test]
    fn stderr_lines_keep_json_levels_and_mark_tracebacks() {
        let mut tb = false;
        let json = classify_stderr_line(
            r#"{"@level":"debug","@message":"m","@module":"python","@timestamp":"bad","logger":"x","n":3}"#,
            &mut tb,
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["@level"], "debug");
        assert_eq!(v["@message"], "m (logger=x, n=3)");
        assert!(v.get("@module").is_none());
        // A time go-plugin would reject is replaced; one in hclog's layout is kept.
        assert_ne!(v["@timestamp"], "bad");
        let kept =
            r#"{"@level":"info","@message":"m","@timestamp":"2026-12-07T01:51:01.849123+01:00"}"#;
        let v: serde_json::Value =
            serde_json::from_str(&classify_stderr_line(kept, &mut tb)).unwrap();
        assert_eq!(v["@timestamp"], "2026-12-07T01:51:01.849123+01:00");
        let level = |s: &str, tb: &mut bool| -> String {
            let v: serde_json::Value = serde_json::from_str(&classify_stderr_line(s, tb)).unwrap();
            v["@level"].as_str().unwrap().to_string()
        };
        assert_eq!(level("some warning", &mut tb), "warn");
        assert_eq!(
            level("Traceback (most recent call last):", &mut tb),
            "error"
        );
        assert_eq!(level("  File \"x.py\", line 1", &mut tb), "error");
        assert_eq!(level("ValueError: boom", &mut tb), "error");
        assert_eq!(level("after", &mut tb), "warn");
    }

    /// Set (to the helper's scratch directory) in the process [`python_dies_with_its_bridge`]
    /// starts to play the bridge.
    const SPAWNING_BRIDGE_DIR: &str = "MMPLUG_TEST_SPAWNING_BRIDGE_DIR";

    /// The bridge of [`python_dies_with_its_bridge`], in a process of its own (this test binary
    /// again, running only this test): spawns the scratch directory's plugin, prints
    /// `python-pid <pid>` and waits to be killed. Does nothing in a test run of its own.
    #[test]
    #[ignore = "run by python_dies_with_its_bridge as its bridge process"]
    fn spawning_bridge() {
        let Some(dir) = std::env::var_os(SPAWNING_BRIDGE_DIR) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let manifest = Manifest::load(&dir).unwrap();
            let rv = Rendezvous::new().unwrap();
            let setup = PythonSetup {
                interpreter: dir.join("venv/bin/python3"),
                site: None,
            };
            let python = PythonProcess::spawn(&manifest, &rv, &setup).unwrap();
            println!("python-pid {}", python.pid());
            std::future::pending::<()>().await
        });
    }

    /// Whether process `pid` has exited (a zombie waiting for its new parent to reap it has).
    fn has_exited(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name in parentheses: "pid (comm) S ...".
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => true,
        }
    }

    /// A SIGKILLed bridge takes its Python with it by the kernel's PR_SET_PDEATHSIG alone: the
    /// "interpreter" here only sleeps, so no parent watcher of the SDK's can be what ends it
    /// (python/tests/test_entry.py checks that watcher alone).
    #[test]
    fn python_dies_with_its_bridge() {
        use std::io::BufRead;
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("venv/bin")).unwrap();
        let fake = tmp.path().join("venv/bin/python3");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(tmp.path().join("plugin.json"), r#"{"id":"t"}"#).unwrap();
        let mut bridge = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "python::tests::spawning_bridge"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(SPAWNING_BRIDGE_DIR, tmp.path())
            // The rendezvous directory of a bridge that gets killed stays behind: here.
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid: u32 = std::io::BufReader::new(bridge.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            // libtest may have written "test ... " on the same line first.
            .find_map(|line| line.split_once("python-pid ")?.1.parse().ok())
            .expect("the bridge process reported no Python pid");
        bridge.kill().unwrap(); // SIGKILL: nothing of the bridge's own runs
        bridge.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !has_exited(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !has_exited(pid) {
            signal(pid, libc::SIGKILL);
            panic!(
                "Python (pid {pid}) was still running 10 s after its bridge was SIGKILLed: \
                 PythonProcess::spawn did not set PR_SET_PDEATHSIG"
            );
        }
    }

    #[tokio::test]
    async fn spawn_runs_in_scrubbed_env_and_reports_exit_and_stderr_tail() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        // A fake interpreter: prints what it sees to stderr and exits 3.
        std::fs::create_dir_all(tmp.path().join("venv/bin")).unwrap();
        let fake = tmp.path().join("venv/bin/python3");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"args=$*\" >&2\nread -r line\necho \"token=${line:+read} env=${MMPLUG_TOKEN:-none} fd=$MMPLUG_TOKEN_FD secret=${MM_SQLSETTINGS_DATASOURCE:-unset}\" >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(tmp.path().join("plugin.json"), r#"{"id":"t"}"#).unwrap();
        let manifest = Manifest::load(tmp.path()).unwrap();
        let rv = Rendezvous::new().unwrap();
        // SAFETY: test-only environment change before spawning; no other thread reads it.
        unsafe { std::env::set_var("MM_SQLSETTINGS_DATASOURCE", "postgres://secret") };
        let setup = PythonSetup {
            interpreter: fake,
            site: None,
        };
        let py = PythonProcess::spawn(&manifest, &rv, &setup).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), py.exited())
            .await
            .unwrap();
        assert_eq!(status.code(), Some(3));
        // No waiting here: the exit is published only after the output is forwarded.
        let tail = py.stderr_tail();
        assert!(
            tail[0].contains("-m mattermost_plugin") && tail[0].contains("plugin.py"),
            "{tail:?}"
        );
        assert_eq!(tail[1], "token=read env=none fd=0 secret=unset");
    }
}
