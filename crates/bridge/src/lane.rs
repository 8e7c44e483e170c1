//! The bridge's end of the lane (docs/internals.md §8, "The lane"): unary calls with Python
//! as framed messages on a unix socket instead of gRPC. The bridge listens; Python connects
//! with the per-launch token. On every connection the bridge serves `PluginAPI`'s unary
//! methods (through the same [`ApiBackend`] as the gRPC service); on the one whose `HELLO`
//! says it serves hooks, [`crate::grpc::HooksClient`] sends unary hooks. Byte streams stay on
//! gRPC. `MMPLUG_TRANSPORT=grpc` in the server's environment turns the lane off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mmplug_lane::{Code, Connection, Event, HandlerFuture, Options, Status};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MethodDescriptor, ServiceDescriptor};
use tokio::net::UnixListener;
use tokio::sync::Notify;

use crate::grpc::ApiBackend;
use crate::log;

/// The server's environment variable that picks the carrier of unary calls: `grpc` keeps
/// them on gRPC (the interoperable form of the contract); anything else, or unset, the lane.
pub const TRANSPORT_ENV: &str = "MMPLUG_TRANSPORT";

/// How long a new connection may take to send its `HELLO`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether unary calls go on the lane, from the bridge's environment.
pub fn enabled() -> bool {
    std::env::var(TRANSPORT_ENV).map_or(true, |v| v != "grpc")
}

/// Python's connection that serves hooks, once it has made one; a restarted Python's new
/// connection replaces the old.
#[derive(Debug, Clone, Default)]
pub struct HooksLane {
    connection: Arc<Mutex<Option<Connection>>>,
    connected: Arc<Notify>,
}

impl HooksLane {
    /// The open connection that serves hooks, if any.
    pub fn current(&self) -> Option<Connection> {
        let slot = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
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
        let (handler, token, hooks) = (handler.clone(), token.clone(), hooks.clone());
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
            if established.peer_roles.serves_hooks() {
                hooks.set(connection.clone());
            }
            // Held here until it closes: the connection ends with its last handle.
            let reason = connection.closed().await;
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
