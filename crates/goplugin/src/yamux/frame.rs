//! The 12-byte yamux frame header (hashicorp/yamux `spec.md`), encode and decode only.
//!
//! ```text
//! | version u8 = 0 | type u8 | flags u16 BE | stream id u32 BE | length u32 BE |
//! ```
//! `length` is the payload size for Data, the window delta for WindowUpdate, the opaque
//! value for Ping and the error code for GoAway.

use super::YamuxError;

/// Size of every frame header.
pub const HEADER_LEN: usize = 12;

/// The only protocol version yamux defines.
const VERSION: u8 = 0;

/// Flag: opens a stream (or starts a ping).
pub const FLAG_SYN: u16 = 1;
/// Flag: acknowledges a stream open (or answers a ping).
pub const FLAG_ACK: u16 = 2;
/// Flag: half-closes the sender's direction of a stream.
pub const FLAG_FIN: u16 = 4;
/// Flag: resets a stream at once.
pub const FLAG_RST: u16 = 8;

/// GoAway code: normal termination, only new streams are refused.
pub const GO_AWAY_NORMAL: u32 = 0;
/// GoAway code: the peer violated the protocol.
pub const GO_AWAY_PROTOCOL_ERROR: u32 = 1;

/// The four frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// Stream payload; `length` bytes follow the header.
    Data = 0,
    /// Adds `length` to the peer's send window; also carries SYN/ACK/FIN/RST.
    WindowUpdate = 1,
    /// Liveness check on stream 0; `length` is an opaque value echoed back.
    Ping = 2,
    /// Session termination on stream 0; `length` is the code.
    GoAway = 3,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the frame is.
    pub ty: FrameType,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// 0 for session frames.
    pub stream_id: u32,
    /// Meaning depends on `ty` (see the module doc).
    pub length: u32,
}

impl Header {
    /// Builds a header.
    pub fn new(ty: FrameType, flags: u16, stream_id: u32, length: u32) -> Header {
        Header {
            ty,
            flags,
            stream_id,
            length,
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = VERSION;
        out[1] = self.ty as u8;
        out[2..4].copy_from_slice(&self.flags.to_be_bytes());
        out[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        out[8..12].copy_from_slice(&self.length.to_be_bytes());
        out
    }

    /// Parses wire bytes; an unknown version or type is a protocol error (Go ends the
    /// session on both, so do we).
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, YamuxError> {
        if bytes[0] != VERSION {
            return Err(YamuxError::Protocol(format!(
                "invalid protocol version {}",
                bytes[0]
            )));
        }
        let ty = match bytes[1] {
            0 => FrameType::Data,
            1 => FrameType::WindowUpdate,
            2 => FrameType::Ping,
            3 => FrameType::GoAway,
            other => {
                return Err(YamuxError::Protocol(format!(
                    "invalid message type {other}"
                )));
            }
        };
        Ok(Header {
            ty,
            flags: u16::from_be_bytes([bytes[2], bytes[3]]),
            stream_id: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            length: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_big_endian_fields_in_spec_order() {
        let h = Header::new(
            FrameType::WindowUpdate,
            FLAG_SYN | FLAG_ACK,
            0x0102_0304,
            0x0004_0000,
        );
        assert_eq!(
            h.encode(),
            [0, 1, 0, 3, 1, 2, 3, 4, 0, 4, 0, 0],
            "version, type, flags, id, length"
        );
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn rejects_bad_version_and_type() {
        let mut b = Header::new(FrameType::Ping, FLAG_SYN, 0, 7).encode();
        b[0] = 1;
        assert!(
            matches!(Header::decode(&b), Err(YamuxError::Protocol(m)) if m.contains("version"))
        );
        let mut b = Header::new(FrameType::Ping, FLAG_SYN, 0, 7).encode();
        b[1] = 4;
        assert!(matches!(Header::decode(&b), Err(YamuxError::Protocol(m)) if m.contains("type 4")));
    }
}
