//! Error types. Every decode error names the byte offset in the stream where it was detected.

use std::fmt;

/// A malformed or unsupported gob stream.
///
/// `offset` counts bytes from the first byte ever fed to the [`crate::Decoder`], so it stays
/// meaningful across many messages on a long-lived connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Stream offset of the byte (or message) where the problem was detected.
    pub offset: u64,
    /// A sentence describing the problem.
    pub message: String,
}

impl DecodeError {
    pub(crate) fn new(offset: u64, message: impl Into<String>) -> Self {
        DecodeError {
            offset,
            message: message.into(),
        }
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
