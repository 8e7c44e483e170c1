//! net/rpc over gob (Go `src/net/rpc`), client and server, one gob stream per direction.
//!
//! Facts (Go `net/rpc/server.go`, `client.go`):
//! - One persistent gob Encoder/Decoder per connection direction: types go once per stream.
//! - A request is a `Request` header then the args value; a response is a `Response`
//!   header then the reply value, written together.
//! - Client `Seq` starts at 0; the server runs every call concurrently and replies in
//!   completion order, so replies are matched by `Seq`.
//! - A failed call still carries a body (`struct{}{}`); the client reads and drops it.
//! - A server that cannot decode a request's body answers that `Seq` with the error text and
//!   `struct{}{}`, and keeps reading.
//!
//! A body over the gob message limit ([`gob::Limits::max_message_size`], 256 MiB by default)
//! is read past without being kept and fails only its own call: the client hands the caller
//! [`RpcError::TooLarge`], the server answers the request with an error. Both log it. A
//! header over the limit ends the connection: without its `Seq` no call can be answered.

mod client;
mod header;
mod server;
#[cfg(test)]
mod tests;

pub use client::Client;
pub use header::{Request, Response, RpcTypes};
pub use server::{BoxFuture, CallError, Reply, Service, Services, serve, serve_with_limits};

use std::sync::Arc;

use gob::{TypeId, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A net/rpc failure.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The server answered with `Response.Error` (Go's `rpc.ServerError`): the text as is.
    #[error("{0}")]
    Server(String),
    /// The connection ended before the reply (Go: `connection is shut down`).
    #[error("connection is shut down")]
    Shutdown,
    /// A value did not fit its Go type.
    #[error(transparent)]
    Encode(#[from] gob::EncodeError),
    /// The peer sent bytes that are not valid gob.
    #[error(transparent)]
    Decode(#[from] gob::DecodeError),
    /// The peer sent valid gob that is not valid net/rpc.
    #[error("{0}")]
    Protocol(String),
    /// A body was a gob message over the size limit: it was read past without being kept,
    /// so this call failed and the connection goes on.
    #[error(
        "the {part} was a gob message of {size} bytes, over the limit of {limit} bytes, \
         and was dropped unread"
    )]
    TooLarge {
        /// `reply` or `request`.
        part: &'static str,
        /// The message's length.
        size: u64,
        /// [`gob::Limits::max_message_size`].
        limit: u64,
    },
    /// The stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What [`MsgReader::next`] read.
#[derive(Debug)]
pub(crate) enum Msg {
    Value(Value),
    /// A value message over the size limit, read past (its bytes were not kept).
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// A clean EOF between messages.
    End,
}

/// Reads whole gob values off a stream.
pub(crate) struct MsgReader<R> {
    r: R,
    dec: gob::Decoder,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> MsgReader<R> {
    pub(crate) fn new(r: R, limits: gob::Limits) -> MsgReader<R> {
        MsgReader {
            r,
            dec: gob::Decoder::new(limits),
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
        }
    }

    /// The next value, or an over-limit value skipped, or the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Msg, RpcError> {
        loop {
            match self.dec.next_value() {
                Ok(Some(v)) => return Ok(Msg::Value(v)),
                Ok(None) => {}
                Err(e) => {
                    return match e.kind {
                        gob::DecodeErrorKind::ValueSkipped { len, limit, .. } => {
                            Ok(Msg::TooLarge { size: len, limit })
                        }
                        gob::DecodeErrorKind::Fatal => Err(e.into()),
                    };
                }
            }
            let n = self.r.read(&mut self.buf).await?;
            if n == 0 {
                // Bytes left from an earlier read count too: the decoder knows.
                return if self.dec.in_message() {
                    Err(RpcError::Protocol(
                        "unexpected EOF inside a gob message".into(),
                    ))
                } else {
                    Ok(Msg::End)
                };
            }
            self.dec.feed(&self.buf[..n]);
        }
    }
}

/// Writes header+body pairs with one persistent encoder, one `write_all` per pair.
pub(crate) struct MsgWriter<W> {
    w: W,
    enc: gob::Encoder,
    types: Arc<RpcTypes>,
}

impl<W: AsyncWrite + Unpin> MsgWriter<W> {
    pub(crate) fn new(w: W, types: Arc<RpcTypes>) -> MsgWriter<W> {
        MsgWriter {
            w,
            enc: gob::Encoder::new(),
            types,
        }
    }

    /// Encodes and writes one message pair. If `body` does not fit `body_ty` nothing is
    /// written and the encoder is unchanged (the body is encoded first for that reason: gob
    /// type ids then may not ascend in stream order on a stream's first message, which
    /// decoders do not care about), so the caller can send an error response instead.
    pub(crate) async fn send(
        &mut self,
        header_ty: TypeId,
        header: &Value,
        body_ty: TypeId,
        body: &Value,
    ) -> Result<(), RpcError> {
        let types = self.types.types();
        let mut body_bytes = Vec::new();
        self.enc.encode(types, body_ty, body, &mut body_bytes)?;
        let mut out = Vec::with_capacity(body_bytes.len() + 64);
        self.enc.encode(types, header_ty, header, &mut out)?;
        out.extend_from_slice(&body_bytes);
        self.w.write_all(&out).await?;
        self.w.flush().await?;
        Ok(())
    }
}
