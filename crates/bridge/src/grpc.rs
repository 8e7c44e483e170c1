//! The gRPC side, generic over the protobuf descriptors: a `PluginAPI` server and a
//! `PluginHooks` client that move `DynamicMessage`s.
//!
//! Nothing here knows any particular method: a call is routed by its path
//! (`/mattermost.plugin.v1.PluginAPI/KVSet`) to the method descriptor, its body decoded with
//! that descriptor, and handed to a backend. Both directions carry the per-launch token in the
//! `x-mmplug-token` metadata; the server refuses calls without it (docs/internals.md).

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message as _;
use prost_reflect::{
    DynamicMessage, MessageDescriptor, MethodDescriptor, ReflectMessage as _, ServiceDescriptor,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// The metadata key carrying the per-launch token.
pub const TOKEN_METADATA: &str = "x-mmplug-token";

/// The protobuf package of the contract.
pub const PACKAGE: &str = "mattermost.plugin.v1";

/// The largest single gRPC message either way: the same bound as the gob decoder's message
/// limit and the SDK's channel options, so no hop refuses what another accepts (tonic's own
/// default, 4 MiB, would reject a large post or KV value that the server takes).
pub const MAX_MESSAGE: usize = 256 << 20;

fn server_grpc(method: &MethodDescriptor) -> tonic::server::Grpc<DynamicCodec> {
    tonic::server::Grpc::new(DynamicCodec::new(method.input()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

// ===== codec =====

/// A tonic codec for descriptor-driven messages: encodes any `DynamicMessage`, decodes into
/// the message type it was built for.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    decode_as: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec decoding messages of type `decode_as`.
    pub fn new(decode_as: MessageDescriptor) -> Self {
        DynamicCodec { decode_as }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.decode_as.clone())
    }
}

/// Encoder half of [`DynamicCodec`].
#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        // EncodeBuf grows as needed, so this cannot run out of room.
        item.encode(dst).map_err(|e| {
            Status::internal(format!("encoding {}: {e}", item.descriptor().full_name()))
        })
    }
}

/// Decoder half of [`DynamicCodec`].
#[derive(Debug)]
pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed {}: {e}", self.0.full_name())))
    }
}

// ===== server =====

/// The response half of a bidirectional call.
pub type ResponseStream =
    Pin<Box<dyn futures::Stream<Item = Result<DynamicMessage, Status>> + Send>>;

/// What answers `PluginAPI` calls once the gRPC layer has decoded and authenticated them.
pub trait ApiBackend: Send + Sync + 'static {
    /// Handles a client-streaming call (an `init` part, then byte chunks).
    fn call_client_stream(
        &self,
        method: MethodDescriptor,
        requests: tonic::Streaming<DynamicMessage>,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>>;

    /// Handles a bidirectional stream (PluginHTTP): the response parts go out as produced.
    fn call_bidi(
        &self,
        method: MethodDescriptor,
        requests: tonic::Streaming<DynamicMessage>,
    ) -> Pin<Box<dyn Future<Output = Result<ResponseStream, Status>> + Send>>;

    /// Handles one unary call.
    fn call(
        &self,
        method: MethodDescriptor,
        request: DynamicMessage,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>>;
}

/// The `PluginAPI` gRPC service: routes every method of the service descriptor to a backend.
#[derive(Clone)]
pub struct ApiService {
    service: ServiceDescriptor,
    token: Arc<str>,
    backend: Arc<dyn ApiBackend>,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService")
            .field("service", &self.service.full_name())
            .finish_non_exhaustive()
    }
}

impl ApiService {
    /// Serves `service` (the `PluginAPI` descriptor), requiring `token` on every call.
    pub fn new(service: ServiceDescriptor, token: &str, backend: Arc<dyn ApiBackend>) -> Self {
        ApiService {
            service,
            token: token.into(),
            backend,
        }
    }
}

impl NamedService for ApiService {
    const NAME: &'static str = "mattermost.plugin.v1.PluginAPI";
}

/// Checks the token in a request's metadata.
pub fn check_token(metadata: &tonic::metadata::MetadataMap, token: &str) -> Result<(), Status> {
    match metadata.get(TOKEN_METADATA).map(|v| v.as_bytes()) {
        Some(got) if constant_time_eq(got, token.as_bytes()) => Ok(()),
        Some(_) => Err(Status::unauthenticated("wrong x-mmplug-token")),
        None => Err(Status::unauthenticated("missing x-mmplug-token")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One call of one method: checks the token, then hands the request to the backend. It is
/// tonic's unary, client-streaming or bidirectional service, whichever the method's shape is.
struct MethodHandler {
    method: MethodDescriptor,
    token: Arc<str>,
    backend: Arc<dyn ApiBackend>,
}

type ReplyFuture<T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send>>;

impl MethodHandler {
    /// The backend's answer to `request` once its token checks out.
    fn checked<R, T: Send + 'static>(
        &self,
        request: Request<R>,
        call: impl FnOnce(
            &dyn ApiBackend,
            MethodDescriptor,
            R,
        ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>,
    ) -> ReplyFuture<T> {
        if let Err(status) = check_token(request.metadata(), &self.token) {
            return Box::pin(async move { Err(status) });
        }
        let fut = call(
            self.backend.as_ref(),
            self.method.clone(),
            request.into_inner(),
        );
        Box::pin(async move { fut.await.map(Response::new) })
    }
}

impl tonic::server::UnaryService<DynamicMessage> for MethodHandler {
    type Response = DynamicMessage;
    type Future = ReplyFuture<DynamicMessage>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        self.checked(request, |b, m, r| b.call(m, r))
    }
}

impl tonic::server::ClientStreamingService<DynamicMessage> for MethodHandler {
    type Response = DynamicMessage;
    type Future = ReplyFuture<DynamicMessage>;

    fn call(&mut self, request: Request<tonic::Streaming<DynamicMessage>>) -> Self::Future {
        self.checked(request, |b, m, r| b.call_client_stream(m, r))
    }
}

impl tonic::server::StreamingService<DynamicMessage> for MethodHandler {
    type Response = DynamicMessage;
    type ResponseStream = ResponseStream;
    type Future = ReplyFuture<ResponseStream>;

    fn call(&mut self, request: Request<tonic::Streaming<DynamicMessage>>) -> Self::Future {
        self.checked(request, |b, m, r| b.call_bidi(m, r))
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for ApiService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let name = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(method) = self.service.methods().find(|m| m.name() == name) else {
            let status = Status::unimplemented(format!(
                "{} has no method {name:?}",
                self.service.full_name()
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let handler = MethodHandler {
            method: method.clone(),
            token: self.token.clone(),
            backend: self.backend.clone(),
        };
        let mut grpc = server_grpc(&method);
        match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => Box::pin(async move { Ok(grpc.unary(handler, req).await) }),
            (true, false) => Box::pin(async move { Ok(grpc.client_streaming(handler, req).await) }),
            (true, true) => Box::pin(async move { Ok(grpc.streaming(handler, req).await) }),
            (false, true) => {
                let status =
                    Status::unimplemented(format!("streaming method {name} is not served yet"));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// Binds the `PluginAPI` unix socket.
///
/// Binding happens before this returns its future's first poll result, so the socket exists
/// once [`bind_api`] returns.
pub fn bind_api(socket: &Path) -> std::io::Result<tokio::net::UnixListener> {
    tokio::net::UnixListener::bind(socket)
}

/// Serves `PluginAPI` on a bound listener until `shutdown` resolves.
pub async fn serve_api(
    listener: tokio::net::UnixListener,
    api: ApiService,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(api)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

// ===== client =====

/// A lazily connecting channel to a gRPC server on a unix socket.
pub fn unix_channel(socket: &Path) -> Channel {
    let socket: PathBuf = socket.to_path_buf();
    // The URI is required by the HTTP/2 layer but never resolved: the connector ignores it.
    Endpoint::from_static("http://mmplug.local").connect_with_connector_lazy(tower::service_fn(
        move |_: http::Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        },
    ))
}

/// Adds the token to an outgoing request.
pub fn with_token<T>(mut request: Request<T>, token: &str) -> Result<Request<T>, Status> {
    let value = token
        .parse()
        .map_err(|_| Status::internal("token is not valid metadata"))?;
    request.metadata_mut().insert(TOKEN_METADATA, value);
    Ok(request)
}

/// The lane call that asks Python to serve gRPC on its hooks socket (docs/internals.md §8):
/// empty request, empty response once it listens. The SDK's runtime answers it, not the
/// contract.
pub const START_GRPC_METHOD: &str = "/mmplug.runtime.v1.Runtime/StartGrpc";

/// How long Python may take to start serving gRPC when asked (importing grpcio, binding).
const START_GRPC_LIMIT: Duration = Duration::from_secs(10);

/// Whether Python serves gRPC yet, for the hooks connection that was asked.
type GrpcStarted = Option<(mmplug_lane::Connection, Arc<tokio::sync::OnceCell<()>>)>;

/// Client for the Python process's `PluginHooks` service.
/// Unary hooks go on the lane once Python has connected it, else (and every stream) on gRPC.
#[derive(Debug, Clone)]
pub struct HooksClient {
    channel: Channel,
    service: ServiceDescriptor,
    token: Arc<str>,
    lane: crate::lane::HooksLane,
    /// Python is told to use the lane: its lane `HELLO` is the readiness signal, and it
    /// serves gRPC only once asked ([`START_GRPC_METHOD`]).
    on_lane: bool,
    grpc_started: Arc<std::sync::Mutex<GrpcStarted>>,
}

impl HooksClient {
    /// A client calling `service` (the `PluginHooks` descriptor) over `channel`.
    pub fn new(channel: Channel, service: ServiceDescriptor, token: &str) -> Self {
        HooksClient {
            channel,
            service,
            token: token.into(),
            lane: crate::lane::HooksLane::default(),
            on_lane: false,
            grpc_started: Arc::default(),
        }
    }

    /// For a Python that was given the lane: readiness is its lane connection alone (no
    /// health polls), and before a byte stream it is asked to start serving gRPC.
    pub fn on_lane(mut self) -> Self {
        self.on_lane = true;
        self
    }

    /// Where Python's lane connection that serves hooks arrives (crate::lane::serve).
    pub fn lane(&self) -> &crate::lane::HooksLane {
        &self.lane
    }

    /// The service descriptor.
    pub fn service(&self) -> &ServiceDescriptor {
        &self.service
    }

    /// The method descriptor for a hook, if the contract has it.
    pub fn method(&self, name: &str) -> Option<MethodDescriptor> {
        self.service.methods().find(|m| m.name() == name)
    }

    /// Makes one unary call.
    pub async fn call(
        &self,
        method: &MethodDescriptor,
        request: DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let path = format!("/{}/{}", self.service.full_name(), method.name());
        if let Some(lane) = self.lane.for_path(&path) {
            return crate::lane::call_hook(&lane, &path, method, request).await;
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("Python plugin process unreachable: {e}")))?;
        let path: http::uri::PathAndQuery = path
            .parse()
            .map_err(|e| Status::internal(format!("bad method path: {e}")))?;
        let request = with_token(Request::new(request), &self.token)?;
        grpc.unary(request, path, DynamicCodec::new(method.output()))
            .await
            .map(Response::into_inner)
    }

    /// Answers a unary hook in the bridge itself, as if Python's handler had returned the
    /// payloads it was given: each message-typed result takes the first argument of the same
    /// message type (MessageWillBePosted gets its post back); other results stay unset.
    ///
    /// A benchmark instrument (`MMPLUG_BRIDGE_ECHO_HOOKS`, docs/operations.md): it measures
    /// the bridge's own share of a hook. The request and the reply still go through protobuf
    /// bytes, as they would on the wire, so only the gRPC transport and Python are left out.
    pub fn echo(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let decode = |desc: MessageDescriptor, bytes: Vec<u8>| {
            DynamicMessage::decode(desc, bytes.as_slice())
                .map_err(|e| Status::internal(format!("echo: {e}")))
        };
        let request = decode(method.input(), request.encode_to_vec())?;
        let mut reply = DynamicMessage::new(method.output());
        let mut taken = Vec::new();
        for out in method.output().fields().filter(|f| f.number() >= 2) {
            let prost_reflect::Kind::Message(kind) = out.kind() else {
                continue;
            };
            let source = method.input().fields().find(|f| {
                f.number() >= 2
                    && !taken.contains(&f.number())
                    && f.is_list() == out.is_list()
                    && matches!(f.kind(), prost_reflect::Kind::Message(k) if k == kind)
            });
            if let Some(source) = source {
                taken.push(source.number());
                reply.set_field(&out, request.get_field(&source).into_owned());
            }
        }
        decode(method.output(), reply.encode_to_vec())
    }

    /// Opens a bidirectional stream: `requests` go to Python as they are produced, the
    /// returned stream yields Python's messages as they arrive.
    pub async fn streaming(
        &self,
        method: &MethodDescriptor,
        requests: impl futures::Stream<Item = DynamicMessage> + Send + 'static,
    ) -> Result<tonic::Streaming<DynamicMessage>, Status> {
        self.python_serves_grpc().await?;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("Python plugin process unreachable: {e}")))?;
        let path: http::uri::PathAndQuery =
            format!("/{}/{}", self.service.full_name(), method.name())
                .parse()
                .map_err(|e| Status::internal(format!("bad method path: {e}")))?;
        let request = with_token(Request::new(requests), &self.token)?;
        grpc.streaming(request, path, DynamicCodec::new(method.output()))
            .await
            .map(Response::into_inner)
    }

    /// With the lane, makes sure Python serves gRPC before a stream is opened to it: asks
    /// once per hooks connection (a restarted Python is asked again) and waits for the
    /// answer; concurrent first streams share the one request.
    async fn python_serves_grpc(&self) -> Result<(), Status> {
        if !self.on_lane {
            return Ok(());
        }
        let Some(connection) = self.lane.current() else {
            return Err(Status::unavailable(
                "the plugin's Python has no lane connection open",
            ));
        };
        let started = {
            let mut slot = self.grpc_started.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                // One open hooks connection at a time: a new one comes after the old closed.
                Some((asked, started)) if asked.close_reason().is_none() => started.clone(),
                _ => {
                    let started = Arc::new(tokio::sync::OnceCell::new());
                    *slot = Some((connection.clone(), started.clone()));
                    started
                }
            }
        };
        started
            .get_or_try_init(|| async {
                let asked = connection
                    .call(
                        START_GRPC_METHOD,
                        bytes::Bytes::new(),
                        Some(START_GRPC_LIMIT),
                    )
                    .await;
                match asked {
                    Ok(_) => Ok(()),
                    // An SDK from before this request serves gRPC from its start.
                    Err(s) if s.code() == mmplug_lane::Code::UNIMPLEMENTED => Ok(()),
                    Err(s) => Err(Status::unavailable(format!(
                        "the plugin's Python did not start serving gRPC: {}",
                        s.message()
                    ))),
                }
            })
            .await
            .map(|_| ())
    }

    /// Whether the plugin is ready: its lane connection that serves hooks is open, or else
    /// (a Python not given the lane) its health service says so.
    pub async fn is_serving(&self) -> Result<bool, Status> {
        if self.lane.current().is_some() {
            return Ok(true);
        }
        if self.on_lane {
            return Ok(false);
        }
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let mut client = HealthClient::new(self.channel.clone());
        let request = with_token(
            Request::new(HealthCheckRequest {
                service: String::new(),
            }),
            &self.token,
        )?;
        let resp = client.check(request).await?.into_inner();
        Ok(resp.status == ServingStatus::Serving as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An API nobody calls here.
    struct NoApi;

    impl ApiBackend for NoApi {
        fn call_client_stream(
            &self,
            _: MethodDescriptor,
            _: tonic::Streaming<DynamicMessage>,
        ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
            Box::pin(async { Err(Status::unimplemented("no API here")) })
        }

        fn call_bidi(
            &self,
            _: MethodDescriptor,
            _: tonic::Streaming<DynamicMessage>,
        ) -> Pin<Box<dyn Future<Output = Result<ResponseStream, Status>> + Send>> {
            Box::pin(async { Err(Status::unimplemented("no API here")) })
        }

        fn call(
            &self,
            _: MethodDescriptor,
            _: DynamicMessage,
        ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
            Box::pin(async { Err(Status::unimplemented("no API here")) })
        }
    }

    /// Python's end of a hooks connection: counts the StartGrpc calls and answers them with
    /// `answer` (an error code, or 0 for an empty response).
    #[derive(Clone)]
    struct PythonSide {
        asked: Arc<AtomicUsize>,
        answer: u32,
    }

    impl mmplug_lane::Handler for PythonSide {
        fn call(&self, method: &str, _: bytes::Bytes) -> mmplug_lane::HandlerFuture {
            assert_eq!(method, START_GRPC_METHOD);
            self.asked.fetch_add(1, Ordering::SeqCst);
            let answer = self.answer;
            Box::pin(async move {
                // Long enough for concurrent first streams to meet on the same request.
                tokio::time::sleep(Duration::from_millis(20)).await;
                match answer {
                    0 => Ok(bytes::Bytes::new()),
                    code => Err(mmplug_lane::Status::new(
                        mmplug_lane::Code(code),
                        "cannot listen on unix:/x/hooks.sock",
                    )),
                }
            })
        }
    }

    const TOKEN: &str = "t0ken";

    /// Connects a Python stand-in that serves hooks and waits until the client sees it.
    async fn python(
        socket: &Path,
        client: &HooksClient,
        answer: u32,
    ) -> (mmplug_lane::Connection, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let side = PythonSide {
            asked: asked.clone(),
            answer,
        };
        let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        let options = mmplug_lane::Options::new()
            .roles(mmplug_lane::Roles::SERVES_HOOKS)
            .handler(side);
        let established = mmplug_lane::connect(stream, TOKEN.as_bytes(), options)
            .await
            .unwrap();
        while client.lane().current().is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (established.connection, asked)
    }

    #[tokio::test]
    async fn python_is_asked_to_serve_grpc_once_per_hooks_connection() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::translate::descriptors();
        let service = |name: &str| pool.get_service_by_name(&format!("{PACKAGE}.{name}"));
        let client = HooksClient::new(
            unix_channel(&dir.path().join("hooks.sock")),
            service("PluginHooks").unwrap(),
            TOKEN,
        )
        .on_lane();
        let lane_socket = dir.path().join("lane.sock");
        let listener = tokio::net::UnixListener::bind(&lane_socket).unwrap();
        tokio::spawn(crate::lane::serve(
            listener,
            TOKEN.into(),
            service("PluginAPI").unwrap(),
            Arc::new(NoApi),
            client.lane().clone(),
        ));
        // No Python yet: nothing to ask, and no gRPC stream is tried.
        let err = client.python_serves_grpc().await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
        assert!(
            !client.is_serving().await.unwrap(),
            "health must not be polled"
        );

        let (first, asked) = python(&lane_socket, &client, 0).await;
        assert!(client.is_serving().await.unwrap());
        // Concurrent first streams share one request; later ones ask nothing.
        let all = futures::future::join_all((0..5).map(|_| client.python_serves_grpc())).await;
        assert!(all.iter().all(Result::is_ok), "{all:?}");
        client.python_serves_grpc().await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 1);

        // A restarted Python (a new hooks connection) is asked again.
        first.close();
        while client.lane().current().is_some() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (second, asked) = python(&lane_socket, &client, 0).await;
        client.python_serves_grpc().await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        second.close();
        while client.lane().current().is_some() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        // One that cannot listen fails the stream with its reason, and is asked again next
        // time; an SDK that does not know the call (it serves gRPC from its start) is fine.
        let (failing, asked) = python(&lane_socket, &client, 14).await;
        let err = client.python_serves_grpc().await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(err.message().contains("hooks.sock"), "{err}");
        assert!(client.python_serves_grpc().await.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        failing.close();
        while client.lane().current().is_some() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (_older, asked) = python(&lane_socket, &client, 12).await;
        client.python_serves_grpc().await.unwrap();
        client.python_serves_grpc().await.unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }
}
