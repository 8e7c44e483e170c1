//! Feeds arbitrary bytes to the decoder, whole and in two chunks: it must return errors or
//! values, never panic, hang, overflow the stack or allocate beyond what the bytes justify
//! (`CappedAllocator`). Both feedings must agree, and an error must stick: once the stream
//! is out of sync every later call returns the same error.
#![no_main]

use gob::{Decoder, Limits, Value};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

/// Every value `dec` yields from what it holds, then the error that stopped it, if any.
fn drain(dec: &mut Decoder, out: &mut Vec<Value>) -> Option<gob::DecodeError> {
    loop {
        match dec.next_value() {
            Ok(Some(v)) => out.push(v),
            Ok(None) => return None,
            Err(e) => {
                assert_eq!(
                    dec.next_value(),
                    Err(e.clone()),
                    "a decode error must stick"
                );
                return Some(e);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut whole = Decoder::new(Limits::default());
    whole.feed(data);
    let mut whole_values = Vec::new();
    let whole_error = drain(&mut whole, &mut whole_values);

    let mut chunked = Decoder::new(Limits::default());
    let mut chunked_values = Vec::new();
    chunked.feed(&data[..split]);
    let mut chunked_error = drain(&mut chunked, &mut chunked_values);
    if chunked_error.is_none() {
        chunked.feed(&data[split..]);
        chunked_error = drain(&mut chunked, &mut chunked_values);
    }

    // Restartable decoding: where the bytes are split must not change what they mean.
    assert_eq!(whole_error, chunked_error, "split at {split}");
    assert_eq!(whole_values.len(), chunked_values.len(), "split at {split}");
    for (w, c) in whole_values.iter().zip(&chunked_values) {
        assert!(
            gob_fuzz::same_value(w, c),
            "split at {split}: {w:?} != {c:?}"
        );
    }
});
