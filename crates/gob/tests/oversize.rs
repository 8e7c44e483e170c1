//! Messages over `Limits::max_message_size`: a value message is read past without being
//! buffered and reported as a recoverable `ValueSkipped` error, after which the stream goes on;
//! a type definition (or anything the decoder cannot safely read past) is fatal.

use gob::wire::{put_int, put_message};
use gob::{DecodeError, DecodeErrorKind, Decoder, Encoder, Limits, Types, Value};

const LIMIT: u64 = 1024;

fn limited() -> Decoder {
    Decoder::new(Limits {
        max_message_size: LIMIT,
        ..Limits::default()
    })
}

/// Feeds `stream` in `chunk`-byte pieces, taking every outcome out after each piece, and
/// returns the outcomes with the largest buffer the decoder held along the way.
fn feed_in_chunks(
    dec: &mut Decoder,
    stream: &[u8],
    chunk: usize,
) -> (Vec<Result<Value, DecodeError>>, usize) {
    let mut out = Vec::new();
    let mut most_held = 0;
    for piece in stream.chunks(chunk) {
        dec.feed(piece);
        most_held = most_held.max(dec.buffer_capacity());
        loop {
            match dec.next_value() {
                Ok(Some(v)) => out.push(Ok(v)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e));
                    if fatal {
                        return (out, most_held);
                    }
                }
            }
            most_held = most_held.max(dec.buffer_capacity());
        }
    }
    (out, most_held)
}

/// `struct Blob { Name string; Data []byte }`, a `[]string` type the stream first defines
/// after the big value, and the stream: a small blob, a 1 MiB blob, a small blob, a slice.
struct Fixture {
    stream: Vec<u8>,
    /// Stream offset of the big value's message and its length (without the prefix).
    big_at: u64,
    big_len: u64,
    blob_id: i64,
    small: Value,
    strings: Value,
}

fn fixture() -> Fixture {
    let mut types = Types::new();
    let blob = types
        .struct_type(
            "Blob",
            vec![
                ("Name".into(), types.string()),
                ("Data".into(), types.bytes()),
            ],
        )
        .unwrap();
    let strings = types.slice(types.string());
    let small = Value::structure([
        ("Name", Value::String("small".into())),
        ("Data", Value::Bytes(b"tiny".to_vec())),
    ]);
    let big = Value::structure([
        ("Name", Value::String("big".into())),
        ("Data", Value::Bytes(vec![0xab; 1 << 20])),
    ]);
    let strings_value = Value::Slice(vec![Value::String("after".into())]);

    let mut enc = Encoder::new();
    let mut stream = Vec::new();
    enc.encode(&types, blob, &small, &mut stream).unwrap();
    let big_at = stream.len() as u64;
    enc.encode(&types, blob, &big, &mut stream).unwrap();
    let big_bytes = stream.len() as u64 - big_at;
    enc.encode(&types, blob, &small, &mut stream).unwrap();
    enc.encode(&types, strings, &strings_value, &mut stream)
        .unwrap();

    // The big message's length prefix is the 1 + 4 bytes of a uint around 1 MiB.
    let big_len = big_bytes - 4;
    assert!(big_len > 1 << 20);
    // The blob type is the stream's first user type: Go numbers those from 64.
    Fixture {
        stream,
        big_at,
        big_len,
        blob_id: 64,
        small,
        strings: strings_value,
    }
}

fn expect_skip_then_values(f: &Fixture, outcomes: &[Result<Value, DecodeError>]) {
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    assert_eq!(outcomes[0].as_ref().unwrap(), &f.small);
    let e = outcomes[1].as_ref().unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::ValueSkipped {
            len: f.big_len,
            type_id: f.blob_id,
            limit: LIMIT
        }
    );
    assert!(!e.is_fatal());
    assert_eq!(e.offset, f.big_at);
    assert_eq!(
        e.message,
        format!(
            "value message of {} bytes (type id {}) exceeds the limit of 1024 bytes; skipped",
            f.big_len, f.blob_id
        )
    );
    // The stream goes on: the next value of the same type, and a type first defined after it.
    assert_eq!(outcomes[2].as_ref().unwrap(), &f.small);
    assert_eq!(outcomes[3].as_ref().unwrap(), &f.strings);
}

#[test]
fn over_limit_value_fed_in_small_chunks_is_skipped_without_buffering_it() {
    let f = fixture();
    for chunk in [1, 7, 100, 4096] {
        let mut dec = limited();
        let (outcomes, most_held) = feed_in_chunks(&mut dec, &f.stream, chunk);
        expect_skip_then_values(&f, &outcomes);
        // Never more than a chunk plus the small messages: the 1 MiB value was never held.
        assert!(
            most_held <= 2 * chunk + 256,
            "chunks of {chunk}: the decoder held {most_held} bytes"
        );
        assert_eq!(dec.buffered(), 0);
        assert!(!dec.in_message());
        assert_eq!(dec.offset(), f.stream.len() as u64);
    }
}

#[test]
fn over_limit_value_fed_at_once_is_skipped_from_the_buffer() {
    let f = fixture();
    let mut dec = limited();
    let (outcomes, _) = feed_in_chunks(&mut dec, &f.stream, f.stream.len());
    expect_skip_then_values(&f, &outcomes);
    assert_eq!(dec.offset(), f.stream.len() as u64);
}

#[test]
fn a_skip_in_progress_is_inside_a_message() {
    let f = fixture();
    let mut dec = limited();
    let cut = f.big_at as usize + 5000;
    dec.feed(&f.stream[..cut]);
    assert_eq!(dec.next_value().unwrap(), Some(f.small.clone()));
    assert_eq!(dec.next_value().unwrap(), None);
    assert!(dec.in_message(), "mid-skip is mid-message");
    assert_eq!(dec.buffered(), 0, "the skipped bytes are not kept");
    // Feeding the rest finishes the skip and the stream goes on.
    dec.feed(&f.stream[cut..]);
    assert!(!dec.next_value().unwrap_err().is_fatal());
    assert_eq!(dec.next_value().unwrap(), Some(f.small.clone()));
    assert_eq!(dec.next_value().unwrap(), Some(f.strings.clone()));
    assert!(!dec.in_message());
}

#[test]
fn a_partial_message_is_inside_a_message() {
    let f = fixture();
    let mut dec = limited();
    dec.feed(&f.stream[..3]);
    assert_eq!(dec.next_value().unwrap(), None);
    assert!(dec.in_message());
    let mut fresh = limited();
    assert!(!fresh.in_message());
    fresh.feed(&f.stream[..f.big_at as usize]);
    assert_eq!(fresh.next_value().unwrap(), Some(f.small.clone()));
    assert!(!fresh.in_message(), "between messages");
}

fn assert_fatal_and_sticks(dec: &mut Decoder, want: &str) -> DecodeError {
    let e = loop {
        match dec.next_value() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("expected an error, the decoder wants more bytes"),
            Err(e) => break e,
        }
    };
    assert!(e.is_fatal(), "{e}");
    assert!(e.message.contains(want), "{e}");
    assert_eq!(dec.next_value().unwrap_err(), e, "a fatal error sticks");
    e
}

#[test]
fn over_limit_type_definition_is_fatal_as_soon_as_its_id_arrives() {
    let mut types = Types::new();
    let long_name = "N".repeat(2000);
    let t = types
        .struct_type(&long_name, vec![("X".into(), types.int())])
        .unwrap();
    let mut stream = Vec::new();
    Encoder::new()
        .encode(
            &types,
            t,
            &Value::structure([("X", Value::Int(1))]),
            &mut stream,
        )
        .unwrap();
    let mut dec = limited();
    // Length prefix (3 bytes) and the type id: nothing more is needed to know.
    dec.feed(&stream[..4]);
    let e = assert_fatal_and_sticks(&mut dec, "type definition message of");
    assert!(e.message.contains("exceeds the limit of 1024 bytes"), "{e}");
    assert_eq!(e.offset, 0);
}

#[test]
fn over_limit_message_of_an_unknown_type_is_fatal() {
    let mut body = Vec::new();
    put_int(&mut body, 99);
    body.extend(std::iter::repeat_n(0, 2000));
    let mut stream = Vec::new();
    put_message(&mut stream, &body);
    let mut dec = limited();
    dec.feed(&stream);
    assert_fatal_and_sticks(
        &mut dec,
        "message of 2002 bytes exceeds the limit of 1024 bytes and has the unknown type id 99",
    );
}

#[test]
fn over_limit_message_with_type_id_zero_is_fatal() {
    let mut stream = Vec::new();
    put_message(&mut stream, &[0u8; 2000]);
    let mut dec = limited();
    dec.feed(&stream);
    assert_fatal_and_sticks(&mut dec, "and has the unknown type id 0");
}

/// `struct Holder { Data []byte; Any interface{} }` holding a `Point` the stream has not
/// defined yet: Go (and our encoder) flush the value so far with Point's definition appended,
/// and the value continues in a second message.
fn split_value_stream(data_len: usize) -> (Vec<u8>, usize) {
    let mut types = Types::new();
    let point = types
        .struct_type("Point", vec![("X".into(), types.int())])
        .unwrap();
    types.register("main.Point", point);
    let holder = types
        .struct_type(
            "Holder",
            vec![
                ("Data".into(), types.bytes()),
                ("Any".into(), types.interface()),
            ],
        )
        .unwrap();
    let v = Value::structure([
        ("Data", Value::Bytes(vec![7; data_len])),
        (
            "Any",
            Value::interface("main.Point", Value::structure([("X", Value::Int(5))])),
        ),
    ]);
    let mut stream = Vec::new();
    let mut enc = Encoder::new();
    enc.encode(&types, holder, &v, &mut stream).unwrap();
    let first_value_message = stream.len();
    enc.encode(&types, holder, &v, &mut stream).unwrap();
    (stream, first_value_message)
}

#[test]
fn a_skipped_value_that_defined_types_mid_message_fails_the_stream_clearly() {
    let (stream, _) = split_value_stream(4000);
    let mut dec = limited();
    let (outcomes, _) = feed_in_chunks(&mut dec, &stream, 512);
    // The first part is skipped; its continuation names a type only it defined.
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(!outcomes[0].as_ref().unwrap_err().is_fatal());
    let e = outcomes[1].as_ref().unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert!(e.message.contains("unknown type id"), "{e}");
    assert!(
        e.message
            .contains("in the message after the over-limit value message of"),
        "{e}"
    );
}

#[test]
fn a_continuation_message_over_the_limit_is_fatal() {
    // The big bytes inside the interface's value: the first message (up to Blob's
    // definition) is small, the one continuing the value is over the limit.
    let mut types = Types::new();
    let blob = types
        .struct_type("Blob", vec![("Data".into(), types.bytes())])
        .unwrap();
    types.register("main.Blob", blob);
    let holder = types
        .struct_type("Holder", vec![("Any".into(), types.interface())])
        .unwrap();
    let v = Value::structure([(
        "Any",
        Value::interface(
            "main.Blob",
            Value::structure([("Data", Value::Bytes(vec![1; 4000]))]),
        ),
    )]);
    let mut stream = Vec::new();
    Encoder::new()
        .encode(&types, holder, &v, &mut stream)
        .unwrap();
    let mut dec = limited();
    dec.feed(&stream);
    assert_fatal_and_sticks(&mut dec, "exceeds the limit of 1024 bytes");
}

#[test]
fn under_the_limit_nothing_is_skipped() {
    let (stream, _) = split_value_stream(100);
    let mut dec = limited();
    let (outcomes, _) = feed_in_chunks(&mut dec, &stream, 3);
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
}

#[test]
fn a_length_no_go_peer_can_send_is_fatal_even_for_a_value() {
    let mut stream = Vec::new();
    gob::wire::put_uint(&mut stream, 1 << 33);
    put_int(&mut stream, 6); // a string
    let mut dec = limited();
    dec.feed(&stream);
    assert_fatal_and_sticks(&mut dec, "and Go's own limit of 8589934591 bytes");
    let mut stream = Vec::new();
    gob::wire::put_uint(&mut stream, (1 << 33) - 1);
    put_int(&mut stream, 6);
    let mut dec = limited();
    dec.feed(&stream);
    assert_eq!(dec.next_value(), Ok(None), "read past as it arrives");
    assert!(dec.in_message());
}
