//! A small yamux implementation that behaves like hashicorp/yamux v0.1.2, the peer that
//! go-plugin (and so Mattermost) runs.
//!
//! Why our own and not `tokio-yamux`: tokio-yamux hands frames to each stream through a
//! channel of 8 frames that is drained only while the application reads that stream, and
//! stops reading the socket for *every* stream while one such channel is full. hashicorp
//! yamux buffers up to the stream's receive window per stream, so one stream the
//! application is not reading right now never stalls the others. go-plugin depends on that:
//! a broker stream parked for `Accept`, or a hook whose handler is busy, must not block the
//! API stream it is waiting on. The interop case `unread-stream-no-stall` in
//! `conformance/goplugin-host` checks exactly this.
//!
//! Behaviour matched to Go (facts from hashicorp/yamux `spec.md`, `session.go`, `stream.go`):
//! - Opening a stream sends WindowUpdate+SYN at once (delta 0 with default windows).
//! - An inbound SYN is ACKed at once (Go ACKs on `Accept`; doing it on arrival keeps the
//!   peer's 75 s open timeout and its 256 un-ACKed SYN limit out of play for the stdout
//!   and stderr streams nobody reads).
//! - 256 KiB receive window per stream, WindowUpdate once the consumed delta reaches half.
//! - A backlog of 256 un-accepted inbound streams. Go answers the 257th with RST at once; we
//!   hold the reader up to 1 s for room first, because a burst of SYNs read from one buffer
//!   can outrun an acceptor that is merely behind (seen with 300 concurrent broker dials).
//! - Pings are echoed with ACK; frames for unknown streams are dropped (data drained).
//! - GoAway normal refuses only new streams; any other code ends the session.
//! - A receive-window overrun or a duplicate SYN ends the session with GoAway(protocol error).
//!
//! We do not send keepalive pings: the host does, and a dead host closes the socket.

mod frame;
mod session;
mod stream;

pub use frame::{
    FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN, FrameType, GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR,
    HEADER_LEN, Header,
};
pub use session::{Config, Session};
pub use stream::Stream;

/// Errors of the yamux layer.
#[derive(Debug, thiserror::Error)]
pub enum YamuxError {
    /// The session has ended (socket closed, GoAway, or `close()`).
    #[error("yamux: session shutdown")]
    SessionShutdown,
    /// The peer sent GoAway: no new streams may be opened.
    #[error("yamux: remote end is not accepting connections")]
    RemoteGoAway,
    /// All stream ids of our parity are used.
    #[error("yamux: streams exhausted")]
    StreamsExhausted,
    /// The peer broke the protocol.
    #[error("yamux: protocol error: {0}")]
    Protocol(String),
    /// The peer sent GoAway with a non-normal code.
    #[error("yamux: remote sent go away with code {0}")]
    RemoteError(u32),
    /// The socket failed.
    #[error("yamux: i/o: {0}")]
    Io(#[from] std::io::Error),
}
