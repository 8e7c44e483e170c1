//! Feeds arbitrary bytes to the decoder, whole and in two chunks: it must return errors or
//! values, never panic, hang or overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut whole = gob::Decoder::new(gob::Limits::default());
    whole.feed(data);
    while let Ok(Some(_)) = whole.next_value() {}

    let mut chunked = gob::Decoder::new(gob::Limits::default());
    chunked.feed(&data[..split]);
    while let Ok(Some(_)) = chunked.next_value() {}
    chunked.feed(&data[split..]);
    while let Ok(Some(_)) = chunked.next_value() {}
});
