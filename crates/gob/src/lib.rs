//! A complete codec for Go's `encoding/gob` wire format, held to Go itself.
//!
//! Decoding is dynamic: a [`Decoder`] turns a gob stream into [`Value`]s shaped by the wire
//! types the peer defined. Encoding is schema-driven: an [`Encoder`] writes a [`Value`] as a Go
//! type described in a [`Types`] arena, producing the bytes Go's own Encoder would.
//!
//! ```
//! use gob::{Decoder, Encoder, Limits, Types, Value};
//!
//! let mut types = Types::new();
//! let point = types
//!     .struct_type("Point", vec![("X".into(), types.int()), ("Y".into(), types.int())])
//!     .unwrap();
//! let mut out = Vec::new();
//! let value = Value::structure([("X", Value::Int(22)), ("Y", Value::Int(33))]);
//! Encoder::new().encode(&types, point, &value, &mut out).unwrap();
//!
//! let mut dec = Decoder::new(Limits::default());
//! dec.feed(&out);
//! assert_eq!(dec.next_value().unwrap(), Some(value));
//! ```
//!
//! # Layout
//! - [`wire`]: uints, ints, floats, byte strings, message framing.
//! - [`types`]: the [`Types`] arena (Go types for encoding, `gob.Register` names) and
//!   [`WireType`] (types as a stream defines them).
//! - [`encode`]: [`Encoder`]. [`decode`]: [`Decoder`], [`Limits`].
//! - [`value`]: [`Value`], [`Struct`], [`Interface`]. [`error`]: [`DecodeError`],
//!   [`EncodeError`], [`SchemaError`]. [`time`]: `time.Time` payloads.
//!
//! # Design decisions
//! - **Per-stream state.** Go defines each type once per Encoder/Decoder pair, i.e. once per
//!   connection direction. An [`Encoder`] numbers user types from 64 in the order a fresh Go
//!   process creates them (a struct before its fields, an array/slice/map after its elements),
//!   so for a stream whose first types are ours the ids equal Go's. Go's ids are process-wide,
//!   so a long-lived Go process numbers the same types differently; only ids differ then.
//! - **Byte identity.** For the same value, field order and map entry order, the output equals
//!   Go's byte for byte, with two legitimate exceptions: type ids (above), and the informational
//!   `CommonType.Name` of anonymous composite types, which Go takes from whichever path first
//!   built the type (`"[]string"` via a struct field, `""` via a slice element); ours is the
//!   name given with [`Types::set_name`] / [`Types::named`] or `""`. Decoders ignore both.
//! - **Interfaces.** A [`Value::Interface`] carries the `gob.Register` name; the encoder maps
//!   it to a type with [`Types::register`] (an unknown name is an error). When the concrete
//!   type is new on the stream, the encoder does what Go does: the partial message is flushed
//!   with the definition appended and the value continues in the next message (or chunk, when
//!   nested). The decoder pulls the next message at exactly that point. It does not require
//!   names to be registered (it needs no Go types); the schema layer above checks names.
//! - **Zero omission.** Encoding a struct, fields are sent in type order and omitted when Go
//!   would omit them: false, 0, ±0.0, 0+0i, "", empty bytes, empty slices, nil interfaces, and
//!   absent fields. A present [`Value::Map`] is a non-nil map and is sent even when empty (Go
//!   sends non-nil empty maps); nested structs and arrays are always sent; a present
//!   [`Value::Encoded`] is sent (leave it out for Go's zero `time.Time`). A field name the type
//!   lacks is an error, never dropped. Top-level non-structs are sent as singletons.
//! - **Field deltas.** Struct fields travel as `(delta, value)` with the field number counted
//!   over the sent fields of the type; the decoder rejects deltas past the last field. A
//!   struct ends with its end marker (delta 0), which must come inside the message. Here we
//!   are stricter than Go on purpose: Go's decoder also stops a struct at the end of its
//!   message, so a value message cut short at a field boundary (its length prefix matching
//!   the cut) decodes there as a struct with the missing fields zero. Go's encoder always
//!   writes the marker, so such a message is a truncated value, and this decoder refuses it
//!   rather than pass a partial value off as the whole one. Go's verdict on every such cut
//!   of the golden streams is recorded beside ours (test
//!   `value_message_cut_inside_its_payload_is_refused`).
//! - **Strings.** Go strings may hold any bytes, and a server passes on whatever a client
//!   sent (header values, file names). A string that is UTF-8 decodes to [`Value::String`],
//!   any other to [`Value::NonUtf8String`] with its bytes unchanged; both encode as a string.
//!   Nothing is replaced and neither is an error. Interface type names must be UTF-8.
//! - **Limits.** [`Limits`] caps message size (default 256 MiB), nesting depth (default
//!   [`DEFAULT_MAX_DEPTH`], both directions: deep enough for any value a Mattermost server
//!   accepts, with the stack grown on the heap as the nesting requires, so hostile input
//!   cannot overflow it) and type definitions per stream. Length prefixes are checked against the bytes actually in the message before
//!   anything is allocated. Every malformed input is a [`DecodeError`] with its stream offset;
//!   nothing panics.
//! - **Over-limit values are skipped.** A message over the size limit that starts a value
//!   (positive type id) is read past as its bytes arrive, never buffered, and reported once as
//!   a [`DecodeErrorKind::ValueSkipped`] error; the stream goes on, so one oversized value
//!   costs one value, not the connection. An over-limit type definition is fatal (every later
//!   value could be misread), as is a skipped value's continuation message: a value defining
//!   an interface's concrete type mid-value took that definition with it.
//! - **Restartable decoding.** [`Decoder::next_value`] parses from the buffered bytes; if a
//!   value (possibly spanning messages) is incomplete it returns `Ok(None)` without consuming
//!   anything or touching the type table, and re-parses once more bytes arrive.

pub mod decode;
pub mod encode;
pub mod error;
pub mod time;
pub mod types;
pub mod value;
pub mod wire;

pub use decode::{DEFAULT_MAX_DEPTH, Decoder, Limits};
pub use encode::Encoder;
pub use error::{DecodeError, DecodeErrorKind, EncodeError, SchemaError};
pub use types::{Kind, TypeId, Types, WireKind, WireType};
pub use value::{Interface, Struct, Value};
