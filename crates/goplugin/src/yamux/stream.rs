//! One yamux stream as a tokio `AsyncRead + AsyncWrite`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{FLAG_FIN, FrameType, Header};
use super::session::Shared;

/// A yamux stream. Dropping it half-closes our side (FIN), like Go's `Stream.Close`.
pub struct Stream {
    id: u32,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).finish()
    }
}

impl Stream {
    pub(crate) fn new(id: u32, shared: Arc<Shared>) -> Stream {
        Stream { id, shared }
    }

    /// The yamux stream id (odd: opened by the client/host, even: by us).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Bytes received on this stream that the application has not read yet. Flow control
    /// keeps them within the receive window ([`super::Config::max_stream_window`]) however
    /// slowly the stream is read; the flow-control tests check it with this.
    pub fn unread_bytes(&self) -> usize {
        let st = self.shared.lock();
        st.streams.get(&self.id).map_or(0, |s| s.buffered as usize)
    }
}

fn shutdown_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "yamux: session shutdown")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let max_window = self.shared.config.max_stream_window;
        let mut st = self.shared.lock();
        let dead = st.dead;
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        };
        if s.buffered > 0 {
            let mut copied = 0u32;
            while buf.remaining() > 0 {
                let Some(front) = s.recv_buf.front_mut() else {
                    break;
                };
                let n = front.len().min(buf.remaining());
                buf.put_slice(&front[..n]);
                front.advance(n);
                if front.is_empty() {
                    s.recv_buf.pop_front();
                }
                copied += n as u32;
            }
            s.buffered -= copied;
            // Same rule as Go's sendWindowUpdate: announce once half the window is free.
            let delta = max_window - s.buffered - s.recv_window;
            if delta >= max_window / 2 && !dead && !s.reset {
                s.recv_window += delta;
                self.shared.send(
                    Header::new(FrameType::WindowUpdate, 0, self.id, delta),
                    Bytes::new(),
                );
            }
            return Poll::Ready(Ok(()));
        }
        if s.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if s.remote_closed || dead {
            // EOF, as Go's stream reports after FIN or session close.
            return Poll::Ready(Ok(()));
        }
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut st = self.shared.lock();
        if st.dead {
            return Poll::Ready(Err(shutdown_error()));
        }
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        };
        if s.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if s.local_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "yamux: stream closed for writing",
            )));
        }
        if s.send_window == 0 {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = (s.send_window as usize).min(buf.len());
        s.send_window -= n as u32;
        self.shared.send(
            Header::new(FrameType::Data, 0, self.id, n as u32),
            Bytes::copy_from_slice(&buf[..n]),
        );
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames are queued in order; the session's writer flushes whenever its queue
        // drains, so there is nothing to wait for here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.shared.lock();
        let dead = st.dead;
        if let Some(s) = st.streams.get_mut(&self.id)
            && !s.local_closed
            && !s.reset
            && !dead
        {
            s.local_closed = true;
            self.shared.send(
                Header::new(FrameType::WindowUpdate, FLAG_FIN, self.id, 0),
                Bytes::new(),
            );
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let dead = st.dead;
        // Later frames for this id are drained and ignored by the reader.
        if let Some(s) = st.streams.remove(&self.id)
            && !s.local_closed
            && !s.reset
            && !dead
        {
            self.shared.send(
                Header::new(FrameType::WindowUpdate, FLAG_FIN, self.id, 0),
                Bytes::new(),
            );
        }
    }
}
