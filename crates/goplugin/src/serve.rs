//! Serving a plugin: bind + handshake (fast, before any slow startup), then accept + serve.
//!
//! Facts (hashicorp/go-plugin v1.8.0 `server.go`, `rpc_server.go`):
//! - The socket path comes from `os.CreateTemp(PLUGIN_UNIX_SOCKET_DIR or the temp dir,
//!   "plugin")`, which is closed and removed before `listen("unix", path)`.
//! - `PLUGIN_UNIX_SOCKET_GROUP` (a gid or a group name) makes the socket group-owned, 0660.
//! - The host opens control, stdout and stderr streams in that order; later streams belong
//!   to the mux broker. `Control`/`Dispenser` are served on the control stream.
//!
//! Differences, on purpose: we serve the first connection only and remove the socket file
//! as soon as it is accepted (go-plugin's host connects exactly once; nobody else should),
//! and the session ending also ends the plugin (go-plugin waits for Quit or a signal).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::broker::Broker;
use crate::control::{self, PluginSet, ShutdownReason};
use crate::handshake::{self, CookieError, HandshakeConfig};
use crate::netrpc::{self, RpcTypes};
use crate::quiet::QuietUnixStream;
use crate::yamux::{self, Session, Stream};

/// Env var naming the socket directory.
pub const ENV_UNIX_SOCKET_DIR: &str = "PLUGIN_UNIX_SOCKET_DIR";
/// Env var naming the socket's group.
pub const ENV_UNIX_SOCKET_GROUP: &str = "PLUGIN_UNIX_SOCKET_GROUP";
/// How long [`Connection::done`] waits after Quit for the host to hang up.
pub const QUIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Env var listing the protocol versions the host speaks.
pub const ENV_PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";

/// Why serving could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Not launched by a host (or misconfigured): print it to stderr and exit with
    /// [`CookieError::exit_code`], as go-plugin does.
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// The config has no plugin set at all.
    #[error("no plugin set to serve")]
    NoPlugins,
    /// The socket could not be created, bound or given its group.
    #[error("plugin init error: {0}")]
    Listen(String),
    /// The host connected but the yamux session or its first streams failed.
    #[error("plugin connection error: {0}")]
    Connection(String),
}

/// What to serve and how to recognise the host.
pub struct ServeConfig {
    /// Cookie and default version; Mattermost's by default.
    pub handshake: HandshakeConfig,
    /// Plugin sets by protocol version (go-plugin's `VersionedPlugins`; `Plugins` is the
    /// entry at `handshake.protocol_version`).
    pub plugins: BTreeMap<u32, PluginSet>,
    /// The gob arena every reply type comes from.
    pub types: Arc<RpcTypes>,
}

impl ServeConfig {
    /// Mattermost's handshake serving `plugins` at protocol version 1.
    pub fn mattermost(types: Arc<RpcTypes>, plugins: PluginSet) -> ServeConfig {
        let handshake = HandshakeConfig::mattermost();
        ServeConfig {
            plugins: BTreeMap::from([(handshake.protocol_version, plugins)]),
            handshake,
            types,
        }
    }
}

/// Removes the socket file when dropped.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bound listener whose handshake line is ready to print.
pub struct Bound {
    listener: std::os::unix::net::UnixListener,
    socket: SocketFile,
    line: String,
    version: u32,
    plugins: Arc<PluginSet>,
    types: Arc<RpcTypes>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("socket", &self.socket.0)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Checks the cookie, negotiates the version and binds the socket, reading the process
/// environment. Writes go-plugin's version warnings to stderr. Does not print the
/// handshake: call [`Bound::write_handshake`].
pub fn bind(config: ServeConfig) -> Result<Bound, ServeError> {
    bind_with_env(config, |k| std::env::var(k).ok())
}

/// [`bind`] with an explicit environment lookup (for tests and embedding).
pub fn bind_with_env(
    mut config: ServeConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Bound, ServeError> {
    handshake::check_cookie(&config.handshake, &env)?;
    let ours: BTreeSet<u32> = config.plugins.keys().copied().collect();
    let (version, warnings) =
        handshake::negotiate_version(&ours, env(ENV_PROTOCOL_VERSIONS).as_deref());
    if !warnings.is_empty() {
        eprint!("{warnings}");
    }
    let version = version.ok_or(ServeError::NoPlugins)?;
    let plugins = config.plugins.remove(&version).unwrap_or_default();

    let dir = env(ENV_UNIX_SOCKET_DIR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = temp_socket_path(&dir).map_err(|e| ServeError::Listen(e.to_string()))?;
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| ServeError::Listen(format!("listen unix {}: {e}", path.display())))?;
    let socket = SocketFile(path);
    if let Some(group) = env(ENV_UNIX_SOCKET_GROUP).filter(|g| !g.is_empty()) {
        set_group_writable(&socket.0, &group).map_err(ServeError::Listen)?;
    }
    let line = handshake::handshake_line(version, &socket.0.to_string_lossy());
    Ok(Bound {
        listener,
        socket,
        line,
        version,
        plugins: Arc::new(plugins),
        types: config.types,
    })
}

/// A fresh name the way `os.CreateTemp(dir, "plugin")` makes one, then freed for bind.
fn temp_socket_path(dir: &Path) -> io::Result<PathBuf> {
    let file = tempfile::Builder::new()
        .prefix("plugin")
        .rand_bytes(10)
        .tempfile_in(dir)?;
    let path = file.path().to_path_buf();
    // Dropping the NamedTempFile closes and deletes it: the socket needs the name free.
    drop(file);
    Ok(path)
}

fn set_group_writable(path: &Path, group: &str) -> Result<(), String> {
    let gid = match group.parse::<u32>() {
        Ok(gid) => gid,
        Err(_) => {
            lookup_group(group).map_err(|e| format!("failed to find gid from {group:?}: {e}"))?
        }
    };
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| e.to_string())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| e.to_string())
}

fn lookup_group(name: &str) -> Result<u32, String> {
    let cname = CString::new(name).map_err(|_| "group name contains NUL".to_string())?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives it and its length is
    // passed; `grp`/`result` are written only by getgrnam_r.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc).to_string());
    }
    if result.is_null() {
        return Err(format!("group: unknown group {name}"));
    }
    Ok(grp.gr_gid)
}

impl Bound {
    /// `1|VERSION|unix|PATH|netrpc|\n`.
    pub fn handshake_line(&self) -> &str {
        &self.line
    }

    /// The negotiated application protocol version.
    pub fn protocol_version(&self) -> u32 {
        self.version
    }

    /// Where the socket is.
    pub fn socket_path(&self) -> &Path {
        &self.socket.0
    }

    /// Writes the handshake line and flushes (the host reads it from the plugin's stdout).
    pub fn write_handshake(&self, mut w: impl io::Write) -> io::Result<()> {
        w.write_all(self.line.as_bytes())?;
        w.flush()
    }

    /// Waits for the host to connect, starts the yamux server, accepts the control, stdout
    /// and stderr streams, and starts serving `Control`/`Dispenser` and the broker.
    /// Must run inside a tokio runtime. The socket file is removed once connected.
    pub async fn accept(self) -> Result<Connection, ServeError> {
        let Bound {
            listener,
            socket,
            plugins,
            types,
            ..
        } = self;
        let conn_err = |e: &dyn std::fmt::Display| ServeError::Connection(e.to_string());
        listener.set_nonblocking(true).map_err(|e| conn_err(&e))?;
        let listener = tokio::net::UnixListener::from_std(listener).map_err(|e| conn_err(&e))?;
        let (conn, _) = listener.accept().await.map_err(|e| conn_err(&e))?;
        drop(listener);
        drop(socket);
        // Watched for input only: the host's reads of our replies do not wake the bridge.
        let conn = QuietUnixStream::from_tokio(conn).map_err(|e| conn_err(&e))?;

        let session = Session::server(conn, yamux::Config::default());
        let missing = || {
            ServeError::Connection(
                "session ended before control, stdout and stderr streams were opened".into(),
            )
        };
        let control = session.accept().await.ok_or_else(missing)?;
        let stdout = session.accept().await.ok_or_else(missing)?;
        let stderr = session.accept().await.ok_or_else(missing)?;

        let broker = Broker::new(session.clone());
        let inbound = session.clone();
        let inbound_broker = broker.clone();
        tokio::spawn(async move {
            while let Some(stream) = inbound.accept().await {
                let b = inbound_broker.clone();
                tokio::spawn(async move { b.handle_inbound(stream).await });
            }
        });

        let (done_tx, done_rx) = watch::channel(None);
        let services =
            control::control_services(types.clone(), broker.clone(), plugins, done_tx.clone());
        let control_session = session.clone();
        let control_done = done_tx.clone();
        tokio::spawn(async move {
            let result = netrpc::serve(control, Arc::new(services), types).await;
            control::loop_ended(&control_done, "control", result);
            // The host closing the control stream means it is done with us.
            drop(control_session);
        });
        let watch_session = session.clone();
        tokio::spawn(async move {
            watch_session.closed().await;
            control::finish(&done_tx, ShutdownReason::SessionEnded);
        });
        Ok(Connection {
            session,
            broker,
            stdout: Some(stdout),
            stderr: Some(stderr),
            done: done_rx,
        })
    }
}

/// A served host connection.
#[derive(Debug)]
pub struct Connection {
    session: Session,
    broker: Broker,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    done: watch::Receiver<Option<ShutdownReason>>,
}

impl Connection {
    /// The connection's mux broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The yamux session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The stream the host copies into its stdout log (`SyncStdout`). The host logs every
    /// write it receives as one entry, so write whole lines per `write` call.
    pub fn take_stdout(&mut self) -> Option<Stream> {
        self.stdout.take()
    }

    /// The stream the host copies into its stderr log (`SyncStderr`); same caveat.
    pub fn take_stderr(&mut self) -> Option<Stream> {
        self.stderr.take()
    }

    /// Resolves when the host calls `Control.Quit` or the session ends.
    ///
    /// After Quit it also waits (at most [`QUIT_GRACE`]) for the host to close the session:
    /// the Quit reply is still in flight when Quit is seen, and go-plugin's `Kill` treats a
    /// lost reply as a failed graceful exit and SIGKILLs us. The host closes the session
    /// right after reading the reply, so this wait is normally a round trip.
    pub async fn done(&self) -> ShutdownReason {
        let mut rx = self.done.clone();
        let reason = match rx.wait_for(|d| d.is_some()).await {
            Ok(d) => d.clone().unwrap_or(ShutdownReason::SessionEnded),
            Err(_) => ShutdownReason::SessionEnded,
        };
        if reason == ShutdownReason::Quit {
            let _ = tokio::time::timeout(QUIT_GRACE, self.session.closed()).await;
        }
        reason
    }

    /// Ends the session (GoAway, socket shut down).
    pub fn close(&self) {
        self.session.close();
    }
}
