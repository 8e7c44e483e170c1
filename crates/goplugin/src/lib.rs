//! The plugin side of hashicorp/go-plugin's net/rpc protocol, as Mattermost speaks it.
//!
//! A host (Mattermost) launches the plugin executable with a magic cookie in the
//! environment, reads one handshake line from its stdout, connects to the unix socket
//! named there, and runs a yamux client over it. The plugin runs the yamux server, serves
//! go-plugin's `Control`/`Dispenser` net/rpc services on the first stream, and hands out
//! further streams through the mux broker, each carrying net/rpc (gob-encoded) calls.
//!
//! # Layout
//! - [`handshake`]: cookie check, version negotiation, the handshake line.
//! - [`yamux`]: our hashicorp-compatible yamux (why not a crate: see its module doc).
//! - [`broker`]: go-plugin's MuxBroker (ids, acks, 5 s windows).
//! - [`netrpc`]: Go's net/rpc over gob, client and concurrent server.
//! - [`control`]: go-plugin's `Control` and `Dispenser` services, the [`Plugin`] trait.
//! - [`serve`]: bind + handshake, then accept + serve; shutdown on Quit or session end.
//! - [`error`]: error types whose texts match go-plugin's.
//! - [`log`]: log lines as the host reads them from stderr (hclog JSON), the transport's own
//!   and the bridge's.
//! - [`quiet`]: a unix socket the event loop watches for input only (no wake-up per message
//!   the peer reads).
//!
//! # Use
//! ```no_run
//! # async fn run(types: std::sync::Arc<goplugin::netrpc::RpcTypes>, plugins: goplugin::PluginSet) {
//! let bound = match goplugin::serve::bind(goplugin::ServeConfig::mattermost(types, plugins)) {
//!     Ok(b) => b,
//!     Err(goplugin::ServeError::Cookie(e)) => {
//!         eprint!("{e}");
//!         std::process::exit(e.exit_code());
//!     }
//!     Err(e) => panic!("{e}"),
//! };
//! bound.write_handshake(std::io::stdout()).unwrap(); // within the host's 3 s
//! // ... slow startup may happen here ...
//! let conn = bound.accept().await.unwrap();
//! conn.done().await; // Control.Quit or the session ended
//! # }
//! ```

#![deny(missing_docs)]

pub mod broker;
pub mod control;
pub mod error;
pub mod handshake;
pub mod log;
pub mod netrpc;
pub mod quiet;
pub mod serve;
pub mod yamux;

pub use broker::Broker;
pub use control::{Plugin, PluginSet, ShutdownReason};
pub use error::BrokerError;
pub use handshake::{CookieError, HandshakeConfig};
pub use serve::{Bound, Connection, ServeConfig, ServeError};
