//! The lane: gRPC's unary calls as length-prefixed frames over a unix socket, between the
//! bridge and the Python process, without HTTP/2. The protocol (frame layout, header rules,
//! limits, cancellation) is specified once, in docs/internals.md §8, "The lane"; this crate is
//! its Rust end, a layer below the bridge: it knows frames and calls, not methods or protobuf.
//!
//! - [`frame`]: the header, the frame kinds, encoding, the incremental [`Decoder`].
//! - [`accept`] (the bridge's side: checks the token) and [`connect`] (the Python side's):
//!   the `HELLO` exchange, then a running [`Connection`].
//! - [`Connection`]: [`Connection::call`] for this end's calls; a [`Handler`] serves the
//!   peer's; problems that fail or drop a single call reach an [`Observer`], and why the
//!   connection closed is [`Connection::closed`]'s answer.
//! - [`Status`]: how a call fails (a gRPC code and a message).
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use mmplug_lane::{Options, Roles, Status, accept, connect};
//!
//! let (bridge_end, python_end) = tokio::io::duplex(64 << 10);
//! let hooks = |method: &str, message: Bytes| {
//!     let known = method == "/mattermost.plugin.v1.PluginHooks/OnActivate";
//!     async move {
//!         if known { Ok(message) } else { Err(Status::unimplemented("no such hook")) }
//!     }
//! };
//! let python = tokio::spawn(connect(
//!     python_end,
//!     b"token",
//!     Options::new().roles(Roles::SERVES_HOOKS).handler(hooks),
//! ));
//! let bridge = accept(bridge_end, b"token", Options::new()).await?;
//! assert!(bridge.peer_roles.serves_hooks());
//! let answer = bridge
//!     .connection
//!     .call("/mattermost.plugin.v1.PluginHooks/OnActivate", Bytes::from_static(b"\x08\x01"), None)
//!     .await?;
//! assert_eq!(&answer[..], b"\x08\x01");
//! # drop(python);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

#![deny(missing_docs)]

pub mod conn;
pub mod frame;
pub mod handshake;
pub mod status;

pub use conn::{
    CloseReason, Connection, Event, Handler, HandlerFuture, Limits, MAX_QUEUED, Observer, Options,
    ProtocolError, Stats,
};
pub use frame::{Decoded, Decoder, Frame, Header, HeaderError, Kind, MAX_BODY, Roles};
pub use handshake::{Established, HandshakeError, MAX_HELLO, accept, connect};
pub use status::{Code, Status};
