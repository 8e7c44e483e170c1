//! The net/rpc server: every request runs in its own task, replies go out as they finish.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gob::{TypeId, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;

use super::header::{Request, Response, RpcTypes};
use super::{Msg, MsgReader, MsgWriter, RpcError};

/// A boxed, sendable future (what a [`Service`] returns).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A successful reply: the value and the Go type the caller decodes it into (a type in the
/// server's [`RpcTypes`] arena). The handler decides the type; the transport only frames.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Reply type.
    pub ty: TypeId,
    /// Reply value.
    pub value: Value,
}

/// Why a call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The service has no such method: answered `rpc: can't find method S.M`.
    UnknownMethod,
    /// The method returned an error: its text goes into `Response.Error` verbatim.
    Failed(String),
}

/// A net/rpc service (what Go registers with `RegisterName`).
pub trait Service: Send + Sync + 'static {
    /// Runs `method` (the part after the last `.`) with the decoded args. Called
    /// concurrently: a handler may wait on other calls (even on this stream) freely.
    fn call(&self, method: &str, args: Value) -> BoxFuture<Result<Reply, CallError>>;
}

impl<F> Service for F
where
    F: Fn(&str, Value) -> BoxFuture<Result<Reply, CallError>> + Send + Sync + 'static,
{
    fn call(&self, method: &str, args: Value) -> BoxFuture<Result<Reply, CallError>> {
        self(method, args)
    }
}

/// Services by name, as served on one stream.
pub type Services = HashMap<String, Arc<dyn Service>>;

type SharedWriter<W> = Arc<tokio::sync::Mutex<MsgWriter<W>>>;

async fn respond<W: AsyncWrite + Unpin>(
    writer: &SharedWriter<W>,
    types: &RpcTypes,
    req: &Request,
    result: Result<Reply, String>,
) -> Result<(), RpcError> {
    let mut w = writer.lock().await;
    let header = |error: String| {
        Response {
            service_method: req.service_method.clone(),
            seq: req.seq,
            error,
        }
        .to_value()
    };
    let empty = Value::Struct(gob::Struct::default());
    match result {
        Ok(reply) => {
            match w
                .send(
                    types.response(),
                    &header(String::new()),
                    reply.ty,
                    &reply.value,
                )
                .await
            {
                // A reply that does not fit its declared type was not written at all:
                // answer with the encoding error instead, so the caller is not left waiting.
                Err(RpcError::Encode(e)) => {
                    w.send(
                        types.response(),
                        &header(e.to_string()),
                        types.empty_struct(),
                        &empty,
                    )
                    .await
                }
                other => other,
            }
        }
        Err(text) => {
            w.send(
                types.response(),
                &header(text),
                types.empty_struct(),
                &empty,
            )
            .await
        }
    }
}

/// Serves `services` on `stream` until the peer closes it; then waits for the calls still
/// running to answer, like Go's `ServeCodec`. Returns an error if the peer sent something
/// that is not net/rpc over gob (the stream is then dropped).
pub async fn serve<T>(
    stream: T,
    services: Arc<Services>,
    types: Arc<RpcTypes>,
) -> Result<(), RpcError>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    serve_with_limits(stream, services, types, gob::Limits::default()).await
}

/// [`serve`] decoding requests with `limits`. A request whose arguments are over the message
/// size limit is answered with an error (and logged); serving goes on.
pub async fn serve_with_limits<T>(
    stream: T,
    services: Arc<Services>,
    types: Arc<RpcTypes>,
    limits: gob::Limits,
) -> Result<(), RpcError>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(stream);
    let mut reader = MsgReader::new(r, limits);
    let writer: SharedWriter<_> =
        Arc::new(tokio::sync::Mutex::new(MsgWriter::new(w, types.clone())));
    let mut calls = JoinSet::new();
    let result = loop {
        // Reap finished calls so the set does not grow over a long session.
        while calls.try_join_next().is_some() {}
        let header = match reader.next().await {
            Ok(Msg::Value(v)) => v,
            Ok(Msg::End) => break Ok(()),
            // Without the header's seq the call cannot be answered; ending the stream at
            // least fails it (and every other call on it) on the host's side.
            Ok(Msg::TooLarge { size, limit }) => {
                break Err(RpcError::Protocol(format!(
                    "rpc: a request header of {size} bytes exceeds the limit of {limit} bytes"
                )));
            }
            Err(e) => break Err(e),
        };
        let req = match Request::from_value(&header) {
            Ok(r) => r,
            Err(e) => break Err(RpcError::Protocol(e)),
        };
        // Go reads (and for failed lookups discards) the body before anything else.
        let body = match reader.next().await {
            Ok(Msg::Value(v)) => v,
            Ok(Msg::End) => break Err(RpcError::Protocol("rpc: request without a body".into())),
            // Like Go for arguments it cannot decode: answer this seq, keep reading.
            Ok(Msg::TooLarge { size, limit }) => {
                let sm = &req.service_method;
                crate::log::error(
                    &format!(
                        "the request {sm} (seq {}) was a gob message of {size} bytes, over the \
                         limit of {limit} bytes: it was dropped unread and answered with an \
                         error",
                        req.seq
                    ),
                    &[
                        ("method", sm.clone()),
                        ("seq", req.seq.to_string()),
                        ("size", size.to_string()),
                        ("limit", limit.to_string()),
                    ],
                );
                let e = RpcError::TooLarge {
                    part: "request",
                    size,
                    limit,
                };
                if let Err(e) = respond(&writer, &types, &req, Err(format!("rpc: {sm}: {e}"))).await
                {
                    break Err(e);
                }
                continue;
            }
            Err(e) => break Err(e),
        };
        let sm = req.service_method.as_str();
        let Some(dot) = sm.rfind('.') else {
            let text = format!("rpc: service/method request ill-formed: {sm}");
            if let Err(e) = respond(&writer, &types, &req, Err(text)).await {
                break Err(e);
            }
            continue;
        };
        let Some(service) = services.get(&sm[..dot]).cloned() else {
            let text = format!("rpc: can't find service {sm}");
            if let Err(e) = respond(&writer, &types, &req, Err(text)).await {
                break Err(e);
            }
            continue;
        };
        let (writer, types) = (writer.clone(), types.clone());
        calls.spawn(async move {
            let method = &req.service_method[dot + 1..];
            let result = match service.call(method, body).await {
                Ok(reply) => Ok(reply),
                Err(CallError::UnknownMethod) => {
                    Err(format!("rpc: can't find method {}", req.service_method))
                }
                Err(CallError::Failed(text)) => Err(text),
            };
            // A write failure means the stream is gone; the read loop sees that too.
            let _ = respond(&writer, &types, &req, result).await;
        });
    };
    while calls.join_next().await.is_some() {}
    result
}
