//! The bridge's end of the lane (docs/internals.md §8, "The lane"): unary calls with Python
//! as framed messages on a unix socket instead of gRPC. The bridge listens; Python connects
//! with the per-launch token. On every connection the bridge serves `PluginAPI`'s unary
//! methods (through the same [`ApiBackend`] as the gRPC service); on the one whose `HELLO`
//! says it serves hooks, [`crate::grpc::HooksClient`] sends unary hooks, unless a connection
//! that names its hooks ([`SERVE_HOOKS_METHOD`]) serves that one. Byte streams stay on gRPC.
//! `MMPLUG_TRANSPORT=grpc` in the server's environment turns the lane off.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mmplug_lane::{Code, Connection, Event, HandlerFuture, Options, Status};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MethodDescriptor, ServiceDescriptor};
use tokio::net::UnixListener;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::grpc::ApiBackend;
use crate::log;

/// The server's environment variable that picks the carrier of unary calls: `grpc` keeps
/// them on gRPC (the interoperable form of the contract); anything else, or unset, the lane.
pub const TRANSPORT_ENV: &str = "MMPLUG_TRANSPORT";

/// How long a new connection may take to send its `HELLO`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connection whose `HELLO` names its hooks calls first: its body is the gRPC paths of
/// the hooks it serves, one per line (UTF-8). Answered once those hooks go to it.
pub const SERVE_HOOKS_METHOD: &str = "/mmplug.lane.v1.Lane/ServeHooks";

/// The most hooks one `ServeHooks` may name, and the longest path (the contract has fewer
/// than a hundred hooks, none with a path near that long).
const MAX_NAMED_HOOKS: usize = 1024;
const MAX_HOOK_PATH: usize = 256;

/// Whether unary calls go on the lane, from the bridge's environment.
pub fn enabled() -> bool {
    std::env::var(TRANSPORT_ENV).map_or(true, |v| v != "grpc")
}

/// Python's connection that serves hooks, once it has made one, and the one that serves the
/// hooks it named, if it made one (the SDK's worker threads serve plain `def` handlers there);
/// a restarted Python's new connections replace the old.
#[derive(Debug, Clone, Default)]
pub struct HooksLane {
    connection: Arc<Mutex<Option<Connection>>>,
    named: Arc<Mutex<Option<NamedHooks>>>,
    connected: Arc<Notify>,
}

/// A connection that serves only the hooks it named.
#[derive(Debug)]
struct NamedHooks {
    connection: Connection,
    paths: HashSet<String>,
}

impl HooksLane {
    /// The open connection that serves hooks, if any.
    pub fn current(&self) -> Option<Connection> {
        let slot = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    /// The open connection to send hook `path` to: the one that named it, else the one that
    /// serves all hooks.
    pub fn for_path(&self, path: &str) -> Option<Connection> {
        {
            let named = self.named.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(named) = named.as_ref()
                && named.connection.close_reason().is_none()
                && named.paths.contains(path)
            {
                return Some(named.connection.clone());
            }
        }
        self.current()
    }

    fn name_hooks(&self, connection: Connection, paths: HashSet<String>) {
        *self.named.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(NamedHooks { connection, paths });
    }

    fn set(&self, connection: Connection) {
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection);
        self.connected.notify_waiters();
    }

    /// Resolves when a connection that serves hooks arrives (Python's readiness signal).
    pub async fn arrived(&self) {
        self.connected.notified().await;
    }
}

/// Calls hook `method` on `connection`: the request's bytes out, the response's back.
pub async fn call_hook(
    connection: &Connection,
    path: &str,
    method: &MethodDescriptor,
    request: DynamicMessage,
) -> Result<DynamicMessage, tonic::Status> {
    let reply = connection
        .call(path, request.encode_to_vec().into(), None)
        .await
        .map_err(to_tonic)?;
    DynamicMessage::decode(method.output(), reply).map_err(|e| {
        tonic::Status::internal(format!("malformed {}: {e}", method.output().full_name()))
    })
}

/// A lane status as the rest of the bridge handles statuses (gRPC's).
fn to_tonic(status: Status) -> tonic::Status {
    let code = i32::try_from(status.code().0).unwrap_or(2);
    tonic::Status::new(tonic::Code::from_i32(code), status.message())
}

fn from_tonic(status: tonic::Status) -> Status {
    let code = u32::try_from(status.code() as i32).unwrap_or(2);
    Status::new(Code(code), status.message())
}

/// Serves `PluginAPI`'s unary methods on a lane connection; one for all connections.
#[derive(Clone)]
struct ApiHandler {
    /// Unary methods by gRPC path.
    methods: Arc<HashMap<String, MethodDescriptor>>,
    backend: Arc<dyn ApiBackend>,
}

impl mmplug_lane::Handler for ApiHandler {
    fn call(&self, path: &str, message: Bytes) -> HandlerFuture {
        let Some(method) = self.methods.get(path).cloned() else {
            let status = Status::new(
                Code::UNIMPLEMENTED,
                format!("no unary PluginAPI method {path}"),
            );
            return Box::pin(async move { Err(status) });
        };
        let request = match DynamicMessage::decode(method.input(), message) {
            Ok(r) => r,
            Err(e) => {
                let status = Status::invalid_argument(format!(
                    "malformed {}: {e}",
                    method.input().full_name()
                ));
                return Box::pin(async move { Err(status) });
            }
        };
        let reply = self.backend.call(method, request);
        Box::pin(async move {
            let reply = reply.await.map_err(from_tonic)?;
            Ok(reply.encode_to_vec().into())
        })
    }
}

/// A `ServeHooks` call, handed from the connection's handler to the task that holds the
/// connection (which alone may route hooks to it), with where to say how it went.
type ServeHooksCall = (HashSet<String>, oneshot::Sender<Result<(), Status>>);

/// One connection's handler: the API, and `ServeHooks`.
struct ConnectionHandler {
    api: ApiHandler,
    serve_hooks: mpsc::Sender<ServeHooksCall>,
}

impl mmplug_lane::Handler for ConnectionHandler {
    fn call(&self, path: &str, message: Bytes) -> HandlerFuture {
        if path != SERVE_HOOKS_METHOD {
            return self.api.call(path, message);
        }
        let serve_hooks = self.serve_hooks.clone();
        Box::pin(async move {
            let paths = hook_paths(&message)?;
            let (done, outcome) = oneshot::channel();
            let gone = || Status::new(Code::UNAVAILABLE, "the lane connection is closing");
            serve_hooks.send((paths, done)).await.map_err(|_| gone())?;
            outcome.await.map_err(|_| gone())??;
            Ok(Bytes::new())
        })
    }
}

/// The hook paths a `ServeHooks` body names: UTF-8, one per line, each a gRPC path.
fn hook_paths(body: &[u8]) -> Result<HashSet<String>, Status> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Status::invalid_argument(format!("ServeHooks: the body is not UTF-8: {e}")))?;
    let mut paths = HashSet::new();
    for path in text.split('\n').filter(|p| !p.is_empty()) {
        if path.len() > MAX_HOOK_PATH || !path.starts_with('/') || path[1..].find('/').is_none() {
            let shown: String = path.chars().take(80).collect();
            return Err(Status::invalid_argument(format!(
                "ServeHooks: {shown:?} is not a method path (/package.Service/Method, at most \
                 {MAX_HOOK_PATH} bytes)"
            )));
        }
        paths.insert(path.to_owned());
        if paths.len() > MAX_NAMED_HOOKS {
            return Err(Status::invalid_argument(format!(
                "ServeHooks: more than {MAX_NAMED_HOOKS} hooks named"
            )));
        }
    }
    Ok(paths)
}

/// Accepts Python's lane connections until the listener fails: each must say `HELLO` with
/// `token` within [`HELLO_TIMEOUT`]; refusals are logged. Every connection serves the API;
/// one that serves hooks becomes `hooks`' connection.
pub async fn serve(
    listener: UnixListener,
    token: String,
    api_service: ServiceDescriptor,
    backend: Arc<dyn ApiBackend>,
    hooks: HooksLane,
) {
    let handler = ApiHandler {
        methods: Arc::new(
            api_service
                .methods()
                .filter(|m| !m.is_client_streaming() && !m.is_server_streaming())
                .map(|m| (format!("/{}/{}", api_service.full_name(), m.name()), m))
                .collect(),
        ),
        backend,
    };
    let token: Arc<[u8]> = token.into_bytes().into();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::error(&format!("the lane listener failed: {e}"));
                return;
            }
        };
        // Watched for input only: Python's reads of our frames do not wake the bridge.
        let stream = match goplugin::quiet::QuietUnixStream::from_tokio(stream) {
            Ok(s) => s,
            Err(e) => {
                log::error(&format!("setting up a lane connection: {e}"));
                continue;
            }
        };
        let (token, hooks) = (token.clone(), hooks.clone());
        let (serve_hooks, mut serve_hooks_calls) = mpsc::channel(1);
        let handler = ConnectionHandler {
            api: handler.clone(),
            serve_hooks,
        };
        tokio::spawn(async move {
            let options = Options::new().handler(handler).observer(log_event);
            let established =
                tokio::time::timeout(HELLO_TIMEOUT, mmplug_lane::accept(stream, &token, options));
            let established = match established.await {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => {
                    log::log(
                        log::Level::Warn,
                        "refused a lane connection",
                        &[("reason", e.to_string())],
                    );
                    return;
                }
                Err(_) => {
                    log::log(
                        log::Level::Warn,
                        "refused a lane connection",
                        &[("reason", format!("no HELLO within {HELLO_TIMEOUT:?}"))],
                    );
                    return;
                }
            };
            let connection = established.connection;
            let roles = established.peer_roles;
            if roles.serves_hooks() && !roles.names_hooks() {
                hooks.set(connection.clone());
            }
            // Held here until it closes: the connection ends with its last handle.
            let reason = loop {
                tokio::select! {
                    reason = connection.closed() => break reason,
                    Some((paths, done)) = serve_hooks_calls.recv() => {
                        let outcome = if roles.names_hooks() {
                            log::log(
                                log::Level::Debug,
                                "a lane connection serves the hooks it named",
                                &[("hooks", paths.len().to_string())],
                            );
                            hooks.name_hooks(connection.clone(), paths);
                            Ok(())
                        } else {
                            Err(Status::new(
                                Code::FAILED_PRECONDITION,
                                "ServeHooks on a connection whose HELLO does not name its hooks",
                            ))
                        };
                        let _ = done.send(outcome);
                    }
                }
            };
            log::log(
                log::Level::Debug,
                "a lane connection closed",
                &[("reason", reason.to_string())],
            );
        });
    }
}

fn log_event(event: Event) {
    let level = match event {
        Event::UnmatchedAnswer { .. } => log::Level::Debug,
        _ => log::Level::Warn,
    };
    log::log(level, &format!("lane: {event}"), &[]);
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;

    use mmplug_lane::Roles;
    use tokio::net::UnixStream;

    use super::*;
    use crate::grpc::{PACKAGE, ResponseStream};

    const TOKEN: &str = "lane-test-token";

    /// Answers no API call: these tests are about hooks.
    struct NoApi;

    type Answer<T> = Pin<Box<dyn Future<Output = Result<T, tonic::Status>> + Send>>;

    impl ApiBackend for NoApi {
        fn call_client_stream(
            &self,
            _: MethodDescriptor,
            _: tonic::Streaming<DynamicMessage>,
        ) -> Answer<DynamicMessage> {
            Box::pin(async { Err(tonic::Status::unimplemented("no API here")) })
        }

        fn call_bidi(
            &self,
            _: MethodDescriptor,
            _: tonic::Streaming<DynamicMessage>,
        ) -> Answer<ResponseStream> {
            Box::pin(async { Err(tonic::Status::unimplemented("no API here")) })
        }

        fn call(&self, _: MethodDescriptor, _: DynamicMessage) -> Answer<DynamicMessage> {
            Box::pin(async { Err(tonic::Status::unimplemented("no API here")) })
        }
    }

    /// The bridge's lane on a socket in `dir`, and where its hooks connections arrive.
    fn bridge(dir: &tempfile::TempDir) -> (std::path::PathBuf, HooksLane) {
        let path = dir.path().join("lane.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (_, _, pool) = crate::run::load_contract().unwrap();
        let api = pool
            .get_service_by_name(&format!("{PACKAGE}.PluginAPI"))
            .unwrap();
        let hooks = HooksLane::default();
        tokio::spawn(serve(
            listener,
            TOKEN.to_owned(),
            api,
            Arc::new(NoApi),
            hooks.clone(),
        ));
        (path, hooks)
    }

    /// A Python stand-in's connection with `roles` whose hooks answer `name`.
    async fn python(path: &std::path::Path, roles: Roles, name: &'static str) -> Connection {
        let stream = UnixStream::connect(path).await.unwrap();
        let options = Options::new()
            .roles(roles)
            .handler(move |_: &str, _: Bytes| async move { Ok(Bytes::from(name)) });
        mmplug_lane::connect(stream, TOKEN.as_bytes(), options)
            .await
            .unwrap()
            .connection
    }

    /// Which stand-in the bridge sends hook `path` to.
    async fn served_by(hooks: &HooksLane, path: &str) -> Bytes {
        let connection = hooks.for_path(path).expect("a connection serves hooks");
        connection.call(path, Bytes::new(), None).await.unwrap()
    }

    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not done within 5 s");
    }

    #[tokio::test]
    async fn hooks_go_to_the_connection_that_named_them() {
        let dir = tempfile::tempdir().unwrap();
        let (path, hooks) = bridge(&dir);
        let all = python(&path, Roles::SERVES_HOOKS, "all").await;
        until(|| hooks.current().is_some()).await;
        let named_roles = Roles::from_bits(Roles::SERVES_HOOKS.bits() | Roles::NAMES_HOOKS.bits());
        let named = python(&path, named_roles, "named").await;
        // Until it names them, every hook goes to the connection that serves all.
        assert_eq!(served_by(&hooks, "/p.Hooks/A").await, "all");
        let reply = named
            .call(
                SERVE_HOOKS_METHOD,
                Bytes::from("/p.Hooks/A\n/p.Hooks/B\n"),
                None,
            )
            .await
            .unwrap();
        assert!(reply.is_empty());
        // Answered once routed: no waiting needed.
        assert_eq!(served_by(&hooks, "/p.Hooks/A").await, "named");
        assert_eq!(served_by(&hooks, "/p.Hooks/B").await, "named");
        assert_eq!(served_by(&hooks, "/p.Hooks/C").await, "all");
        // The connection that names hooks is not the one readiness waits for.
        assert_eq!(
            hooks
                .current()
                .unwrap()
                .call("/x/Y", Bytes::new(), None)
                .await
                .unwrap(),
            "all"
        );
        // Once it closes, its hooks go back to the other.
        named.close();
        until(|| {
            hooks
                .for_path("/p.Hooks/A")
                .is_some_and(|c| c.peer_roles() == Roles::SERVES_HOOKS)
        })
        .await;
        assert_eq!(served_by(&hooks, "/p.Hooks/A").await, "all");
        drop(all);
    }

    #[tokio::test]
    async fn serve_hooks_refuses_what_it_cannot_route() {
        let dir = tempfile::tempdir().unwrap();
        let (path, hooks) = bridge(&dir);
        let all = python(&path, Roles::SERVES_HOOKS, "all").await;
        let refused = all
            .call(SERVE_HOOKS_METHOD, Bytes::from("/p.Hooks/A"), None)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FAILED_PRECONDITION, "{refused:?}");
        let named_roles = Roles::from_bits(Roles::SERVES_HOOKS.bits() | Roles::NAMES_HOOKS.bits());
        let named = python(&path, named_roles, "named").await;
        for (body, why) in [
            (&b"/p.Hooks/A\n\xff"[..], "not UTF-8"),
            (b"p.Hooks/A", "is not a method path"),
            (b"/NoMethod", "is not a method path"),
        ] {
            let refused = named
                .call(SERVE_HOOKS_METHOD, Bytes::copy_from_slice(body), None)
                .await
                .unwrap_err();
            assert_eq!(refused.code(), Code::INVALID_ARGUMENT, "{refused:?}");
            assert!(refused.message().contains(why), "{refused:?}");
        }
        let many: String = (0..=MAX_NAMED_HOOKS)
            .map(|i| format!("/p.Hooks/H{i}\n"))
            .collect();
        let refused = named
            .call(SERVE_HOOKS_METHOD, Bytes::from(many), None)
            .await
            .unwrap_err();
        assert!(
            refused.message().contains("more than 1024 hooks"),
            "{refused:?}"
        );
        // Nothing was routed by the refused calls.
        until(|| hooks.current().is_some()).await;
        assert_eq!(served_by(&hooks, "/p.Hooks/A").await, "all");
    }
}
