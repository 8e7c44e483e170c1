//! The net/rpc client: calls pipelined on one stream, replies matched by `Seq`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use gob::{TypeId, Value};
use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::header::{Request, Response, RpcTypes};
use super::{Msg, MsgReader, MsgWriter, RpcError};

type Reply = Result<Value, RpcError>;

struct Pending {
    calls: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the reader has stopped; new calls fail at once.
    closed: bool,
}

struct Writer<T> {
    msgs: MsgWriter<WriteHalf<T>>,
    /// Next `Seq`; assigned under the writer lock so requests go out in `Seq` order.
    seq: u64,
}

struct Inner<T> {
    types: Arc<RpcTypes>,
    writer: tokio::sync::Mutex<Writer<T>>,
    pending: Arc<Mutex<Pending>>,
    reader: AbortHandle,
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // The reader task owns the read half; stopping it releases the stream (FIN).
        self.reader.abort();
    }
}

/// A net/rpc client over one stream. Cheap to clone; clones share the connection, which
/// closes when the last clone is dropped.
pub struct Client<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

fn lock(p: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // Each critical section is one map operation plus a flag: a poisoned lock is consistent.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Client<T> {
    /// Starts a client on `stream` (spawns its reply reader; needs a tokio runtime).
    pub fn new(stream: T, types: Arc<RpcTypes>) -> Client<T> {
        Client::with_limits(stream, types, gob::Limits::default())
    }

    /// [`Client::new`] decoding replies with `limits` (a reply over the message size limit
    /// fails its call with [`RpcError::TooLarge`]).
    pub fn with_limits(stream: T, types: Arc<RpcTypes>, limits: gob::Limits) -> Client<T> {
        let (r, w) = tokio::io::split(stream);
        let pending = Arc::new(Mutex::new(Pending {
            calls: HashMap::new(),
            closed: false,
        }));
        let replies = MsgReader::new(r, limits);
        let reader = tokio::spawn(read_replies(replies, pending.clone())).abort_handle();
        Client {
            inner: Arc::new(Inner {
                writer: tokio::sync::Mutex::new(Writer {
                    msgs: MsgWriter::new(w, types.clone()),
                    seq: 0,
                }),
                types,
                pending,
                reader,
            }),
        }
    }

    /// The arena `args_type` must come from.
    pub fn types(&self) -> &Arc<RpcTypes> {
        &self.inner.types
    }

    /// Calls `service_method` (e.g. `Plugin.GetUser`) with `args` encoded as `args_type`;
    /// returns the decoded reply. Any number of calls may be in flight at once.
    pub async fn call(
        &self,
        service_method: &str,
        args_type: TypeId,
        args: &Value,
    ) -> Result<Value, RpcError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut w = self.inner.writer.lock().await;
            let seq = w.seq;
            {
                let mut p = lock(&self.inner.pending);
                if p.closed {
                    return Err(RpcError::Shutdown);
                }
                p.calls.insert(seq, tx);
            }
            w.seq += 1;
            let header = Request {
                service_method: service_method.to_string(),
                seq,
            }
            .to_value();
            let request_ty = self.inner.types.request();
            if let Err(e) = w.msgs.send(request_ty, &header, args_type, args).await {
                lock(&self.inner.pending).calls.remove(&seq);
                return Err(e);
            }
        }
        rx.await.unwrap_or(Err(RpcError::Shutdown))
    }
}

async fn read_replies<R: AsyncRead + Unpin>(mut r: MsgReader<R>, pending: Arc<Mutex<Pending>>) {
    let end = loop {
        let header = match r.next().await {
            Ok(Msg::Value(v)) => v,
            Ok(Msg::End) => break RpcError::Shutdown,
            // Without the header's seq no waiter can be told: end every call instead.
            Ok(Msg::TooLarge { size, limit }) => {
                break RpcError::Protocol(format!(
                    "rpc: a response header of {size} bytes exceeds the limit of {limit} bytes"
                ));
            }
            Err(e) => break e,
        };
        let resp = match Response::from_value(&header) {
            Ok(h) => h,
            Err(e) => break RpcError::Protocol(e),
        };
        // Every response has a body, error responses included.
        let body = match r.next().await {
            Ok(Msg::Value(v)) => Ok(v),
            Ok(Msg::TooLarge { size, limit }) => {
                crate::log::error(
                    &format!(
                        "the reply to {} (seq {}) was a gob message of {size} bytes, over the \
                         limit of {limit} bytes: it was dropped unread and that call fails",
                        resp.service_method, resp.seq
                    ),
                    &[
                        ("method", resp.service_method.clone()),
                        ("seq", resp.seq.to_string()),
                        ("size", size.to_string()),
                        ("limit", limit.to_string()),
                    ],
                );
                Err(RpcError::TooLarge {
                    part: "reply",
                    size,
                    limit,
                })
            }
            Ok(Msg::End) => break RpcError::Protocol("rpc: response without a body".into()),
            Err(e) => break e,
        };
        // No waiter: the call failed to send after registering; drop the reply like Go.
        if let Some(tx) = lock(&pending).calls.remove(&resp.seq) {
            let reply = if resp.error.is_empty() {
                body
            } else {
                Err(RpcError::Server(resp.error))
            };
            let _ = tx.send(reply);
        }
    };
    let calls = {
        let mut p = lock(&pending);
        p.closed = true;
        std::mem::take(&mut p.calls)
    };
    let reason = end.to_string();
    for (_, tx) in calls {
        let _ = tx.send(Err(match &end {
            RpcError::Shutdown => RpcError::Shutdown,
            _ => RpcError::Protocol(reason.clone()),
        }));
    }
}
