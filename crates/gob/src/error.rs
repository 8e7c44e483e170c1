//! Error types. Every decode error names the byte offset in the stream where it was detected.

use std::fmt;

/// A malformed or unsupported gob stream, or a value message too large to decode.
///
/// `offset` counts bytes from the first byte ever fed to the [`crate::Decoder`], so it stays
/// meaningful across many messages on a long-lived connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Stream offset of the byte (or message) where the problem was detected.
    pub offset: u64,
    /// A sentence describing the problem.
    pub message: String,
    /// Whether the stream can go on after this error.
    pub kind: DecodeErrorKind,
}

/// What a [`DecodeError`] means for the rest of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The stream is out of sync (malformed, or a limit breach the decoder cannot read past):
    /// the decoder is failed and every later call returns this error.
    Fatal,
    /// A value message over [`crate::Limits::max_message_size`] was read past without
    /// being kept; only that value is lost and the next call decodes the message after it.
    ValueSkipped {
        /// The message's length (its body, without the length prefix).
        len: u64,
        /// The value's wire type id.
        type_id: i64,
        /// The limit it exceeded.
        limit: u64,
    },
}

impl DecodeError {
    pub(crate) fn new(offset: u64, message: impl Into<String>) -> Self {
        DecodeError {
            offset,
            message: message.into(),
            kind: DecodeErrorKind::Fatal,
        }
    }

    /// Whether the decoder is failed for good (see [`DecodeErrorKind::Fatal`]).
    pub fn is_fatal(&self) -> bool {
        self.kind == DecodeErrorKind::Fatal
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gob decode error at byte {}: {}",
            self.offset, self.message
        )
    }
}

impl std::error::Error for DecodeError {}

/// A value that cannot be encoded as the requested Go type.
///
/// `path` locates the offending part of the value, e.g. `Post.Props["k"].[2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// Where in the value the problem is (empty for the top level).
    pub path: String,
    /// A sentence describing the problem.
    pub message: String,
}

impl EncodeError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> Self {
        EncodeError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "gob encode error: {}", self.message)
        } else {
            write!(f, "gob encode error at {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for EncodeError {}

/// A misuse of the [`crate::Types`] builder (e.g. defining a struct twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gob schema error: {}", self.0)
    }
}

impl std::error::Error for SchemaError {}
