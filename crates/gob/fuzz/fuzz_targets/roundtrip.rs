//! Decodes the first value of arbitrary bytes, encodes it again as the Go type the stream
//! described (`gob_fuzz::arena_for`) with a fresh encoder, and decodes that: the result must
//! be the value as Go would transmit it (`gob_fuzz::go_view`: explicit zero fields dropped),
//! with floats bit-exact, and nothing may follow it.
//!
//! Inputs whose value cannot be re-encoded for reasons outside the codec are skipped: wire
//! types no Go type has (`arena_for` gives `None`), interface names not registered in
//! `Types::new()` (the decoder keeps names, not the concrete type ids an encoder needs), and
//! an interface whose registered type does not match its concrete value. Any other encode
//! error is a finding.
#![no_main]

use gob::{Decoder, Encoder, Limits};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new(Limits::default());
    dec.feed(data);
    let Ok(Some(first)) = dec.next_value() else {
        return;
    };
    let root = dec.last_type_id().expect("a value was returned");
    let Some((types, ty)) = gob_fuzz::arena_for(&dec, root) else {
        return;
    };

    let mut bytes = Vec::new();
    if let Err(e) = Encoder::new().encode(&types, ty, &first, &mut bytes) {
        let outside_the_codec = e.message.contains("is not registered")
            || e.message.contains("cannot be encoded as Go type");
        assert!(
            outside_the_codec,
            "decoded {first:?} but cannot encode it: {e}"
        );
        return;
    }

    let mut again = Decoder::new(Limits::default());
    again.feed(&bytes);
    let second = match again.next_value() {
        Ok(Some(v)) => v,
        other => panic!("re-encoded {first:?} as {bytes:02x?} and decoding gave {other:?}"),
    };
    let want = gob_fuzz::go_view(&first);
    assert!(
        gob_fuzz::same_value(&want, &second),
        "round trip changed the value:\n want {want:?}\n  got {second:?}\n bytes {bytes:02x?}"
    );
    assert_eq!(again.next_value(), Ok(None), "bytes after the value");
    assert_eq!(again.buffered(), 0, "bytes after the value");
});
