//! The bridge's `PluginAPI` socket: it refuses every call that lacks the per-launch token
//! (docs/internals.md §8), so a second local process that finds the socket gets nowhere; and it
//! takes messages as large as the rest of the path does (`grpc::MAX_MESSAGE`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mmplug_bridge::grpc::{
    ApiBackend, ApiService, DynamicCodec, PACKAGE, ResponseStream, TOKEN_METADATA, bind_api,
    serve_api, unix_channel,
};
use mmplug_bridge::translate::descriptors;
use prost::Message;
use prost_reflect::{DynamicMessage, MethodDescriptor, ReflectMessage};
use tonic::{Code, Request, Status};

/// Answers every call with an empty response and counts the calls that got through.
#[derive(Debug, Default, Clone)]
struct CountingBackend(Arc<AtomicUsize>);

impl ApiBackend for CountingBackend {
    fn call_bidi(
        &self,
        _method: MethodDescriptor,
        _requests: tonic::Streaming<DynamicMessage>,
    ) -> Pin<Box<dyn Future<Output = Result<ResponseStream, Status>> + Send>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Err(Status::unimplemented("not in this test")) })
    }

    fn call_client_stream(
        &self,
        method: MethodDescriptor,
        _requests: tonic::Streaming<DynamicMessage>,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(DynamicMessage::new(method.output())) })
    }

    fn call(
        &self,
        method: MethodDescriptor,
        request: DynamicMessage,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        // The response echoes the request's size in an error message, so a test can see what
        // arrived without a backend of its own.
        let size = request.encoded_len();
        let mut response = DynamicMessage::new(method.output());
        if let Some(err) = method.output().get_field_by_name("error")
            && let prost_reflect::Kind::Message(app_error) = err.kind()
        {
            let mut e = DynamicMessage::new(app_error);
            let _ =
                e.try_set_field_by_name("message", prost_reflect::Value::String(size.to_string()));
            response.set_field(&err, prost_reflect::Value::Message(e));
        }
        Box::pin(async move { Ok(response) })
    }
}

async fn call(
    channel: tonic::transport::Channel,
    method: &MethodDescriptor,
    token: Option<&str>,
) -> Result<DynamicMessage, Status> {
    call_with(channel, method, token, DynamicMessage::new(method.input())).await
}

async fn call_with(
    channel: tonic::transport::Channel,
    method: &MethodDescriptor,
    token: Option<&str>,
    message: DynamicMessage,
) -> Result<DynamicMessage, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert(TOKEN_METADATA, token.parse().unwrap());
    }
    let path = format!("/{PACKAGE}.PluginAPI/{}", method.name())
        .parse()
        .unwrap();
    grpc.unary(request, path, DynamicCodec::new(method.output()))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn calls_without_the_right_token_are_refused() {
    let pool = descriptors();
    let service = pool
        .get_service_by_name(&format!("{PACKAGE}.PluginAPI"))
        .unwrap();
    let method = service
        .methods()
        .find(|m| m.name() == "GetServerVersion")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let backend = CountingBackend::default();
    let api = ApiService::new(service, "s3cret", Arc::new(backend.clone()));
    let listener = bind_api(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_api(listener, api, async {
        let _ = stopped.await;
    }));
    let channel = unix_channel(&socket);

    let missing = call(channel.clone(), &method, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    let wrong = call(channel.clone(), &method, Some("guess"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert_eq!(
        backend.0.load(Ordering::SeqCst),
        0,
        "a refused call reached the backend"
    );

    let ok = call(channel.clone(), &method, Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(ok.descriptor().name(), "GetServerVersionResponse");
    assert_eq!(backend.0.load(Ordering::SeqCst), 1);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_16_mib_request_passes_the_api_socket() {
    let pool = descriptors();
    let service = pool
        .get_service_by_name(&format!("{PACKAGE}.PluginAPI"))
        .unwrap();
    let method = service.methods().find(|m| m.name() == "KVSet").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let backend = CountingBackend::default();
    let api = ApiService::new(service, "s3cret", Arc::new(backend.clone()));
    let listener = bind_api(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_api(listener, api, async {
        let _ = stopped.await;
    }));

    // 16 MiB: four times tonic's default limit, well inside the gob and SDK limits.
    let mut request = DynamicMessage::new(method.input());
    let value = request.descriptor().get_field_by_name("value").unwrap();
    request.set_field(
        &value,
        prost_reflect::Value::Bytes(vec![7u8; 16 << 20].into()),
    );
    let sent = request.encoded_len();
    let reply = call_with(unix_channel(&socket), &method, Some("s3cret"), request)
        .await
        .unwrap();
    let echoed = reply
        .get_field_by_name("error")
        .and_then(|e| {
            e.as_message()
                .and_then(|m| m.get_field_by_name("message"))
                .map(|v| v.as_str().unwrap_or("").to_string())
        })
        .unwrap();
    assert_eq!(
        echoed,
        sent.to_string(),
        "the backend did not get the whole request"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
