//! Error types of the transport layers above yamux.

use crate::yamux::YamuxError;

/// A mux broker failure; texts match go-plugin's where go-plugin has one.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Nobody dialed the id within 5 s.
    #[error("timeout waiting for accept")]
    AcceptTimeout,
    /// The acceptor answered with another id.
    #[error("bad ack: {got} (expected {expected})")]
    BadAck {
        /// The id in the ack.
        got: u32,
        /// The id we dialed.
        expected: u32,
    },
    /// Opening the stream failed.
    #[error(transparent)]
    Yamux(#[from] YamuxError),
    /// Reading or writing the id/ack failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
