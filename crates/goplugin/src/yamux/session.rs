//! The yamux session: one reader task demultiplexing frames into per-stream buffers, one
//! writer task serialising outgoing frames onto the socket.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use super::YamuxError;
use super::frame::{
    FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN, FrameType, GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR,
    HEADER_LEN, Header,
};
use super::stream::Stream;

/// yamux's fixed initial window: both sides assume it for every new stream.
const INITIAL_STREAM_WINDOW: u32 = 256 * 1024;

/// How long a new inbound stream waits for room in a full accept backlog before it is reset.
const ACCEPT_BACKLOG_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Session settings; the defaults are hashicorp/yamux's.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Inbound streams waiting for `accept`; a new stream beyond this waits up to 1 s for
    /// room, then gets RST.
    pub accept_backlog: usize,
    /// Receive window per stream (at least 256 KiB; more is announced with the SYN/ACK).
    pub max_stream_window: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            accept_backlog: 256,
            max_stream_window: INITIAL_STREAM_WINDOW,
        }
    }
}

/// What the writer task is asked to do.
pub(crate) enum Out {
    /// Write one frame (header plus payload, payload empty except for Data).
    Frame(Header, Bytes),
    /// Flush and shut the socket's write side down, then stop.
    Shutdown,
}

/// Per-stream state, owned by the session map and shared with the `Stream` handle.
pub(crate) struct StreamState {
    /// Received payload not yet read by the application.
    pub(crate) recv_buf: VecDeque<Bytes>,
    /// Total bytes in `recv_buf`.
    pub(crate) buffered: u32,
    /// How much more the peer may send before our next WindowUpdate.
    pub(crate) recv_window: u32,
    /// How much more we may send before the peer's next WindowUpdate.
    pub(crate) send_window: u32,
    /// The peer sent FIN: reads end after the buffer drains.
    pub(crate) remote_closed: bool,
    /// We sent FIN: writes fail.
    pub(crate) local_closed: bool,
    /// RST in either direction: reads and writes fail.
    pub(crate) reset: bool,
    /// The task blocked in `poll_read`.
    pub(crate) read_waker: Option<Waker>,
    /// The task blocked in `poll_write` on a zero send window.
    pub(crate) write_waker: Option<Waker>,
    /// For a stream we opened: its place in the peer's accept backlog, held until the peer
    /// acknowledges (accepts) or resets it, or the stream goes away (see [`Session::open`]).
    pub(crate) syn_slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl StreamState {
    fn new() -> StreamState {
        StreamState {
            recv_buf: VecDeque::new(),
            buffered: 0,
            recv_window: INITIAL_STREAM_WINDOW,
            send_window: INITIAL_STREAM_WINDOW,
            remote_closed: false,
            local_closed: false,
            reset: false,
            read_waker: None,
            write_waker: None,
            syn_slot: None,
        }
    }

    pub(crate) fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

/// Session-wide mutable state.
pub(crate) struct State {
    pub(crate) streams: HashMap<u32, StreamState>,
    /// Next id we open: odd for a client, even for a server.
    next_id: u32,
    /// We sent GoAway: inbound SYNs get RST.
    local_go_away: bool,
    /// The peer sent GoAway(normal): we may not open streams.
    remote_go_away: bool,
    /// The session is over; every stream operation fails or reads EOF.
    pub(crate) dead: bool,
    /// Pings we sent, by opaque value, waiting for the ACK.
    pings: HashMap<u32, oneshot::Sender<()>>,
    next_ping: u32,
}

/// State shared by the session handle, the tasks and every stream.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    out: mpsc::UnboundedSender<Out>,
    pub(crate) config: Config,
    closed_tx: watch::Sender<bool>,
    reader: Mutex<Option<AbortHandle>>,
    /// Slots in the peer's accept backlog for streams we open (see [`Session::open`]).
    syn_slots: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// Locks the state; a poisoned lock (a panic elsewhere) is still usable because every
    /// update is a handful of field writes that leave the state consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame; if the writer is gone the session is dead and the frame is moot.
    pub(crate) fn send(&self, header: Header, body: Bytes) {
        let _ = self.out.send(Out::Frame(header, body));
    }

    /// Ends the session: every stream wakes up and sees EOF/errors, `closed()` resolves.
    fn kill(&self, state: &mut State) {
        if state.dead {
            return;
        }
        state.dead = true;
        for s in state.streams.values_mut() {
            s.wake_all();
        }
        // Openers waiting for a slot fail instead of waiting for a peer that is gone.
        self.syn_slots.close();
        // Dropping the senders fails the pending `ping()` calls.
        state.pings.clear();
        let _ = self.out.send(Out::Shutdown);
        self.closed_tx.send_replace(true);
        if let Some(h) = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.abort();
        }
    }
}

/// A yamux session over one connection. Cheap to clone; all clones are the same session.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    accept_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Stream>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Session {
    /// Starts the server role (even stream ids), as the plugin side of go-plugin does.
    /// Must be called inside a tokio runtime: it spawns the reader and writer tasks.
    pub fn server<T>(io: T, config: Config) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        Session::new(io, config, 2)
    }

    /// Starts the client role (odd stream ids), as the host side of go-plugin does.
    pub fn client<T>(io: T, config: Config) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        Session::new(io, config, 1)
    }

    fn new<T>(io: T, config: Config, first_id: u32) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let config = Config {
            accept_backlog: config.accept_backlog.max(1),
            max_stream_window: config.max_stream_window.max(INITIAL_STREAM_WINDOW),
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (accept_tx, accept_rx) = mpsc::channel(config.accept_backlog);
        let (closed_tx, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                streams: HashMap::new(),
                next_id: first_id,
                local_go_away: false,
                remote_go_away: false,
                dead: false,
                pings: HashMap::new(),
                next_ping: 0,
            }),
            out: out_tx,
            config,
            closed_tx,
            reader: Mutex::new(None),
            syn_slots: Arc::new(tokio::sync::Semaphore::new(config.accept_backlog)),
        });
        let (r, w) = tokio::io::split(io);
        let writer_shared = shared.clone();
        tokio::spawn(async move {
            if write_loop(w, out_rx).await.is_err() {
                writer_shared.kill(&mut writer_shared.lock());
            }
        });
        let reader_shared = shared.clone();
        let handle = tokio::spawn(async move {
            let result = read_loop(&reader_shared, r, accept_tx).await;
            if let Err(YamuxError::Protocol(_)) = result {
                reader_shared.send(
                    Header::new(FrameType::GoAway, 0, 0, GO_AWAY_PROTOCOL_ERROR),
                    Bytes::new(),
                );
            }
            reader_shared.kill(&mut reader_shared.lock());
        });
        *shared.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.abort_handle());
        // The task may have finished before the handle was stored; then kill already ran
        // and the stored handle is harmless.
        Session {
            shared,
            accept_rx: Arc::new(tokio::sync::Mutex::new(accept_rx)),
        }
    }

    /// Waits for the next inbound stream; `None` once the session has ended.
    pub async fn accept(&self) -> Option<Stream> {
        let mut rx = self.accept_rx.lock().await;
        tokio::select! {
            s = rx.recv() => s,
            // Streams queued before the end would be dead anyway.
            _ = self.closed() => None,
        }
    }

    /// Opens a stream: WindowUpdate+SYN goes out as soon as the peer's accept backlog has
    /// room, without waiting for the ACK.
    ///
    /// Facts (hashicorp/yamux `session.go`, `OpenStream`, `incomingStream`): a Go peer resets
    /// every new stream that finds `AcceptBacklog` (256) streams already waiting to be accepted
    /// ("backlog exceeded, forcing connection reset"), and a Go opener never has more than that
    /// many SYNs out that the peer has not acknowledged: it waits. So does this one, with the
    /// same count (`Config::accept_backlog`): under 600 concurrent plugin HTTP requests, each
    /// opening two streams back to the server, the server reset the excess and answered 500.
    pub async fn open(&self) -> Result<Stream, YamuxError> {
        let slot = self
            .shared
            .syn_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| YamuxError::SessionShutdown)?;
        let mut st = self.shared.lock();
        if st.dead {
            return Err(YamuxError::SessionShutdown);
        }
        if st.remote_go_away {
            return Err(YamuxError::RemoteGoAway);
        }
        let id = st.next_id;
        st.next_id = id.checked_add(2).ok_or(YamuxError::StreamsExhausted)?;
        let mut state = StreamState::new();
        let delta = self.shared.config.max_stream_window - INITIAL_STREAM_WINDOW;
        state.recv_window += delta;
        state.syn_slot = Some(slot);
        st.streams.insert(id, state);
        self.shared.send(
            Header::new(FrameType::WindowUpdate, FLAG_SYN, id, delta),
            Bytes::new(),
        );
        drop(st);
        Ok(Stream::new(id, self.shared.clone()))
    }

    /// Sends a ping and waits for the peer's ACK.
    pub async fn ping(&self) -> Result<(), YamuxError> {
        let rx = {
            let mut st = self.shared.lock();
            if st.dead {
                return Err(YamuxError::SessionShutdown);
            }
            let id = st.next_ping;
            st.next_ping = st.next_ping.wrapping_add(1);
            let (tx, rx) = oneshot::channel();
            st.pings.insert(id, tx);
            self.shared
                .send(Header::new(FrameType::Ping, FLAG_SYN, 0, id), Bytes::new());
            rx
        };
        rx.await.map_err(|_| YamuxError::SessionShutdown)
    }

    /// Sends GoAway(normal), flushes and shuts the socket down; every stream ends.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.dead {
            return;
        }
        st.local_go_away = true;
        self.shared.send(
            Header::new(FrameType::GoAway, 0, 0, GO_AWAY_NORMAL),
            Bytes::new(),
        );
        self.shared.kill(&mut st);
    }

    /// Resolves once the session has ended, for whatever reason.
    pub async fn closed(&self) {
        let mut rx = self.shared.closed_tx.subscribe();
        // An error means the sender is gone, which only happens once the session is dropped.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().dead
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    w: W,
    mut rx: mpsc::UnboundedReceiver<Out>,
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, w);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Write everything already queued, then flush once: small frames share a syscall.
        while let Some(out) = next {
            match out {
                Out::Frame(h, body) => {
                    w.write_all(&h.encode()).await?;
                    if !body.is_empty() {
                        w.write_all(&body).await?;
                    }
                }
                Out::Shutdown => {
                    w.flush().await?;
                    return w.shutdown().await;
                }
            }
            next = rx.try_recv().ok();
        }
        w.flush().await?;
    }
    Ok(())
}

/// What the reader decided about an inbound Data payload while holding the lock.
enum DataTarget {
    /// Buffer it for this stream.
    Stream,
    /// No such stream (we dropped or reset it): drain and ignore, like Go.
    Discard,
}

async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    r: R,
    accept_tx: mpsc::Sender<Stream>,
) -> Result<(), YamuxError> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    loop {
        let mut hb = [0u8; HEADER_LEN];
        match r.read_exact(&mut hb).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let h = Header::decode(&hb)?;
        match h.ty {
            FrameType::Ping => {
                if h.flags & FLAG_SYN != 0 {
                    shared.send(
                        Header::new(FrameType::Ping, FLAG_ACK, 0, h.length),
                        Bytes::new(),
                    );
                } else if h.flags & FLAG_ACK != 0
                    && let Some(tx) = shared.lock().pings.remove(&h.length)
                {
                    let _ = tx.send(());
                }
            }
            FrameType::GoAway => {
                if h.length == GO_AWAY_NORMAL {
                    shared.lock().remote_go_away = true;
                } else {
                    return Err(YamuxError::RemoteError(h.length));
                }
            }
            FrameType::Data | FrameType::WindowUpdate => {
                if h.flags & FLAG_SYN != 0 {
                    incoming_stream(shared, h.stream_id, &accept_tx).await?;
                }
                if h.ty == FrameType::WindowUpdate {
                    window_update(shared, h)?;
                } else {
                    data(shared, &mut r, h).await?;
                }
            }
        }
    }
}

async fn incoming_stream(
    shared: &Arc<Shared>,
    id: u32,
    accept_tx: &mpsc::Sender<Stream>,
) -> Result<(), YamuxError> {
    {
        let mut st = shared.lock();
        if st.local_go_away {
            shared.send(
                Header::new(FrameType::WindowUpdate, FLAG_RST, id, 0),
                Bytes::new(),
            );
            return Ok(());
        }
        if id == 0 || st.streams.contains_key(&id) {
            return Err(YamuxError::Protocol(format!("duplicate stream {id}")));
        }
        let mut s = StreamState::new();
        let delta = shared.config.max_stream_window - INITIAL_STREAM_WINDOW;
        s.recv_window += delta;
        st.streams.insert(id, s);
        // ACK now rather than on accept: see the module doc.
        shared.send(
            Header::new(FrameType::WindowUpdate, FLAG_ACK, id, delta),
            Bytes::new(),
        );
    }
    // The reader drains buffered frames without yielding, so a burst of SYNs can fill the
    // backlog before the acceptor task runs even once. Go resets at once; we first wait a
    // moment for room (holding up this connection's reader, which is the backpressure a
    // burst deserves) and reset only an acceptor that has stopped or is truly stuck.
    let permit = match accept_tx.try_reserve() {
        Ok(permit) => Some(permit),
        Err(mpsc::error::TrySendError::Full(())) => {
            tokio::time::timeout(ACCEPT_BACKLOG_WAIT, accept_tx.reserve())
                .await
                .ok()
                .and_then(Result::ok)
        }
        Err(mpsc::error::TrySendError::Closed(())) => None,
    };
    match permit {
        Some(permit) => permit.send(Stream::new(id, shared.clone())),
        None => {
            // Mark the state before the handle exists, so no Drop ever sends a FIN for it.
            let mut st = shared.lock();
            if let Some(s) = st.streams.get_mut(&id) {
                s.reset = true;
            }
            shared.send(
                Header::new(FrameType::WindowUpdate, FLAG_RST, id, 0),
                Bytes::new(),
            );
        }
    }
    Ok(())
}

/// Applies ACK/FIN/RST to a stream (the caller holds the lock).
fn apply_flags(s: &mut StreamState, flags: u16) {
    // Accepted or refused: either way it no longer waits in the peer's backlog.
    if flags & (FLAG_ACK | FLAG_RST) != 0 {
        s.syn_slot = None;
    }
    if flags & FLAG_FIN != 0 {
        s.remote_closed = true;
        if let Some(w) = s.read_waker.take() {
            w.wake();
        }
    }
    if flags & FLAG_RST != 0 {
        s.reset = true;
        s.wake_all();
    }
}

fn window_update(shared: &Arc<Shared>, h: Header) -> Result<(), YamuxError> {
    let mut st = shared.lock();
    let Some(s) = st.streams.get_mut(&h.stream_id) else {
        return Ok(());
    };
    apply_flags(s, h.flags);
    s.send_window = s
        .send_window
        .checked_add(h.length)
        .ok_or_else(|| YamuxError::Protocol("send window overflow".into()))?;
    if h.length > 0
        && let Some(w) = s.write_waker.take()
    {
        w.wake();
    }
    Ok(())
}

async fn data<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    r: &mut R,
    h: Header,
) -> Result<(), YamuxError> {
    let target = {
        let st = shared.lock();
        match st.streams.get(&h.stream_id) {
            None => DataTarget::Discard,
            Some(s) if h.length > s.recv_window => {
                return Err(YamuxError::Protocol(format!(
                    "receive window exceeded (stream: {}, remain: {}, recv: {})",
                    h.stream_id, s.recv_window, h.length
                )));
            }
            Some(_) => DataTarget::Stream,
        }
    };
    let payload = match target {
        DataTarget::Discard => {
            tokio::io::copy(
                &mut (&mut *r).take(u64::from(h.length)),
                &mut tokio::io::sink(),
            )
            .await?;
            return Ok(());
        }
        // The length was bounded by the receive window above, so this allocation is too.
        DataTarget::Stream => {
            let mut buf = BytesMut::zeroed(h.length as usize);
            r.read_exact(&mut buf).await?;
            buf.freeze()
        }
    };
    let mut st = shared.lock();
    // The handle may have been dropped while we read the payload.
    let Some(s) = st.streams.get_mut(&h.stream_id) else {
        return Ok(());
    };
    if !payload.is_empty() {
        s.recv_window -= h.length;
        s.buffered += h.length;
        s.recv_buf.push_back(payload);
        if let Some(w) = s.read_waker.take() {
            w.wake();
        }
    }
    apply_flags(s, h.flags);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ping_and_multi_window_transfer_between_our_roles() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = Session::server(a, Config::default());
        let client = Session::client(b, Config::default());
        client.ping().await.unwrap();
        server.ping().await.unwrap();
        let mut out = client.open().await.unwrap();
        assert_eq!(out.id(), 1, "client ids are odd from 1");
        let data: Vec<u8> = (0..3 * INITIAL_STREAM_WINDOW)
            .map(|i| (i % 251) as u8)
            .collect();
        let expect = data.clone();
        let writer = tokio::spawn(async move {
            out.write_all(&data).await.unwrap();
            out.shutdown().await.unwrap();
            out
        });
        let mut inb = server.accept().await.unwrap();
        let mut got = Vec::new();
        inb.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, expect);
        drop(writer.await.unwrap());
        assert_eq!(
            server.open().await.unwrap().id(),
            2,
            "server ids are even from 2"
        );
    }

    #[tokio::test]
    async fn window_overrun_ends_session_with_protocol_go_away() {
        let (a, mut raw) = tokio::io::duplex(1 << 20);
        let server = Session::server(a, Config::default());
        let syn = Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0).encode();
        raw.write_all(&syn).await.unwrap();
        let too_big = INITIAL_STREAM_WINDOW + 1;
        raw.write_all(&Header::new(FrameType::Data, 0, 1, too_big).encode())
            .await
            .unwrap();
        server.closed().await;
        // Expect our ACK for stream 1, then GoAway(protocol error).
        let mut frames = Vec::new();
        raw.read_to_end(&mut frames).await.unwrap();
        let ack = Header::decode(frames[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(ack, Header::new(FrameType::WindowUpdate, FLAG_ACK, 1, 0));
        let go_away =
            Header::decode(frames[HEADER_LEN..2 * HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(
            go_away,
            Header::new(FrameType::GoAway, 0, 0, GO_AWAY_PROTOCOL_ERROR)
        );
    }

    /// Reads every frame header the session wrote until `n` have arrived.
    async fn frames(raw: &mut tokio::io::DuplexStream, n: usize) -> Vec<Header> {
        let mut out = Vec::new();
        while out.len() < n {
            let mut hb = [0u8; HEADER_LEN];
            raw.read_exact(&mut hb).await.unwrap();
            out.push(Header::decode(&hb).unwrap());
        }
        out
    }

    #[tokio::test]
    async fn opens_wait_while_the_peers_backlog_is_full_of_unacknowledged_streams() {
        let (a, mut raw) = tokio::io::duplex(1 << 20);
        let config = Config {
            accept_backlog: 2,
            ..Config::default()
        };
        let client = Session::client(a, config);
        let _s1 = client.open().await.unwrap();
        let s2 = client.open().await.unwrap();
        let syns = frames(&mut raw, 2).await;
        assert!(syns.iter().all(|h| h.flags == FLAG_SYN), "{syns:?}");
        // A Go peer would reset a third stream now: ours must wait for a slot.
        let third = tokio::spawn({
            let client = client.clone();
            async move { client.open().await.map(|s| s.id()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !third.is_finished(),
            "a third SYN went out with the backlog full"
        );
        // The peer accepts stream 1 (ACK): the third goes out.
        raw.write_all(&Header::new(FrameType::WindowUpdate, FLAG_ACK, 1, 0).encode())
            .await
            .unwrap();
        assert_eq!(third.await.unwrap().unwrap(), 5);
        assert_eq!(
            frames(&mut raw, 1).await[0],
            Header::new(FrameType::WindowUpdate, FLAG_SYN, 5, 0)
        );
        // A stream dropped before its ACK frees its slot too (a FIN goes out for it).
        drop(s2);
        let fourth = tokio::time::timeout(std::time::Duration::from_secs(5), client.open()).await;
        assert_eq!(fourth.unwrap().unwrap().id(), 7);
        // The session's end fails waiting openers instead of leaving them hanging.
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { client.open().await.map(|s| s.id()) }
        });
        drop(raw);
        assert!(matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
                .await
                .unwrap()
                .unwrap(),
            Err(YamuxError::SessionShutdown)
        ));
    }

    #[tokio::test]
    async fn syn_burst_beyond_backlog_waits_for_a_slow_acceptor_instead_of_resetting() {
        let (a, mut raw) = tokio::io::duplex(1 << 20);
        let server = Session::server(
            a,
            Config {
                accept_backlog: 2,
                ..Config::default()
            },
        );
        // Twenty SYNs in one write: the reader sees them all in one buffer.
        let burst: Vec<u8> = (0..20u32)
            .flat_map(|i| Header::new(FrameType::WindowUpdate, FLAG_SYN, 2 * i + 1, 0).encode())
            .collect();
        raw.write_all(&burst).await.unwrap();
        // The acceptor starts late and is slow, but never stops.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut accepted = Vec::new();
        for _ in 0..20 {
            // Held, not dropped: a dropped handle would send its FIN among the frames below.
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), server.accept());
            accepted.push(next.await.expect("a stream was reset, not queued").unwrap());
            tokio::task::yield_now().await;
        }
        let ids: Vec<u32> = accepted.iter().map(Stream::id).collect();
        assert_eq!(ids, (0..20u32).map(|i| 2 * i + 1).collect::<Vec<_>>());
        for h in frames(&mut raw, 20).await {
            assert_eq!(
                h.flags, FLAG_ACK,
                "stream {} was not just ACKed: {h:?}",
                h.stream_id
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stream_beyond_backlog_is_reset_once_nobody_accepts_for_a_second() {
        let (a, mut raw) = tokio::io::duplex(1 << 20);
        let _server = Session::server(
            a,
            Config {
                accept_backlog: 1,
                ..Config::default()
            },
        );
        for id in [1u32, 3] {
            raw.write_all(&Header::new(FrameType::WindowUpdate, FLAG_SYN, id, 0).encode())
                .await
                .unwrap();
        }
        let got = frames(&mut raw, 3).await;
        assert_eq!(
            got,
            vec![
                Header::new(FrameType::WindowUpdate, FLAG_ACK, 1, 0),
                Header::new(FrameType::WindowUpdate, FLAG_ACK, 3, 0),
                Header::new(FrameType::WindowUpdate, FLAG_RST, 3, 0),
            ]
        );
    }
}
