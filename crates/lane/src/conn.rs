//! A lane connection after its handshake: calls out, calls in, one writer, one reader.
//!
//! Three kinds of task run per connection, all spawned on the caller's tokio runtime (the
//! bridge's is current-thread; nothing here needs more):
//! - the reader splits the stream into frames and routes each: an answer completes its
//!   pending call, a `REQUEST` starts a handler task, a `CANCEL` aborts one;
//! - the writer takes every frame queued since its last write and writes them together
//!   (a burst of calls costs one system call, not one each); messages of more than
//!   [`COPY_MAX`] bytes are written from where they lie, the rest is copied into one buffer;
//! - one task per incoming `REQUEST`, running the [`Handler`]'s future.
//!
//! Peer input never panics the connection: a header that breaks the rules closes it with
//! [`CloseReason::Violation`]; everything else fails or drops just the call it concerns and
//! is reported to the [`Observer`], if there is one.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::frame::{Decoded, Decoder, Frame, HEADER_LEN, HeaderError, Kind, MAX_BODY, Roles};
use crate::status::{Code, Status};

/// Most bytes of frames a connection holds queued for writing (512 MiB): past it, a call
/// or answer that would be queued fails with `RESOURCE_EXHAUSTED` instead.
pub const MAX_QUEUED: usize = 512 << 20;

/// Messages up to this size are copied into the writer's buffer; longer ones are written
/// from their own memory (a copy of a few KiB is cheaper than another iovec entry).
pub const COPY_MAX: usize = 16 << 10;

/// The writer stops gathering queued frames into one write at this many bytes.
const COALESCE_BYTES: usize = 256 << 10;

/// Most buffers in one vectored write (Linux allows 1024).
const MAX_SLICES: usize = 64;

/// The reader's buffer grows in steps of this much.
const READ_CHUNK: usize = 64 << 10;

/// An `ERROR`'s message is cut to this many bytes: it must fit the peer's body limit, and a
/// handler's error text longer than this is a bug to read in a log, not to send.
pub const MAX_ERROR_MESSAGE: usize = 64 << 10;

/// The future a [`Handler`] returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, Status>> + Send + 'static>>;

/// What serves the `REQUEST`s a peer sends (the bridge: the API; a Python stand-in: hooks).
pub trait Handler: Send + Sync + 'static {
    /// Starts the call of `method` (a gRPC path) with `message`. The future runs in a task of
    /// its own and is dropped, unfinished, when the caller sends `CANCEL` or the connection
    /// closes; nothing is sent for it then.
    fn call(&self, method: &str, message: Bytes) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(&str, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes, Status>> + Send + 'static,
{
    fn call(&self, method: &str, message: Bytes) -> HandlerFuture {
        Box::pin(self(method, message))
    }
}

/// Hears what the connection handled by itself (for the bridge's log).
pub trait Observer: Send + Sync + 'static {
    /// Called from the connection's tasks; must not block.
    fn event(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync + 'static> Observer for F {
    fn event(&self, event: Event) {
        self(event)
    }
}

/// Something the connection handled by itself, without closing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A frame's body was over the limit and was read past: a `REQUEST` is answered
    /// `RESOURCE_EXHAUSTED`, an answer fails its call with it.
    OverLimit {
        /// The frame's kind.
        kind: Kind,
        /// Its call id.
        call_id: u64,
        /// Its body's length.
        length: u32,
        /// The limit.
        limit: u32,
    },
    /// A `RESPONSE` or `ERROR` for a call that is not pending (withdrawn, timed out, never
    /// sent) was dropped.
    UnmatchedAnswer {
        /// `RESPONSE` or `ERROR`.
        kind: Kind,
        /// The call id it named.
        call_id: u64,
    },
    /// The connection answered a `REQUEST` with an `ERROR` of its own, not the handler's:
    /// a method path that is not UTF-8, no handler, a handler that panicked, an answer over
    /// the body or queue limit.
    Refused {
        /// The request's call id.
        call_id: u64,
        /// What was sent.
        status: Status,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::OverLimit {
                kind,
                call_id,
                length,
                limit,
            } => write!(
                f,
                "{kind} {call_id} has a body of {length} bytes, over the limit of {limit} bytes: read past unkept"
            ),
            Event::UnmatchedAnswer { kind, call_id } => write!(
                f,
                "{kind} for call {call_id}, which is not pending (withdrawn, timed out or never sent): dropped"
            ),
            Event::Refused { call_id, status } => {
                write!(f, "REQUEST {call_id} answered by the connection: {status}")
            }
        }
    }
}

/// A connection's size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body sent or kept ([`MAX_BODY`]).
    pub max_body: u32,
    /// Most bytes queued for writing ([`MAX_QUEUED`]).
    pub max_queued: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: MAX_BODY,
            max_queued: MAX_QUEUED,
        }
    }
}

/// How a connection is set up: what this end declares and serves, and its limits.
#[derive(Clone, Default)]
pub struct Options {
    pub(crate) roles: Roles,
    pub(crate) limits: Limits,
    pub(crate) handler: Option<Arc<dyn Handler>>,
    pub(crate) observer: Option<Arc<dyn Observer>>,
}

impl Options {
    /// Roles [`Roles::NONE`], the spec's limits, no handler (every `REQUEST` is answered
    /// `UNIMPLEMENTED`), no observer.
    pub fn new() -> Options {
        Options::default()
    }

    /// The roles this end's `HELLO` declares.
    pub fn roles(mut self, roles: Roles) -> Options {
        self.roles = roles;
        self
    }

    /// Limits other than the spec's (tests, fuzzing).
    pub fn limits(mut self, limits: Limits) -> Options {
        self.limits = limits;
        self
    }

    /// Serves the peer's `REQUEST`s.
    pub fn handler(mut self, handler: impl Handler) -> Options {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Hears the [`Event`]s.
    pub fn observer(mut self, observer: impl Observer) -> Options {
        self.observer = Some(Arc::new(observer));
        self
    }
}

/// A rule of the connection the peer broke (beyond a single header's, [`HeaderError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A header broke a rule.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A `HELLO` after the handshake.
    #[error("a second HELLO")]
    SecondHello,
    /// A `REQUEST` reused the id of one of the peer's requests still being served.
    #[error("REQUEST {call_id} reuses the id of a request still in flight")]
    RequestIdInUse {
        /// The id.
        call_id: u64,
    },
}

/// Why a connection closed. Every call pending on it failed with `UNAVAILABLE` naming this.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloseReason {
    /// The peer closed the connection between frames.
    #[error("the peer closed the connection")]
    PeerClosed,
    /// The peer closed the connection inside a frame.
    #[error("the peer closed the connection inside a frame")]
    Truncated,
    /// Reading failed.
    #[error("reading from the peer failed: {0}")]
    Read(Arc<io::Error>),
    /// Writing failed.
    #[error("writing to the peer failed: {0}")]
    Write(Arc<io::Error>),
    /// The peer broke the protocol; what follows cannot be trusted.
    #[error("the peer broke the protocol: {0}")]
    Violation(#[from] ProtocolError),
    /// This end closed it ([`Connection::close`], or every handle was dropped).
    #[error("closed by this end")]
    Local,
}

/// What a connection holds at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Calls of this end's waiting for their answer.
    pub pending_calls: usize,
    /// Handler tasks running for the peer's requests.
    pub running_handlers: usize,
    /// Bytes of frames queued for writing and not yet written.
    pub queued_bytes: usize,
}

/// One lane connection, after its handshake ([`crate::accept`], [`crate::connect`]).
///
/// Cheap to clone; every clone is the same connection. It closes when [`Connection::close`]
/// is called, when the peer closes it or breaks the protocol, or when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Closes the connection when the last [`Connection`] clone goes; the tasks hold
/// [`Shared`] but not this, so they do not keep the connection alive by themselves.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close(CloseReason::Local);
    }
}

struct Shared {
    state: Mutex<State>,
    /// Frames for the writer, in order.
    outgoing: mpsc::UnboundedSender<Frame>,
    /// Bytes of frames sent to the writer and not yet written.
    queued: AtomicUsize,
    limits: Limits,
    peer_roles: Roles,
    observer: Option<Arc<dyn Observer>>,
    /// Set once, when the connection closes.
    closed: watch::Sender<Option<CloseReason>>,
}

#[derive(Default)]
struct State {
    close_reason: Option<CloseReason>,
    /// Dropped when the connection closes: a handler holding a clone of its own connection
    /// would otherwise keep it (and itself) alive forever.
    handler: Option<Arc<dyn Handler>>,
    next_call_id: u64,
    /// This end's calls waiting for an answer.
    pending: HashMap<u64, oneshot::Sender<Result<Bytes, Status>>>,
    /// Handler tasks serving the peer's requests, by the peer's call id.
    running: HashMap<u64, AbortHandle>,
    /// The reader and writer.
    tasks: Vec<AbortHandle>,
}

impl Connection {
    /// Runs the connection over `stream`, whose handshake is done.
    pub(crate) fn start<S>(stream: S, options: Options, peer_roles: Roles) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (outgoing, frames) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                handler: options.handler,
                next_call_id: 1,
                ..State::default()
            }),
            outgoing,
            queued: AtomicUsize::new(0),
            limits: options.limits,
            peer_roles,
            observer: options.observer,
            closed: watch::Sender::new(None),
        });
        let read = tokio::spawn(read_loop(Arc::clone(&shared), reader));
        let write = tokio::spawn(write_loop(Arc::clone(&shared), frames, writer));
        shared.adopt_tasks([read.abort_handle(), write.abort_handle()]);
        Connection {
            _owner: Arc::new(Owner(Arc::clone(&shared))),
            shared,
        }
    }

    /// Calls `method` (a gRPC path) on the peer with `message` and waits for the answer,
    /// for at most `timeout` if given. A call that times out, or whose future is dropped,
    /// is withdrawn: `CANCEL` is sent and a late answer is dropped.
    ///
    /// Fails with the peer's `ERROR` status, or: `DEADLINE_EXCEEDED` past `timeout`;
    /// `RESOURCE_EXHAUSTED` for a request or answer over the body limit or a request that
    /// would take the write queue past its limit; `INVALID_ARGUMENT` for a method path
    /// over 65,535 bytes; `UNAVAILABLE` when the connection is or becomes closed.
    pub async fn call(
        &self,
        method: &str,
        message: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        let (call_id, answer) = self.shared.start_call(method, message)?;
        let mut withdraw = Withdraw {
            shared: &self.shared,
            call_id,
            armed: true,
        };
        let answer = match timeout {
            None => answer.await,
            Some(limit) => match tokio::time::timeout(limit, answer).await {
                Ok(answer) => answer,
                // `withdraw` sends CANCEL as it drops.
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "{method} did not answer within {limit:?}"
                    )));
                }
            },
        };
        withdraw.armed = false;
        // The sender only goes unsent when the connection's state is dropped with it.
        answer.unwrap_or_else(|_| Err(Status::unavailable("the lane connection is gone")))
    }

    /// The roles the peer's `HELLO` declared.
    pub fn peer_roles(&self) -> Roles {
        self.shared.peer_roles
    }

    /// Closes the connection: pending calls fail with `UNAVAILABLE`, handlers are dropped,
    /// queued frames are not written.
    pub fn close(&self) {
        self.shared.close(CloseReason::Local);
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.state().close_reason.clone()
    }

    /// Waits until the connection closes; says why.
    pub async fn closed(&self) -> CloseReason {
        let mut closed = self.shared.closed.subscribe();
        match closed.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(CloseReason::Local),
            // Unreachable while `self` holds the sender.
            Err(_) => CloseReason::Local,
        }
    }

    /// What the connection holds now.
    pub fn stats(&self) -> Stats {
        let state = self.shared.state();
        Stats {
            pending_calls: state.pending.len(),
            running_handlers: state.running.len(),
            queued_bytes: self.shared.queued.load(Ordering::SeqCst),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer_roles", &self.shared.peer_roles)
            .field("stats", &self.stats())
            .field("close_reason", &self.close_reason())
            .finish()
    }
}

/// Withdraws a call whose future ends without its answer (timed out or dropped).
struct Withdraw<'a> {
    shared: &'a Shared,
    call_id: u64,
    armed: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.withdraw(self.call_id);
        }
    }
}

/// What a handler task ended with.
enum HandlerOutcome {
    Finished(Result<Bytes, Status>),
    Panicked,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // No code that can panic runs under the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn adopt_tasks(&self, tasks: [AbortHandle; 2]) {
        let mut state = self.state();
        if state.close_reason.is_some() {
            // Closed before the tasks were recorded (possible on a multi-thread runtime).
            tasks.iter().for_each(AbortHandle::abort);
        } else {
            state.tasks.extend(tasks);
        }
    }

    fn observe(&self, event: Event) {
        if let Some(observer) = &self.observer {
            observer.event(event);
        }
    }

    /// Hands `frame` to the writer. A `bounded` frame (a request or response message) is
    /// refused with `RESOURCE_EXHAUSTED` if it would take the queue past its limit; the
    /// small control frames (`ERROR`, `CANCEL`) always go, so a full queue can still answer
    /// and withdraw.
    fn enqueue(&self, frame: Frame, bounded: bool) -> Result<(), Status> {
        let size = HEADER_LEN.saturating_add(frame.body_len());
        if bounded {
            let max = self.limits.max_queued;
            self.queued
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                    queued.checked_add(size).filter(|&total| total <= max)
                })
                .map_err(|queued| {
                    Status::resource_exhausted(format!(
                        "a {} of {size} bytes would take the write queue past its limit of \
                         {max} bytes ({queued} bytes queued: the peer is not reading)",
                        frame.kind()
                    ))
                })?;
        } else {
            self.queued.fetch_add(size, Ordering::SeqCst);
        }
        if self.outgoing.send(frame).is_err() {
            self.queued.fetch_sub(size, Ordering::SeqCst);
            return Err(Status::unavailable("the lane connection is closed"));
        }
        Ok(())
    }

    fn start_call(
        &self,
        method: &str,
        message: Bytes,
    ) -> Result<(u64, oneshot::Receiver<Result<Bytes, Status>>), Status> {
        if method.len() > usize::from(u16::MAX) {
            return Err(Status::invalid_argument(format!(
                "a method path of {} bytes is longer than the {} bytes a frame can name",
                method.len(),
                u16::MAX
            )));
        }
        let body_len = method.len().saturating_add(message.len());
        let max_body = self.limits.max_body;
        if body_len > max_body as usize {
            return Err(Status::resource_exhausted(format!(
                "{method}: a request of {body_len} bytes is over the limit of {max_body} bytes"
            )));
        }
        let mut state = self.state();
        if let Some(reason) = &state.close_reason {
            return Err(Status::unavailable(format!(
                "the lane connection is closed: {reason}"
            )));
        }
        let call_id = state.next_call_id;
        // 2^64 calls never happen; wrapping keeps the arithmetic panic-free regardless.
        state.next_call_id = call_id.wrapping_add(1).max(1);
        let request = Frame::Request {
            call_id,
            method: Bytes::copy_from_slice(method.as_bytes()),
            message,
        };
        self.enqueue(request, true)?;
        let (answer, waiter) = oneshot::channel();
        state.pending.insert(call_id, answer);
        Ok((call_id, waiter))
    }

    fn withdraw(&self, call_id: u64) {
        let mut state = self.state();
        if state.pending.remove(&call_id).is_some() && state.close_reason.is_none() {
            // Fails only when the connection is closing: nothing to withdraw from then.
            let _ = self.enqueue(Frame::Cancel { call_id }, false);
        }
    }

    /// Closes once: fails pending calls, drops handlers, stops the reader and writer.
    fn close(&self, reason: CloseReason) {
        // Everything taken is dropped after the lock is released: dropping the handler may
        // drop a Connection, whose Owner calls close again.
        let (pending, running, tasks, _handler) = {
            let mut state = self.state();
            if state.close_reason.is_some() {
                return;
            }
            state.close_reason = Some(reason.clone());
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.running),
                std::mem::take(&mut state.tasks),
                state.handler.take(),
            )
        };
        running.values().for_each(AbortHandle::abort);
        tasks.iter().for_each(AbortHandle::abort);
        let status = Status::unavailable(format!("the lane connection closed: {reason}"));
        for (_, waiter) in pending {
            let _ = waiter.send(Err(status.clone()));
        }
        self.closed.send_replace(Some(reason));
    }

    /// Acts on one decoded frame; an error closes the connection.
    fn receive(self: &Arc<Self>, decoded: Decoded) -> Result<(), ProtocolError> {
        match decoded {
            Decoded::Frame(Frame::Hello(_)) => Err(ProtocolError::SecondHello),
            Decoded::Frame(Frame::Request {
                call_id,
                method,
                message,
            }) => self.start_handler(call_id, &method, message),
            Decoded::Frame(Frame::Response { call_id, message }) => {
                if !self.complete_call(call_id, Ok(message)) {
                    self.observe(Event::UnmatchedAnswer {
                        kind: Kind::Response,
                        call_id,
                    });
                }
                Ok(())
            }
            Decoded::Frame(Frame::Error {
                call_id,
                code,
                message,
            }) => {
                let status = Status::new(Code(code), String::from_utf8_lossy(&message));
                if !self.complete_call(call_id, Err(status)) {
                    self.observe(Event::UnmatchedAnswer {
                        kind: Kind::Error,
                        call_id,
                    });
                }
                Ok(())
            }
            Decoded::Frame(Frame::Cancel { call_id }) => {
                // None: the handler finished (its answer crossed the CANCEL) or never ran.
                if let Some(handler) = self.state().running.remove(&call_id) {
                    handler.abort();
                }
                Ok(())
            }
            Decoded::OverLimit {
                kind,
                call_id,
                length,
            } => {
                let limit = self.limits.max_body;
                let over = format!(
                    "a {kind} of {length} bytes is over the limit of {limit} bytes and was read \
                     past unkept"
                );
                match kind {
                    Kind::Hello => return Err(ProtocolError::SecondHello),
                    Kind::Request => {
                        if self.state().running.contains_key(&call_id) {
                            return Err(ProtocolError::RequestIdInUse { call_id });
                        }
                        self.observe(Event::OverLimit {
                            kind,
                            call_id,
                            length,
                            limit,
                        });
                        self.refuse(call_id, Status::resource_exhausted(over));
                    }
                    Kind::Response | Kind::Error => {
                        self.observe(Event::OverLimit {
                            kind,
                            call_id,
                            length,
                            limit,
                        });
                        self.complete_call(call_id, Err(Status::resource_exhausted(over)));
                    }
                    // A CANCEL has no body: Header::decode refuses one with a length.
                    Kind::Cancel => {}
                }
                Ok(())
            }
        }
    }

    /// Delivers an answer to its pending call; false if no call is pending under that id.
    fn complete_call(&self, call_id: u64, answer: Result<Bytes, Status>) -> bool {
        let waiter = self.state().pending.remove(&call_id);
        match waiter {
            Some(waiter) => {
                // A dropped receiver: the caller went away as the answer came; nothing to do.
                let _ = waiter.send(answer);
                true
            }
            None => false,
        }
    }

    fn start_handler(
        self: &Arc<Self>,
        call_id: u64,
        method: &[u8],
        message: Bytes,
    ) -> Result<(), ProtocolError> {
        let handler = {
            let state = self.state();
            if state.running.contains_key(&call_id) {
                return Err(ProtocolError::RequestIdInUse { call_id });
            }
            if state.close_reason.is_some() {
                return Ok(());
            }
            state.handler.clone()
        };
        let Ok(method) = std::str::from_utf8(method) else {
            self.refuse(
                call_id,
                Status::unimplemented("the method path is not UTF-8"),
            );
            return Ok(());
        };
        let Some(handler) = handler else {
            self.refuse(
                call_id,
                Status::unimplemented(format!("{method}: this end serves no calls here")),
            );
            return Ok(());
        };
        // The handler's own code runs outside the lock: it may call on this connection.
        let future =
            match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(method, message))) {
                Ok(future) => future,
                Err(_) => {
                    self.refuse(
                        call_id,
                        Status::internal(format!("{method}: the handler panicked")),
                    );
                    return Ok(());
                }
            };
        let shared = Arc::clone(self);
        let mut state = self.state();
        if state.close_reason.is_some() {
            return Ok(());
        }
        // Spawned under the lock, so the task cannot look for its entry before it exists.
        let task = tokio::spawn(async move {
            let outcome = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => HandlerOutcome::Finished(result),
                Err(_) => HandlerOutcome::Panicked,
            };
            shared.finish_handler(call_id, outcome);
        });
        state.running.insert(call_id, task.abort_handle());
        Ok(())
    }

    /// Sends a finished handler's answer, unless its call was withdrawn meanwhile.
    fn finish_handler(&self, call_id: u64, outcome: HandlerOutcome) {
        {
            let mut state = self.state();
            // Removed under the lock, so a CANCEL processed after this finds nothing and one
            // processed before has removed the entry: exactly one of the two acts.
            if state.running.remove(&call_id).is_none() || state.close_reason.is_some() {
                return;
            }
        }
        match outcome {
            HandlerOutcome::Finished(Ok(message)) => {
                let max_body = self.limits.max_body;
                if message.len() > max_body as usize {
                    self.refuse(
                        call_id,
                        Status::resource_exhausted(format!(
                            "a response of {} bytes is over the limit of {max_body} bytes",
                            message.len()
                        )),
                    );
                    return;
                }
                match self.enqueue(Frame::Response { call_id, message }, true) {
                    Ok(()) => {}
                    Err(status) if status.code() == Code::RESOURCE_EXHAUSTED => {
                        self.refuse(call_id, status);
                    }
                    // Closed meanwhile: nobody to answer.
                    Err(_) => {}
                }
            }
            HandlerOutcome::Finished(Err(status)) => self.send_error(call_id, &status),
            HandlerOutcome::Panicked => {
                self.refuse(call_id, Status::internal("the handler panicked"));
            }
        }
    }

    /// Answers a request with an `ERROR` of the connection's own.
    fn refuse(&self, call_id: u64, status: Status) {
        self.send_error(call_id, &status);
        self.observe(Event::Refused { call_id, status });
    }

    fn send_error(&self, call_id: u64, status: &Status) {
        let text = status.message();
        let mut cut = text.len().min(MAX_ERROR_MESSAGE);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let frame = Frame::Error {
            call_id,
            code: status.code().0,
            message: Bytes::copy_from_slice(&text.as_bytes()[..cut]),
        };
        // Fails only when the connection is closed: nobody to answer.
        let _ = self.enqueue(frame, false);
    }
}

async fn read_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut reader: R) {
    let mut decoder = Decoder::new(shared.limits.max_body);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let reason = 'read: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(decoded)) => {
                    if let Err(e) = shared.receive(decoded) {
                        break 'read CloseReason::Violation(e);
                    }
                }
                Ok(None) => break,
                Err(e) => break 'read CloseReason::Violation(e.into()),
            }
        }
        // Grows with what arrives, never by what a header announces: a peer's length alone
        // allocates nothing.
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() && !decoder.is_mid_frame() => break CloseReason::PeerClosed,
            Ok(0) => break CloseReason::Truncated,
            Ok(_) => {}
            Err(e) => break CloseReason::Read(Arc::new(e)),
        }
    };
    shared.close(reason);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut frames: mpsc::UnboundedReceiver<Frame>,
    mut writer: W,
) {
    let mut batch = Batch::default();
    // `shared` holds the sender, so `recv` only ends when the task is aborted.
    while let Some(first) = frames.recv().await {
        batch.push(first);
        while batch.bytes < COALESCE_BYTES {
            match frames.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        let written = batch.bytes;
        if let Err(e) = batch.write_to(&mut writer).await {
            shared.close(CloseReason::Write(Arc::new(e)));
            return;
        }
        shared.queued.fetch_sub(written, Ordering::SeqCst);
    }
}

/// Frames gathered for one write: small pieces copied into `open`, large messages kept as
/// their own segments.
#[derive(Default)]
struct Batch {
    segments: VecDeque<Bytes>,
    open: BytesMut,
    /// Wire bytes of the frames pushed (as counted by the queue).
    bytes: usize,
}

impl Batch {
    fn push(&mut self, frame: Frame) {
        let size = HEADER_LEN.saturating_add(frame.body_len());
        self.bytes = self.bytes.saturating_add(size);
        // Every frame queued was checked against the header's fields when it was built.
        if frame.encode_head(&mut self.open).is_err() {
            return;
        }
        match frame.message() {
            Some(message) if message.len() > COPY_MAX => {
                self.seal();
                self.segments.push_back(message.clone());
            }
            Some(message) => self.open.put_slice(message),
            None => {}
        }
    }

    /// Ends the copied run so far as a segment.
    fn seal(&mut self) {
        if !self.open.is_empty() {
            self.segments.push_back(self.open.split().freeze());
        }
    }

    /// Writes every segment, as few system calls as the stream allows; empties the batch.
    async fn write_to<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> io::Result<()> {
        self.seal();
        self.bytes = 0;
        while !self.segments.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slice, segment) in slices.iter_mut().zip(&self.segments) {
                *slice = IoSlice::new(segment);
                count += 1;
            }
            let n = writer.write_vectored(&slices[..count]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.consume(n);
        }
        writer.flush().await
    }

    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.segments.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.segments.pop_front();
        }
    }
}
