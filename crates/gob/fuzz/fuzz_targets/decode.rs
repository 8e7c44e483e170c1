//! Feeds arbitrary bytes to the decoder, whole and in two chunks: it must return errors or
//! values, never panic, hang, overflow the stack or allocate beyond what the bytes justify
//! (`CappedAllocator`). Both feedings must agree, and a fatal error must stick: once the
//! stream is out of sync every later call returns the same error. Each input runs twice:
//! with the default limits, and with a 64-byte message limit so that over-limit value
//! messages are skipped (recoverable errors, after which decoding goes on) often.
#![no_main]

use gob::{DecodeError, Decoder, Limits, Value};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

/// What a decoder yields: values, and the errors it reads past (skipped values).
enum Outcome {
    Value(Value),
    Skipped(DecodeError),
}

/// Every outcome `dec` yields from what it holds, then the fatal error that stopped it.
fn drain(dec: &mut Decoder, out: &mut Vec<Outcome>) -> Option<DecodeError> {
    loop {
        match dec.next_value() {
            Ok(Some(v)) => out.push(Outcome::Value(v)),
            Ok(None) => return None,
            Err(e) if !e.is_fatal() => out.push(Outcome::Skipped(e)),
            Err(e) => {
                assert_eq!(
                    dec.next_value(),
                    Err(e.clone()),
                    "a fatal decode error must stick"
                );
                return Some(e);
            }
        }
    }
}

fn whole_and_chunked_agree(data: &[u8], limits: Limits) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut whole = Decoder::new(limits);
    whole.feed(data);
    let mut whole_out = Vec::new();
    let whole_error = drain(&mut whole, &mut whole_out);

    let mut chunked = Decoder::new(limits);
    let mut chunked_out = Vec::new();
    chunked.feed(&data[..split]);
    let mut chunked_error = drain(&mut chunked, &mut chunked_out);
    if chunked_error.is_none() {
        chunked.feed(&data[split..]);
        chunked_error = drain(&mut chunked, &mut chunked_out);
    }

    // Restartable decoding: where the bytes are split must not change what they mean.
    assert_eq!(whole_error, chunked_error, "split at {split}");
    assert_eq!(whole_out.len(), chunked_out.len(), "split at {split}");
    for (w, c) in whole_out.iter().zip(&chunked_out) {
        match (w, c) {
            (Outcome::Value(w), Outcome::Value(c)) => assert!(
                gob_fuzz::same_value(w, c),
                "split at {split}: {w:?} != {c:?}"
            ),
            (Outcome::Skipped(w), Outcome::Skipped(c)) => assert_eq!(w, c, "split at {split}"),
            _ => panic!("split at {split}: a value on one side, a skip on the other"),
        }
    }
    if whole_error.is_none() {
        assert_eq!(whole.in_message(), chunked.in_message(), "split at {split}");
        assert_eq!(whole.offset(), chunked.offset(), "split at {split}");
    }
}

fuzz_target!(|data: &[u8]| {
    whole_and_chunked_agree(data, Limits::default());
    whole_and_chunked_agree(
        data,
        Limits {
            max_message_size: 64,
            ..Limits::default()
        },
    );
});
