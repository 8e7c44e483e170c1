//! The `HELLO` exchange that opens a connection: [`accept`] is the bridge's side (checks the
//! token), [`connect`] the Python side's (and a Rust test peer's).
//!
//! Neither side reads a byte past the `HELLO` it expects, so a peer may send its first
//! requests right behind its `HELLO`. Neither has a time limit of its own: a caller that
//! must not wait forever for a silent peer wraps the call in `tokio::time::timeout`.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::conn::{Connection, Options};
use crate::frame::{Frame, HEADER_LEN, Header, HeaderError, Hello, Kind, Roles, VERSION};

/// Longest `HELLO` body read (version, roles and a token of up to 4094 bytes); a longer one is
/// refused before its body is read. The bridge's token is 64 bytes.
pub const MAX_HELLO: u32 = 4096;

/// Why a handshake failed. The stream is dropped (closed) with it.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Reading or writing failed.
    #[error("the lane handshake failed to read or write: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before its `HELLO` was whole.
    #[error("the peer closed the connection before its HELLO was whole")]
    Closed,
    /// The connecting side's `HELLO` got no answer: the other side closed the connection,
    /// which is how it refuses (a wrong token, most likely).
    #[error("the peer closed the connection without answering our HELLO (a wrong token?)")]
    Refused,
    /// The first frame's header broke a rule.
    #[error("the first frame breaks the framing rules: {0}")]
    Header(#[from] HeaderError),
    /// The first frame is not a `HELLO`.
    #[error("the first frame is a {kind} (call id {call_id}), not a HELLO")]
    NotHello {
        /// What it is.
        kind: Kind,
        /// Its call id.
        call_id: u64,
    },
    /// The `HELLO` is longer than [`MAX_HELLO`] (refused unread) or, answering ours, longer
    /// than version and roles.
    #[error("the HELLO's body is {length} bytes; at most {max} are expected")]
    HelloTooLong {
        /// Its body's length.
        length: u32,
        /// What was allowed.
        max: u32,
    },
    /// The `HELLO` speaks another protocol version.
    #[error("the HELLO says version {version}; this end speaks version {VERSION}")]
    Version {
        /// The version it says.
        version: u8,
    },
    /// The `HELLO` declares roles this end does not know, or that name hooks without
    /// serving them.
    #[error(
        "the HELLO declares roles {roles:#04x}, with bits this end does not know or that do not go together"
    )]
    UnknownRoles {
        /// The roles byte.
        roles: u8,
    },
    /// The token is not this launch's. The token itself is never shown.
    #[error("the HELLO's token ({length} bytes) does not match this launch's")]
    WrongToken {
        /// The length of the token presented.
        length: usize,
    },
}

/// A connection whose handshake succeeded, and what the peer declared.
#[derive(Debug)]
pub struct Established {
    /// The running connection.
    pub connection: Connection,
    /// The roles of the peer's `HELLO`.
    pub peer_roles: Roles,
}

/// The bridge's side: reads the first frame, which must be a `HELLO` with this launch's
/// `token` (compared in constant time), answers `HELLO` with `options`' roles, and runs the
/// connection. Any other first frame, or a wrong token, fails with the reason and closes the
/// stream (the caller logs it). An empty `token` matches nothing.
pub async fn accept<S>(
    mut stream: S,
    token: &[u8],
    options: Options,
) -> Result<Established, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let hello = read_hello(&mut stream, MAX_HELLO, HandshakeError::Closed).await?;
    check_hello(&hello)?;
    if !tokens_match(&hello.token, token) {
        return Err(HandshakeError::WrongToken {
            length: hello.token.len(),
        });
    }
    write_hello(&mut stream, options.roles, Bytes::new()).await?;
    let peer_roles = hello.roles;
    Ok(Established {
        connection: Connection::start(stream, options, peer_roles),
        peer_roles,
    })
}

/// The connecting side: sends `HELLO` with `token` and `options`' roles, waits for the
/// answering `HELLO`, and runs the connection.
pub async fn connect<S>(
    mut stream: S,
    token: &[u8],
    options: Options,
) -> Result<Established, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    write_hello(&mut stream, options.roles, Bytes::copy_from_slice(token)).await?;
    // The answer is version and roles, nothing more.
    let hello = read_hello(&mut stream, 2, HandshakeError::Refused).await?;
    check_hello(&hello)?;
    let peer_roles = hello.roles;
    Ok(Established {
        connection: Connection::start(stream, options, peer_roles),
        peer_roles,
    })
}

async fn write_hello<S: AsyncWrite + Unpin>(
    stream: &mut S,
    roles: Roles,
    token: Bytes,
) -> Result<(), HandshakeError> {
    let hello = Frame::Hello(Hello {
        version: VERSION,
        roles,
        token,
    });
    let mut out = BytesMut::new();
    hello.encode(&mut out).map_err(|e| {
        HandshakeError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads exactly one frame, which must be a `HELLO` of at most `max` body bytes; an end of
/// stream before it is whole is `eof`.
async fn read_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: u32,
    eof: HandshakeError,
) -> Result<Hello, HandshakeError> {
    let mut header = [0u8; HEADER_LEN];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(eof),
        Err(e) => return Err(e.into()),
    }
    let header = Header::decode(&header)?;
    if header.kind != Kind::Hello {
        return Err(HandshakeError::NotHello {
            kind: header.kind,
            call_id: header.call_id,
        });
    }
    if header.length > max {
        return Err(HandshakeError::HelloTooLong {
            length: header.length,
            max,
        });
    }
    // At most MAX_HELLO bytes, checked above.
    let mut body = vec![0u8; header.length as usize];
    match stream.read_exact(&mut body).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(eof),
        Err(e) => return Err(e.into()),
    }
    // Header::decode guarantees the two bytes of version and roles.
    let (version_roles, token) = body.split_at(2.min(body.len()));
    Ok(Hello {
        version: version_roles.first().copied().unwrap_or(0),
        roles: Roles::from_bits(version_roles.get(1).copied().unwrap_or(0)),
        token: Bytes::copy_from_slice(token),
    })
}

fn check_hello(hello: &Hello) -> Result<(), HandshakeError> {
    if hello.version != VERSION {
        return Err(HandshakeError::Version {
            version: hello.version,
        });
    }
    if hello.roles.unknown_bits() != 0 || (hello.roles.names_hooks() && !hello.roles.serves_hooks())
    {
        return Err(HandshakeError::UnknownRoles {
            roles: hello.roles.bits(),
        });
    }
    Ok(())
}

/// Compares tokens in time that depends on their lengths only, never on where they differ.
/// The length is no secret (the bridge's tokens are all 64 bytes). An empty `expected`
/// matches nothing: a bridge that lost its token refuses everyone rather than admit anyone.
fn tokens_match(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() || given.len() != expected.len() {
        return false;
    }
    // black_box keeps the optimizer from turning the fold into an early-exit comparison.
    let difference = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| std::hint::black_box(acc | (a ^ b)));
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match(b"abc", b"abc"));
        assert!(!tokens_match(b"abd", b"abc"));
        assert!(!tokens_match(b"xbc", b"abc"));
        assert!(!tokens_match(b"ab", b"abc"));
        assert!(!tokens_match(b"abcd", b"abc"));
        assert!(
            !tokens_match(b"", b""),
            "an empty expected token matches nothing"
        );
    }
}
