//! Peers for the connection tests: a pair of real connections over an in-memory duplex, and
//! a raw peer that writes and reads frames by hand (to send what a well-behaved end never
//! would: late answers, unknown ids, broken headers).
#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use mmplug_lane::frame::{HEADER_LEN, Hello, VERSION};
use mmplug_lane::{
    Decoded, Decoder, Established, Event, Frame, MAX_BODY, Options, Roles, accept, connect,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

pub const TOKEN: &[u8] = b"4f1c0de5a7e2b9d3c8f6a1b0e9d7c5a3b2f4e6d8c0a9b7e5d3c1f2a4b6d8e0f1";

/// A hook's path, for calls that need a realistic one.
pub const ON_ACTIVATE: &str = "/mattermost.plugin.v1.PluginHooks/OnActivate";

/// The bridge's end (accepting) and Python's end (connecting), over a duplex of `capacity`.
pub async fn pair_with(
    capacity: usize,
    bridge: Options,
    python: Options,
) -> (Established, Established) {
    let (bridge_end, python_end) = tokio::io::duplex(capacity);
    let python = tokio::spawn(connect(python_end, TOKEN, python));
    let bridge = accept(bridge_end, TOKEN, bridge).await.expect("accepted");
    let python = python.await.expect("connect task").expect("connected");
    (bridge, python)
}

pub async fn pair(bridge: Options, python: Options) -> (Established, Established) {
    pair_with(1 << 20, bridge, python).await
}

/// Records every [`Event`] an end reports.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub fn observer(&self) -> impl Fn(Event) + Send + Sync + 'static {
        let events = Arc::clone(&self.0);
        move |event| events.lock().unwrap().push(event)
    }

    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Python's end written by hand: frames in, frames out, nothing checked.
pub struct RawPeer {
    pub stream: DuplexStream,
    decoder: Decoder,
    buf: BytesMut,
}

impl RawPeer {
    /// Connects to a bridge end accepting with `options`; returns both once the HELLOs
    /// have crossed.
    pub async fn connect(options: Options, capacity: usize) -> (Established, RawPeer) {
        let (bridge_end, python_end) = tokio::io::duplex(capacity);
        let bridge = tokio::spawn(accept(bridge_end, TOKEN, options));
        let mut raw = RawPeer::over(python_end);
        raw.send(&Frame::Hello(Hello {
            version: VERSION,
            roles: Roles::SERVES_HOOKS,
            token: Bytes::from_static(TOKEN),
        }))
        .await;
        let bridge = bridge.await.expect("accept task").expect("accepted");
        match raw.next().await {
            Some(Decoded::Frame(Frame::Hello(h))) => assert_eq!(h.token.len(), 0),
            other => panic!("expected the answering HELLO, got {other:?}"),
        }
        (bridge, raw)
    }

    pub fn over(stream: DuplexStream) -> RawPeer {
        RawPeer {
            stream,
            decoder: Decoder::new(MAX_BODY),
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        frame.encode(&mut out).expect("encodable");
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw write");
    }

    /// The next frame the other end wrote; None once it closed.
    pub async fn next(&mut self) -> Option<Decoded> {
        loop {
            if let Some(d) = self
                .decoder
                .decode(&mut self.buf)
                .expect("the bridge's frames")
            {
                return Some(d);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next frame, which must be whole.
    pub async fn frame(&mut self) -> Frame {
        match self.next().await {
            Some(Decoded::Frame(f)) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// A header with any bytes, rules or not.
pub fn raw_header(length: u32, kind: u8, flags: u8, method_length: u16, id: u64) -> [u8; 16] {
    let mut b = [0u8; HEADER_LEN];
    b[0..4].copy_from_slice(&length.to_le_bytes());
    b[4] = kind;
    b[5] = flags;
    b[6..8].copy_from_slice(&method_length.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b
}

/// Sends a notice when dropped: shows a handler's future was dropped (cancelled).
pub struct DropNotice(pub Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropNotice {
    fn drop(&mut self) {
        if let Some(notice) = self.0.take() {
            let _ = notice.send(());
        }
    }
}

/// A stream that counts the writes that reach it.
pub struct CountingStream {
    pub inner: DuplexStream,
    pub writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if poll.is_ready() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if poll.is_ready() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
