//! The bridge's `PluginAPI` socket refuses every call that lacks the per-launch token
//! (docs/internals.md §8): a second local process that finds the socket gets nowhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mmplug_bridge::grpc::{
    ApiBackend, ApiService, DynamicCodec, PACKAGE, ResponseStream, TOKEN_METADATA, bind_api,
    serve_api, unix_channel,
};
use mmplug_bridge::translate::descriptors;
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
        _request: DynamicMessage,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(DynamicMessage::new(method.output())) })
    }
}

async fn call(
    channel: tonic::transport::Channel,
    method: &MethodDescriptor,
    token: Option<&str>,
) -> Result<DynamicMessage, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(DynamicMessage::new(method.input()));
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
