//! How a call fails: a gRPC status code and a message, as an `ERROR` frame carries them and
//! as the connection reports its own failures (time limit, overload, a closed connection).

use std::fmt;

/// A gRPC status code. Any `u32` can arrive in an `ERROR` frame; the named ones are gRPC's.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u32);

impl Code {
    /// Not an error; never the code of a [`Status`].
    pub const OK: Code = Code(0);
    /// The caller cancelled the call.
    pub const CANCELLED: Code = Code(1);
    /// An error with no better code (and what an `ERROR` with code 0 becomes).
    pub const UNKNOWN: Code = Code(2);
    /// The request message or method path is malformed.
    pub const INVALID_ARGUMENT: Code = Code(3);
    /// The caller's time limit passed.
    pub const DEADLINE_EXCEEDED: Code = Code(4);
    /// Not found.
    pub const NOT_FOUND: Code = Code(5);
    /// Already exists.
    pub const ALREADY_EXISTS: Code = Code(6);
    /// Permission denied.
    pub const PERMISSION_DENIED: Code = Code(7);
    /// A size or queue limit: a body over `MAX_BODY`, a write queue over `MAX_QUEUED`.
    pub const RESOURCE_EXHAUSTED: Code = Code(8);
    /// Failed precondition.
    pub const FAILED_PRECONDITION: Code = Code(9);
    /// Aborted.
    pub const ABORTED: Code = Code(10);
    /// Out of range.
    pub const OUT_OF_RANGE: Code = Code(11);
    /// No such method, or nothing served on this connection.
    pub const UNIMPLEMENTED: Code = Code(12);
    /// The handler failed.
    pub const INTERNAL: Code = Code(13);
    /// The connection is gone.
    pub const UNAVAILABLE: Code = Code(14);
    /// Data loss.
    pub const DATA_LOSS: Code = Code(15);
    /// Wrong or missing token.
    pub const UNAUTHENTICATED: Code = Code(16);

    /// gRPC's name for the code, if it has one.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 17] = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        usize::try_from(self.0)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "code {}", self.0),
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} ({})", self.0)
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Status {
    code: Code,
    message: String,
}

impl Status {
    /// A status of `code`; [`Code::OK`] becomes [`Code::UNKNOWN`], since a failed call
    /// cannot have succeeded.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        let code = if code == Code::OK {
            Code::UNKNOWN
        } else {
            code
        };
        Status {
            code,
            message: message.into(),
        }
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// [`Code::INVALID_ARGUMENT`].
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::INVALID_ARGUMENT, message)
    }

    /// [`Code::DEADLINE_EXCEEDED`].
    pub fn deadline_exceeded(message: impl Into<String>) -> Status {
        Status::new(Code::DEADLINE_EXCEEDED, message)
    }

    /// [`Code::RESOURCE_EXHAUSTED`].
    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(Code::RESOURCE_EXHAUSTED, message)
    }

    /// [`Code::UNIMPLEMENTED`].
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::UNIMPLEMENTED, message)
    }

    /// [`Code::INTERNAL`].
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::INTERNAL, message)
    }

    /// [`Code::UNAVAILABLE`].
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(Code::UNAVAILABLE, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_show_by_name_or_number() {
        assert_eq!(Code::RESOURCE_EXHAUSTED.to_string(), "RESOURCE_EXHAUSTED");
        assert_eq!(Code::UNAUTHENTICATED.to_string(), "UNAUTHENTICATED");
        assert_eq!(Code(17).to_string(), "code 17");
        assert_eq!(Code(u32::MAX).name(), None);
        assert_eq!(format!("{:?}", Code(8)), "RESOURCE_EXHAUSTED (8)");
    }

    #[test]
    fn a_status_is_never_ok() {
        let s = Status::new(Code::OK, "odd");
        assert_eq!(s.code(), Code::UNKNOWN);
        assert_eq!(s.to_string(), "UNKNOWN: odd");
    }
}
