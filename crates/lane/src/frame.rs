//! Frames: the 16-byte header, the five kinds of body, encoding, and an incremental decoder.
//!
//! The layout and the header rules are docs/internals.md §8, "The lane". [`Header::decode`]
//! checks every rule a header alone can break; [`Decoder`] adds the body limit, reading past
//! an over-limit body without keeping it. Nothing here panics on any input.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Size of every frame header.
pub const HEADER_LEN: usize = 16;

/// Largest body a frame may carry (256 MiB, as the gRPC carrier's `grpc::MAX_MESSAGE`); a
/// longer one is read past without being kept.
pub const MAX_BODY: u32 = 256 << 20;

/// The protocol version a `HELLO` carries.
pub const VERSION: u8 = 1;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Opens a connection (call id 0): version, roles and, from the connecting side, the token.
    Hello = 1,
    /// A call: the method path, then the request message.
    Request = 2,
    /// The answer to one of the receiver's requests: the response message.
    Response = 3,
    /// A failed call of the receiver's: a gRPC status code and a message.
    Error = 4,
    /// Withdraws one of the sender's requests; no body.
    Cancel = 5,
}

impl Kind {
    /// The kind a header byte names, if any.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Request,
            3 => Kind::Response,
            4 => Kind::Error,
            5 => Kind::Cancel,
            _ => return None,
        })
    }

    /// The name the spec gives it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hello => "HELLO",
            Kind::Request => "REQUEST",
            Kind::Response => "RESPONSE",
            Kind::Error => "ERROR",
            Kind::Cancel => "CANCEL",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule a frame header broke. Fatal for the connection: the bytes after it cannot be
/// trusted to be frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The kind byte names no kind.
    #[error("unknown frame kind {kind} (kinds are 1 to 5)")]
    UnknownKind {
        /// The byte.
        kind: u8,
    },
    /// A flag bit is set; none is defined, so every one is refused.
    #[error("{kind} frame {call_id} has flags {flags:#04x} (no flag is defined)")]
    UnknownFlags {
        /// The frame's kind.
        kind: Kind,
        /// Its call id.
        call_id: u64,
        /// The flags byte.
        flags: u8,
    },
    /// A `REQUEST`'s method path would run past its body.
    #[error("REQUEST {call_id}: method_length {method_length} is past its body of {length} bytes")]
    MethodPastBody {
        /// The request's call id.
        call_id: u64,
        /// The header's `method_length`.
        method_length: u16,
        /// The header's body length.
        length: u32,
    },
    /// A kind other than `REQUEST` has a `method_length`.
    #[error(
        "{kind} frame {call_id} has method_length {method_length} (only a REQUEST names a method)"
    )]
    MethodOnOtherKind {
        /// The frame's kind.
        kind: Kind,
        /// Its call id.
        call_id: u64,
        /// The header's `method_length`.
        method_length: u16,
    },
    /// A `CANCEL` has a body.
    #[error("CANCEL {call_id} has a body of {length} bytes (a CANCEL has none)")]
    CancelWithBody {
        /// The call it withdraws.
        call_id: u64,
        /// The header's body length.
        length: u32,
    },
    /// An `ERROR`'s body has no room for its status code.
    #[error("ERROR {call_id} has a body of {length} bytes, too short for its 4-byte code")]
    ErrorWithoutCode {
        /// The call it answers.
        call_id: u64,
        /// The header's body length.
        length: u32,
    },
    /// A `HELLO`'s body has no room for its version and roles.
    #[error("HELLO has a body of {length} bytes, too short for its version and roles")]
    HelloWithoutRoles {
        /// The header's body length.
        length: u32,
    },
    /// A `HELLO` with a call id other than 0.
    #[error("HELLO has call id {call_id} (a HELLO's is 0)")]
    HelloCallId {
        /// The call id.
        call_id: u64,
    },
}

/// A decoded frame header. [`Header::decode`] only returns headers that keep the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Length of the body that follows the header.
    pub length: u32,
    /// What the frame is.
    pub kind: Kind,
    /// Length of the method path at the start of a `REQUEST`'s body; 0 for other kinds.
    pub method_length: u16,
    /// The call the frame concerns; 0 for `HELLO`.
    pub call_id: u64,
}

impl Header {
    /// The wire bytes (flags are always 0).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.length.to_le_bytes());
        out[4] = self.kind as u8;
        out[5] = 0;
        out[6..8].copy_from_slice(&self.method_length.to_le_bytes());
        out[8..16].copy_from_slice(&self.call_id.to_le_bytes());
        out
    }

    /// Parses wire bytes and checks every rule a header alone can break.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, HeaderError> {
        let [
            l0,
            l1,
            l2,
            l3,
            kind,
            flags,
            m0,
            m1,
            i0,
            i1,
            i2,
            i3,
            i4,
            i5,
            i6,
            i7,
        ] = *bytes;
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        let method_length = u16::from_le_bytes([m0, m1]);
        let call_id = u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]);
        let kind = Kind::from_byte(kind).ok_or(HeaderError::UnknownKind { kind })?;
        if flags != 0 {
            return Err(HeaderError::UnknownFlags {
                kind,
                call_id,
                flags,
            });
        }
        if kind == Kind::Request {
            if u32::from(method_length) > length {
                return Err(HeaderError::MethodPastBody {
                    call_id,
                    method_length,
                    length,
                });
            }
        } else if method_length != 0 {
            return Err(HeaderError::MethodOnOtherKind {
                kind,
                call_id,
                method_length,
            });
        }
        match kind {
            Kind::Cancel if length != 0 => Err(HeaderError::CancelWithBody { call_id, length }),
            Kind::Error if length < 4 => Err(HeaderError::ErrorWithoutCode { call_id, length }),
            Kind::Hello if length < 2 => Err(HeaderError::HelloWithoutRoles { length }),
            Kind::Hello if call_id != 0 => Err(HeaderError::HelloCallId { call_id }),
            _ => Ok(Header {
                length,
                kind,
                method_length,
                call_id,
            }),
        }
    }
}

/// The roles a `HELLO` declares, as its byte (bits this end does not know are kept, so the
/// handshake can refuse them by value).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Roles(u8);

impl Roles {
    /// Serves nothing but what every connection serves (the bridge: the API).
    pub const NONE: Roles = Roles(0);
    /// Serves hooks: the bridge may send it `REQUEST`s for `PluginHooks` methods.
    pub const SERVES_HOOKS: Roles = Roles(1);
    /// With [`Roles::SERVES_HOOKS`]: serves only the hooks it names (in a `ServeHooks`
    /// call after its `HELLO`), for which the bridge prefers it to the connection that
    /// serves all hooks.
    pub const NAMES_HOOKS: Roles = Roles(2);
    /// Every bit this end knows.
    pub const KNOWN: Roles = Roles(3);

    /// The roles of a `HELLO`'s byte.
    pub fn from_bits(bits: u8) -> Roles {
        Roles(bits)
    }

    /// The byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether the peer serves hooks.
    pub fn serves_hooks(self) -> bool {
        self.0 & Roles::SERVES_HOOKS.0 != 0
    }

    /// Whether the peer serves only the hooks it names.
    pub fn names_hooks(self) -> bool {
        self.0 & Roles::NAMES_HOOKS.0 != 0
    }

    /// The bits this end does not know, if any.
    pub fn unknown_bits(self) -> u8 {
        self.0 & !Roles::KNOWN.0
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roles({:#04x}", self.0)?;
        if self.serves_hooks() {
            f.write_str(": serves hooks")?;
        }
        if self.names_hooks() {
            f.write_str(", names them")?;
        }
        f.write_str(")")
    }
}

/// The body of a `HELLO`.
#[derive(Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version ([`VERSION`]).
    pub version: u8,
    /// What the sender serves.
    pub roles: Roles,
    /// The per-launch token (connecting side) or nothing (answering side).
    pub token: Bytes,
}

/// Shows the token's length, never its bytes: a frame may end up in a log line.
impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("roles", &self.roles)
            .field("token", &format_args!("<{} bytes>", self.token.len()))
            .finish()
    }
}

/// A whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens a connection.
    Hello(Hello),
    /// A call.
    Request {
        /// The sender's number for the call.
        call_id: u64,
        /// The gRPC method path, as sent (the receiver checks it is UTF-8).
        method: Bytes,
        /// The request message.
        message: Bytes,
    },
    /// Answers one of the receiver's requests.
    Response {
        /// The request's call id.
        call_id: u64,
        /// The response message.
        message: Bytes,
    },
    /// Fails one of the receiver's requests.
    Error {
        /// The request's call id.
        call_id: u64,
        /// A gRPC status code.
        code: u32,
        /// The message, as sent (UTF-8 by the spec; the receiver decides what to do if not).
        message: Bytes,
    },
    /// Withdraws one of the sender's requests.
    Cancel {
        /// The request's call id.
        call_id: u64,
    },
}

/// A frame this end was asked to send does not fit the header's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A method path longer than `method_length` can say.
    #[error("a method path of {length} bytes is longer than the {max} bytes a frame can name")]
    MethodTooLong {
        /// The path's length.
        length: usize,
        /// `u16::MAX`.
        max: usize,
    },
    /// A body longer than `length` can say.
    #[error("a frame body of {length} bytes is longer than the {max} bytes a header can say")]
    BodyTooLong {
        /// The body's length.
        length: usize,
        /// `u32::MAX`.
        max: usize,
    },
}

impl Frame {
    /// What the frame is.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Hello(_) => Kind::Hello,
            Frame::Request { .. } => Kind::Request,
            Frame::Response { .. } => Kind::Response,
            Frame::Error { .. } => Kind::Error,
            Frame::Cancel { .. } => Kind::Cancel,
        }
    }

    /// The call the frame concerns; 0 for `HELLO`.
    pub fn call_id(&self) -> u64 {
        match self {
            Frame::Hello(_) => 0,
            Frame::Request { call_id, .. }
            | Frame::Response { call_id, .. }
            | Frame::Error { call_id, .. }
            | Frame::Cancel { call_id } => *call_id,
        }
    }

    /// The body's length, as a `usize` (it may not fit a header; [`Frame::header`] says).
    pub fn body_len(&self) -> usize {
        match self {
            Frame::Hello(h) => 2 + h.token.len(),
            Frame::Request {
                method, message, ..
            } => method.len().saturating_add(message.len()),
            Frame::Response { message, .. } => message.len(),
            Frame::Error { message, .. } => 4usize.saturating_add(message.len()),
            Frame::Cancel { .. } => 0,
        }
    }

    /// The header this frame is sent with.
    pub fn header(&self) -> Result<Header, EncodeError> {
        let body_len = self.body_len();
        let length = u32::try_from(body_len).map_err(|_| EncodeError::BodyTooLong {
            length: body_len,
            max: u32::MAX as usize,
        })?;
        let method_length = match self {
            Frame::Request { method, .. } => {
                u16::try_from(method.len()).map_err(|_| EncodeError::MethodTooLong {
                    length: method.len(),
                    max: u16::MAX.into(),
                })?
            }
            _ => 0,
        };
        Ok(Header {
            length,
            kind: self.kind(),
            method_length,
            call_id: self.call_id(),
        })
    }

    /// Appends the header and the part of the body before the message (a `HELLO`'s whole
    /// body, a `REQUEST`'s method path, an `ERROR`'s code); [`Frame::message`] follows it.
    /// Split so a writer can send a large message from where it lies instead of copying it.
    pub fn encode_head(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let header = self.header()?;
        out.put_slice(&header.encode());
        match self {
            Frame::Hello(h) => {
                out.put_u8(h.version);
                out.put_u8(h.roles.bits());
                out.put_slice(&h.token);
            }
            Frame::Request { method, .. } => out.put_slice(method),
            Frame::Error { code, .. } => out.put_u32_le(*code),
            Frame::Response { .. } | Frame::Cancel { .. } => {}
        }
        Ok(())
    }

    /// The message that ends the body, if the kind has one.
    pub fn message(&self) -> Option<&Bytes> {
        match self {
            Frame::Request { message, .. }
            | Frame::Response { message, .. }
            | Frame::Error { message, .. } => Some(message),
            Frame::Hello(_) | Frame::Cancel { .. } => None,
        }
    }

    /// Appends the whole frame.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_head(out)?;
        if let Some(message) = self.message() {
            out.put_slice(message);
        }
        Ok(())
    }

    /// The frame a header and its whole body make. The header must come from
    /// [`Header::decode`], whose rules guarantee the body holds what the kind needs.
    fn from_parts(header: Header, mut body: Bytes) -> Frame {
        let call_id = header.call_id;
        // `min` keeps these splits in range whatever the header says; decode's rules make
        // them exact.
        let split = |body: &mut Bytes, at: usize| body.split_to(at.min(body.len()));
        match header.kind {
            Kind::Hello => {
                let version_roles = split(&mut body, 2);
                Frame::Hello(Hello {
                    version: version_roles.first().copied().unwrap_or(0),
                    roles: Roles::from_bits(version_roles.get(1).copied().unwrap_or(0)),
                    token: body,
                })
            }
            Kind::Request => Frame::Request {
                call_id,
                method: split(&mut body, header.method_length.into()),
                message: body,
            },
            Kind::Response => Frame::Response {
                call_id,
                message: body,
            },
            Kind::Error => {
                let code = split(&mut body, 4);
                Frame::Error {
                    call_id,
                    code: code.as_ref().try_into().map_or(0, u32::from_le_bytes),
                    message: body,
                }
            }
            Kind::Cancel => Frame::Cancel { call_id },
        }
    }
}

/// What the decoder found next in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame within the body limit.
    Frame(Frame),
    /// A frame whose body is over the limit: reported as soon as its header arrives; the
    /// decoder then reads past the body without keeping it. Only its own call fails.
    OverLimit {
        /// The frame's kind.
        kind: Kind,
        /// Its call id.
        call_id: u64,
        /// The body length its header says.
        length: u32,
    },
}

/// Splits a byte stream into frames, as the bytes arrive.
///
/// Feed it the stream's bytes in a [`BytesMut`] and call [`Decoder::decode`] until it
/// returns `Ok(None)` (more bytes needed). It consumes what it decodes or skips. After an
/// error the stream cannot be resynced: stop reading it.
#[derive(Debug)]
pub struct Decoder {
    max_body: u32,
    /// A header whose body has not all arrived.
    header: Option<Header>,
    /// Bytes of an over-limit body still to read past.
    skip: u32,
}

impl Decoder {
    /// A decoder that reads past bodies over `max_body` ([`MAX_BODY`] in production).
    pub fn new(max_body: u32) -> Decoder {
        Decoder {
            max_body,
            header: None,
            skip: 0,
        }
    }

    /// The next frame in `buf`, if it has all arrived; consumes its bytes. Bytes of an
    /// over-limit body are consumed and dropped as they arrive, so `buf` never holds more
    /// than one chunk of them.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, HeaderError> {
        if self.skip > 0 {
            let n = buf.len().min(self.skip as usize);
            buf.advance(n);
            // n <= skip, so this cannot wrap.
            self.skip -= n as u32;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let header = match self.header.take() {
            Some(header) => header,
            None => {
                let Some(bytes) = buf.first_chunk::<HEADER_LEN>() else {
                    return Ok(None);
                };
                let header = Header::decode(bytes)?;
                buf.advance(HEADER_LEN);
                if header.length > self.max_body {
                    self.skip = header.length;
                    let over = Decoded::OverLimit {
                        kind: header.kind,
                        call_id: header.call_id,
                        length: header.length,
                    };
                    // Drop what has already arrived of the body now, so a caller that
                    // stops after this frame is not left holding it.
                    let n = buf.len().min(self.skip as usize);
                    buf.advance(n);
                    self.skip -= n as u32;
                    return Ok(Some(over));
                }
                header
            }
        };
        let length = header.length as usize;
        if buf.len() < length {
            self.header = Some(header);
            return Ok(None);
        }
        let body = buf.split_to(length).freeze();
        Ok(Some(Decoded::Frame(Frame::from_parts(header, body))))
    }

    /// Whether the decoder is inside a frame (its header read, its body not all arrived or
    /// read past). With `buf` empty and this false, the stream ended between frames.
    pub fn is_mid_frame(&self) -> bool {
        self.header.is_some() || self.skip > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame) -> BytesMut {
        let mut out = BytesMut::new();
        frame.encode(&mut out).expect("encodable");
        out
    }

    fn header_bytes(length: u32, kind: u8, flags: u8, method_length: u16, id: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&length.to_le_bytes());
        b[4] = kind;
        b[5] = flags;
        b[6..8].copy_from_slice(&method_length.to_le_bytes());
        b[8..16].copy_from_slice(&id.to_le_bytes());
        b
    }

    fn one_of_each() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello {
                version: VERSION,
                roles: Roles::SERVES_HOOKS,
                token: Bytes::from_static(b"0123456789abcdef"),
            }),
            Frame::Hello(Hello {
                version: VERSION,
                roles: Roles::NONE,
                token: Bytes::new(),
            }),
            Frame::Request {
                call_id: 1,
                method: Bytes::from_static(b"/mattermost.plugin.v1.PluginHooks/OnActivate"),
                message: Bytes::from_static(b"\x0a\x03abc"),
            },
            Frame::Request {
                call_id: u64::MAX,
                method: Bytes::new(),
                message: Bytes::new(),
            },
            Frame::Response {
                call_id: 7,
                message: Bytes::from(vec![0xffu8; 300]),
            },
            Frame::Response {
                call_id: 8,
                message: Bytes::new(),
            },
            Frame::Error {
                call_id: 9,
                code: 12,
                message: Bytes::from_static("no such method: /x/Y — é".as_bytes()),
            },
            Frame::Error {
                call_id: 10,
                code: u32::MAX,
                message: Bytes::new(),
            },
            Frame::Cancel { call_id: 11 },
        ]
    }

    fn decode_all(decoder: &mut Decoder, buf: &mut BytesMut) -> Vec<Decoded> {
        let mut out = Vec::new();
        while let Some(d) = decoder.decode(buf).expect("valid stream") {
            out.push(d);
        }
        out
    }

    #[test]
    fn header_layout_is_little_endian_as_specified() {
        let h = Header {
            length: 0x0403_0201,
            kind: Kind::Request,
            method_length: 0x0201,
            call_id: 0x0807_0605_0403_0201,
        };
        assert_eq!(
            h.encode(),
            [1, 2, 3, 4, 2, 0, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8],
            "length, kind, flags, method_length, call id"
        );
        assert_eq!(Header::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn every_kind_round_trips() {
        for frame in one_of_each() {
            let mut buf = encoded(&frame);
            assert_eq!(buf.len(), HEADER_LEN + frame.body_len());
            let got = Decoder::new(MAX_BODY).decode(&mut buf).expect("valid");
            assert_eq!(got, Some(Decoded::Frame(frame)));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_stream_of_frames_decodes_in_order_whole_or_byte_by_byte() {
        let frames = one_of_each();
        let mut stream = BytesMut::new();
        for f in &frames {
            f.encode(&mut stream).expect("encodable");
        }
        let want: Vec<Decoded> = frames.into_iter().map(Decoded::Frame).collect();

        let mut whole = stream.clone();
        assert_eq!(decode_all(&mut Decoder::new(MAX_BODY), &mut whole), want);

        let mut decoder = Decoder::new(MAX_BODY);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in stream.iter() {
            buf.put_u8(b);
            got.extend(decode_all(&mut decoder, &mut buf));
        }
        assert_eq!(got, want);
        assert!(!decoder.is_mid_frame());
    }

    #[test]
    fn input_cut_at_every_offset_waits_for_the_rest() {
        for frame in one_of_each() {
            let whole = encoded(&frame);
            for cut in 0..whole.len() {
                let mut decoder = Decoder::new(MAX_BODY);
                let mut buf = BytesMut::from(&whole[..cut]);
                assert_eq!(decoder.decode(&mut buf), Ok(None), "{frame:?} cut at {cut}");
                assert_eq!(decoder.is_mid_frame(), cut >= HEADER_LEN);
                buf.extend_from_slice(&whole[cut..]);
                assert_eq!(
                    decoder.decode(&mut buf),
                    Ok(Some(Decoded::Frame(frame.clone()))),
                    "{frame:?} completed after a cut at {cut}"
                );
                assert!(buf.is_empty() && !decoder.is_mid_frame());
            }
        }
    }

    #[test]
    fn unknown_kinds_are_refused() {
        for kind in [0u8, 6, 7, 0x80, 0xff] {
            let mut buf = BytesMut::from(&header_bytes(0, kind, 0, 0, 3)[..]);
            assert_eq!(
                Decoder::new(MAX_BODY).decode(&mut buf),
                Err(HeaderError::UnknownKind { kind })
            );
        }
    }

    #[test]
    fn every_flag_bit_is_refused() {
        for bit in 0..8 {
            let flags = 1u8 << bit;
            let err = Header::decode(&header_bytes(4, 3, flags, 0, 5)).unwrap_err();
            assert_eq!(
                err,
                HeaderError::UnknownFlags {
                    kind: Kind::Response,
                    call_id: 5,
                    flags
                }
            );
            assert!(err.to_string().contains("flags"), "{err}");
        }
    }

    #[test]
    fn a_method_past_the_body_is_refused() {
        assert_eq!(
            Header::decode(&header_bytes(9, 2, 0, 10, 1)),
            Err(HeaderError::MethodPastBody {
                call_id: 1,
                method_length: 10,
                length: 9
            })
        );
        // The method may fill the whole body (an empty request message).
        assert!(Header::decode(&header_bytes(10, 2, 0, 10, 1)).is_ok());
    }

    #[test]
    fn a_method_length_on_another_kind_is_refused() {
        for kind in [Kind::Hello, Kind::Response, Kind::Error, Kind::Cancel] {
            assert_eq!(
                Header::decode(&header_bytes(8, kind as u8, 0, 1, 0)),
                Err(HeaderError::MethodOnOtherKind {
                    kind,
                    call_id: 0,
                    method_length: 1
                })
            );
        }
    }

    #[test]
    fn a_cancel_with_a_body_is_refused() {
        assert_eq!(
            Header::decode(&header_bytes(1, 5, 0, 0, 4)),
            Err(HeaderError::CancelWithBody {
                call_id: 4,
                length: 1
            })
        );
    }

    #[test]
    fn an_error_without_room_for_its_code_is_refused() {
        for length in 0..4 {
            assert_eq!(
                Header::decode(&header_bytes(length, 4, 0, 0, 2)),
                Err(HeaderError::ErrorWithoutCode { call_id: 2, length })
            );
        }
        assert!(Header::decode(&header_bytes(4, 4, 0, 0, 2)).is_ok());
    }

    #[test]
    fn a_hello_must_have_version_and_roles_and_call_id_0() {
        for length in 0..2 {
            assert_eq!(
                Header::decode(&header_bytes(length, 1, 0, 0, 0)),
                Err(HeaderError::HelloWithoutRoles { length })
            );
        }
        assert_eq!(
            Header::decode(&header_bytes(2, 1, 0, 0, 1)),
            Err(HeaderError::HelloCallId { call_id: 1 })
        );
    }

    #[test]
    fn an_over_limit_body_is_read_past_without_being_kept() {
        let max_body = 64;
        let big = Frame::Response {
            call_id: 5,
            message: Bytes::from(vec![7u8; 1000]),
        };
        let next = Frame::Error {
            call_id: 6,
            code: 8,
            message: Bytes::from_static(b"next"),
        };
        let mut stream = encoded(&big);
        next.encode(&mut stream).expect("encodable");

        let mut decoder = Decoder::new(max_body);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut most_held = 0;
        for chunk in stream.chunks(10) {
            buf.extend_from_slice(chunk);
            most_held = most_held.max(buf.len());
            got.extend(decode_all(&mut decoder, &mut buf));
        }
        assert_eq!(
            got,
            vec![
                Decoded::OverLimit {
                    kind: Kind::Response,
                    call_id: 5,
                    length: 1000
                },
                Decoded::Frame(next)
            ]
        );
        // Never more than the header, a chunk, and the next frame's start.
        assert!(most_held <= HEADER_LEN + 10, "held {most_held} bytes");
    }

    #[test]
    fn an_over_limit_frame_arriving_at_once_leaves_only_what_follows() {
        let mut buf = BytesMut::from(&header_bytes(100, 2, 0, 3, 9)[..]);
        buf.extend_from_slice(&[1u8; 100]);
        buf.extend_from_slice(&header_bytes(0, 5, 0, 0, 10));
        let mut decoder = Decoder::new(99);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Decoded::OverLimit {
                kind: Kind::Request,
                call_id: 9,
                length: 100
            }))
        );
        assert_eq!(
            buf.len(),
            HEADER_LEN,
            "the body is gone as soon as it is reported"
        );
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Decoded::Frame(Frame::Cancel { call_id: 10 })))
        );
    }

    #[test]
    fn a_body_at_the_limit_is_kept() {
        let frame = Frame::Response {
            call_id: 1,
            message: Bytes::from(vec![1u8; 64]),
        };
        let mut buf = encoded(&frame);
        assert_eq!(
            Decoder::new(64).decode(&mut buf),
            Ok(Some(Decoded::Frame(frame)))
        );
    }

    #[test]
    fn an_over_limit_header_still_keeps_the_rules() {
        let mut buf = BytesMut::from(&header_bytes(u32::MAX, 5, 0, 0, 1)[..]);
        assert_eq!(
            Decoder::new(MAX_BODY).decode(&mut buf),
            Err(HeaderError::CancelWithBody {
                call_id: 1,
                length: u32::MAX
            })
        );
    }

    #[test]
    fn frames_that_do_not_fit_a_header_are_refused_when_encoded() {
        let long_method = Frame::Request {
            call_id: 1,
            method: Bytes::from(vec![b'm'; 65_536]),
            message: Bytes::new(),
        };
        assert_eq!(
            long_method.header(),
            Err(EncodeError::MethodTooLong {
                length: 65_536,
                max: 65_535
            })
        );
        assert!(long_method.encode(&mut BytesMut::new()).is_err());
    }

    #[test]
    fn a_hello_never_shows_its_token() {
        let hello = Hello {
            version: 1,
            roles: Roles::SERVES_HOOKS,
            token: Bytes::from_static(b"s3cret"),
        };
        let shown = format!("{:?}", Frame::Hello(hello));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<6 bytes>"), "{shown}");
    }
}
