//! Writes the seeds of the `frames` fuzz target (crates/lane/fuzz): what a Python end writes
//! on the lane socket, encoded by this crate, one file per scenario.
//!
//!     cargo run -p mmplug-lane --example fuzz_seeds -- crates/lane/fuzz/seeds/frames
//!
//! The token, method names and the 256-byte body limit are the fuzz target's.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use mmplug_lane::frame::{Hello, VERSION};
use mmplug_lane::{Frame, Roles};

const TOKEN: &[u8] = b"fuzz-token-0123456789abcdef";
const MAX_BODY: usize = 256;

fn hello(token: &[u8]) -> Frame {
    Frame::Hello(Hello {
        version: VERSION,
        roles: Roles::SERVES_HOOKS,
        token: Bytes::copy_from_slice(token),
    })
}

fn request(call_id: u64, method: &str, message: &[u8]) -> Frame {
    Frame::Request {
        call_id,
        method: Bytes::copy_from_slice(method.as_bytes()),
        message: Bytes::copy_from_slice(message),
    }
}

fn response(call_id: u64, message: &[u8]) -> Frame {
    Frame::Response {
        call_id,
        message: Bytes::copy_from_slice(message),
    }
}

fn error(call_id: u64, code: u32, message: &str) -> Frame {
    Frame::Error {
        call_id,
        code,
        message: Bytes::copy_from_slice(message.as_bytes()),
    }
}

fn encode(frames: &[Frame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode(&mut out).expect("seed frames fit a header");
    }
    out
}

fn main() -> std::io::Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .expect("usage: fuzz_seeds DIR")
        .into();
    std::fs::create_dir_all(&dir)?;
    let cancel = |call_id| Frame::Cancel { call_id };
    let seeds: Vec<(&str, BytesMut)> = vec![
        (
            "calls.bin",
            encode(&[
                hello(TOKEN),
                request(1, "/echo", b"\x0a\x05hello"),
                request(2, "/fail", b"\x05"),
                request(3, "/unknown", b""),
                request(4, "/sleep", b"\x03"),
            ]),
        ),
        (
            "answers.bin",
            encode(&[
                hello(TOKEN),
                response(1, b"\x08\x01"),
                error(2, 13, "a handler raised"),
                response(99, b"late"),
                error(98, 4, "unknown id"),
            ]),
        ),
        (
            "cancel.bin",
            encode(&[
                hello(TOKEN),
                request(1, "/sleep", b"\x20"),
                request(2, "/pend", b""),
                cancel(1),
                cancel(2),
                cancel(3),
                request(2, "/echo", b"again"),
            ]),
        ),
        (
            "over_limit.bin",
            encode(&[
                hello(TOKEN),
                request(1, "/echo", &[7u8; MAX_BODY + 44]),
                response(1, &[1u8; MAX_BODY * 2]),
                request(2, "/big", b""),
                request(3, "/echo", b"after"),
            ]),
        ),
        ("wrong_token.bin", encode(&[hello(b"not-the-token")])),
        (
            "second_hello.bin",
            encode(&[hello(TOKEN), request(1, "/echo", b"x"), hello(TOKEN)]),
        ),
        (
            "reused_id.bin",
            encode(&[
                hello(TOKEN),
                request(5, "/pend", b""),
                request(5, "/echo", b""),
            ]),
        ),
        ("truncated.bin", {
            let mut out = encode(&[hello(TOKEN), request(1, "/echo", b"0123456789")]);
            out.truncate(out.len() - 4);
            out
        }),
        ("flags.bin", {
            let mut out = encode(&[hello(TOKEN), request(1, "/echo", b"ok")]);
            let mut broken = encode(&[response(1, b"")]);
            broken[5] = 0x01;
            out.extend_from_slice(&broken);
            out
        }),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), &bytes)?;
    }
    Ok(())
}
