//! Arbitrary bytes as everything Python writes on the lane socket, twice:
//!
//! 1. Into the frame [`Decoder`], whole and one byte at a time: both feedings must yield
//!    the same frames, over-limit reports and error; an error must stick (the decoder
//!    refuses the same header again); every frame must encode back to exactly the bytes it
//!    was decoded from.
//! 2. Into the bridge's side of a connection ([`accept`], then a running [`Connection`])
//!    over an in-memory duplex, with a handler that echoes, fails, sleeps, never answers or
//!    answers over the limit by method, while the bridge makes four calls of its own (ids 1
//!    to 4, so answers in the input can find them) with time limits. Python's side closes its
//!    writing after the bytes and a minute of (paused) time; the bridge must then wind down
//!    by itself. What the bridge wrote must be whole frames that keep the rules (a partial
//!    last frame is allowed: the writer stops mid-write when the connection closes), a HELLO
//!    first, bodies within the limit, and no more answers to an id than the input sent
//!    requests with it.
//!
//! Beyond that: no panic, hang or unbounded allocation (`CappedAllocator`). The body limit
//! is 256 bytes and the write queue's 4 KiB, so small inputs reach the over-limit paths.
//! The token and method names are those of the seed generator
//! (`crates/lane/examples/fuzz_seeds.rs`).
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use libfuzzer_sys::fuzz_target;
use mmplug_lane::{
    Code, Connection, Decoded, Decoder, Frame, HeaderError, Kind, Limits, Options, Status, accept,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

const TOKEN: &[u8] = b"fuzz-token-0123456789abcdef";
const MAX_BODY: u32 = 256;
const MAX_QUEUED: usize = 4096;

/// What the decoder yielded, each with the bytes it was decoded from when it is a frame
/// begun and ended within one call.
type Yielded<'a> = Vec<(Decoded, Option<&'a [u8]>)>;

/// Everything a decoder yields from `data` fed in chunks of `chunk` bytes, and the error
/// that stopped it.
fn decode(data: &[u8], chunk: usize) -> (Yielded<'_>, Option<HeaderError>) {
    let mut decoder = Decoder::new(MAX_BODY);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            // Stream offsets of the buffer's start, before and after.
            let start = fed - buf.len();
            let mid_frame = decoder.is_mid_frame();
            match decoder.decode(&mut buf) {
                Ok(Some(decoded)) => {
                    // A frame begun in this call was whole in the buffer: its bytes are
                    // exactly what the call consumed.
                    let source = (!mid_frame && matches!(decoded, Decoded::Frame(_)))
                        .then(|| &data[start..fed - buf.len()]);
                    out.push((decoded, source));
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.decode(&mut buf), Err(e.clone()), "errors stick");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

fn check_decoder(data: &[u8]) {
    let (whole, whole_err) = decode(data, data.len().max(1));
    let (bytewise, bytewise_err) = decode(data, 1);
    assert_eq!(whole_err, bytewise_err);
    let strip = |v: &Yielded<'_>| -> Vec<Decoded> { v.iter().map(|(d, _)| d.clone()).collect() };
    assert_eq!(strip(&whole), strip(&bytewise));
    for (decoded, source) in &whole {
        if let (Decoded::Frame(frame), Some(source)) = (decoded, source) {
            let mut again = BytesMut::new();
            frame.encode(&mut again).expect("a decoded frame encodes");
            assert_eq!(&again[..], *source, "{frame:?}");
        }
    }
}

/// Serves by method name, so the input picks the handler's behaviour.
fn handler(
    method: &str,
    message: Bytes,
) -> futures::future::BoxFuture<'static, Result<Bytes, Status>> {
    let first = message.first().copied().unwrap_or(0);
    match method {
        "/echo" => Box::pin(async move { Ok(message) }),
        "/fail" => Box::pin(async move { Err(Status::new(Code(first.into()), "failed")) }),
        "/sleep" => Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(first) * 100)).await;
            Ok(message)
        }),
        "/big" => Box::pin(async { Ok(Bytes::from(vec![0u8; MAX_BODY as usize + 1])) }),
        "/pend" => Box::pin(std::future::pending()),
        _ => Box::pin(async { Err(Status::unimplemented("no such method")) }),
    }
}

/// The bridge's side: accept, call, and wait for the connection to close.
async fn bridge(stream: tokio::io::DuplexStream) {
    let options = Options::new()
        .limits(Limits {
            max_body: MAX_BODY,
            max_queued: MAX_QUEUED,
        })
        .handler(handler)
        .observer(|_event| {});
    let Ok(established) = accept(stream, TOKEN, options).await else {
        return;
    };
    let conn: Connection = established.connection;
    let calls = join_all((0..4u8).map(|i| {
        let message = Bytes::from(vec![i; usize::from(i) * 100]);
        let limit = Duration::from_secs(u64::from(i) * 10 + 1);
        conn.call("/h/Hook", message, Some(limit))
    }));
    let (_answers, _reason) = tokio::join!(calls, conn.closed());
}

/// Python's side: writes the input, waits a minute, closes its writing, reads to the end.
async fn python(mut stream: tokio::io::DuplexStream, data: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = tokio::io::split(&mut stream);
    let writes = async {
        // The bridge drops the stream on a refusal or a violation: a failed write is expected.
        let _ = write.write_all(data).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let _ = write.shutdown().await;
    };
    let mut out = Vec::new();
    let ((), _) = tokio::join!(writes, read.read_to_end(&mut out));
    out
}

/// What the bridge wrote: whole frames keeping the rules, HELLO first, bodies within the
/// limit, at most as many answers per id as the input sent requests with it.
fn check_output(input: &[u8], out: &[u8]) {
    let mut requests: HashMap<u64, usize> = HashMap::new();
    for (decoded, _) in decode(input, input.len().max(1)).0 {
        match decoded {
            Decoded::Frame(Frame::Request { call_id, .. })
            | Decoded::OverLimit {
                kind: Kind::Request,
                call_id,
                ..
            } => *requests.entry(call_id).or_default() += 1,
            _ => {}
        }
    }
    let mut decoder = Decoder::new(u32::MAX);
    let mut buf = BytesMut::from(out);
    let mut answers: HashMap<u64, usize> = HashMap::new();
    let mut first = true;
    while let Some(decoded) = decoder
        .decode(&mut buf)
        .expect("the bridge keeps the rules")
    {
        let Decoded::Frame(frame) = decoded else {
            unreachable!("no limit here");
        };
        assert_eq!(first, matches!(frame, Frame::Hello(_)), "{frame:?}");
        first = false;
        match &frame {
            Frame::Hello(hello) => assert!(hello.token.is_empty(), "the bridge sends no token"),
            Frame::Request {
                call_id, message, ..
            } => {
                assert!((1..=4).contains(call_id), "{frame:?}");
                assert!(message.len() <= MAX_BODY as usize);
            }
            Frame::Response { call_id, message } => {
                assert!(message.len() <= MAX_BODY as usize);
                *answers.entry(*call_id).or_default() += 1;
            }
            Frame::Error {
                call_id, message, ..
            } => {
                assert!(std::str::from_utf8(message).is_ok(), "{frame:?}");
                *answers.entry(*call_id).or_default() += 1;
            }
            Frame::Cancel { call_id } => assert!((1..=4).contains(call_id), "{frame:?}"),
        }
    }
    for (call_id, n) in answers {
        let sent = requests.get(&call_id).copied().unwrap_or(0);
        assert!(n <= sent, "{n} answers to call {call_id}, {sent} requests");
    }
}

fuzz_target!(|data: &[u8]| {
    check_decoder(data);

    // Per input: a fresh runtime ends every task the input started. The paused clock lets
    // sleeps and time limits pass as soon as nothing else can run.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    let out = runtime.block_on(async {
        let (bridge_end, python_end) = tokio::io::duplex(4096);
        let ((), out) = tokio::join!(bridge(bridge_end), python(python_end, data));
        out
    });
    drop(runtime);
    check_output(data, &out);
});
