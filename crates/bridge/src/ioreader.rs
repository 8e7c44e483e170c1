//! go-plugin/Mattermost's io-reader protocol for byte streams on a broker stream
//! (docs/internals.md §9): the reading side writes a zigzag varint (`binary.PutVarint`) with
//! how many bytes it wants, then reads; the serving side copies up to that many and closes the
//! stream once its source is exhausted (a short copy).
//!
//! Both roles are here: [`pull`] reads a body the server serves (ServeHTTP request bodies,
//! FileWillBeUploaded uploads), [`serve`] serves bytes the server reads (InstallPlugin,
//! UploadData, ...). Neither buffers more than one 64 KiB piece.

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use goplugin::yamux::Stream as BrokerStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes asked for per request, and the largest piece forwarded at once.
pub const CHUNK: usize = 64 * 1024;

/// Go's `binary.PutVarint`: zigzag, then base-128 little-endian groups.
pub fn zigzag_varint(v: i64) -> Vec<u8> {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::with_capacity(10);
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
    out
}

/// Go's `binary.ReadVarint` over an async reader; `None` at a clean end of stream or on a
/// malformed (over-long) varint.
async fn read_zigzag_varint(r: &mut (impl AsyncReadExt + Unpin)) -> Option<i64> {
    let mut u: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = r.read_u8().await.ok()?;
        if shift == 63 && b > 1 {
            return None;
        }
        u |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(((u >> 1) as i64) ^ -((u & 1) as i64));
        }
    }
    None
}

/// Reads a body the server serves, calling `each` with every piece as it arrives, until the
/// server closes the stream. Returns early (`Ok(false)`) if `each` asks to stop.
pub async fn pull<F, Fut>(stream: &mut BrokerStream, mut each: F) -> std::io::Result<bool>
where
    F: FnMut(Bytes) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        stream.write_all(&zigzag_varint(CHUNK as i64)).await?;
        let mut outstanding = CHUNK;
        while outstanding > 0 {
            let n = stream.read(&mut buf[..outstanding]).await?;
            if n == 0 {
                return Ok(true);
            }
            outstanding -= n;
            if !each(Bytes::copy_from_slice(&buf[..n])).await {
                return Ok(false);
            }
        }
    }
}

/// Serves `source` to a server that reads it with the io-reader protocol, then closes the
/// stream. A source error ends the bytes early (the server sees a short body).
pub async fn serve<S, E>(stream: BrokerStream, source: S) -> std::io::Result<()>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut source = source;
    let mut pending = Bytes::new();
    let mut exhausted = false;
    while !exhausted {
        let Some(wanted) = read_zigzag_varint(&mut rd).await else {
            break;
        };
        let mut remaining = usize::try_from(wanted.max(0)).unwrap_or(0);
        while remaining > 0 {
            if pending.is_empty() {
                match source.next().await {
                    Some(Ok(b)) => pending = b,
                    Some(Err(_)) | None => {
                        exhausted = true;
                        break;
                    }
                }
                continue;
            }
            let k = remaining.min(pending.len());
            wr.write_all(&pending[..k]).await?;
            pending.advance(k);
            remaining -= k;
        }
    }
    wr.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_go_put_varint() {
        // Worked by hand from encoding/binary.PutVarint; the conformance POST and upload cases,
        // where the real server reads and writes these, are the judge.
        assert_eq!(zigzag_varint(0), vec![0x00]);
        assert_eq!(zigzag_varint(1), vec![0x02]);
        assert_eq!(zigzag_varint(-1), vec![0x01]);
        assert_eq!(zigzag_varint(63), vec![0x7e]);
        assert_eq!(zigzag_varint(64), vec![0x80, 0x01]);
        assert_eq!(zigzag_varint(65536), vec![0x80, 0x80, 0x08]);
    }

    #[tokio::test]
    async fn varints_read_back() {
        for v in [0i64, 1, -1, 63, 64, 65536, i64::MAX, i64::MIN] {
            let bytes = zigzag_varint(v);
            let mut r = &bytes[..];
            assert_eq!(read_zigzag_varint(&mut r).await, Some(v));
        }
        let mut truncated: &[u8] = &[0x80];
        assert_eq!(read_zigzag_varint(&mut truncated).await, None);
        let mut overlong: &[u8] = &[0xff; 11];
        assert_eq!(read_zigzag_varint(&mut overlong).await, None);
    }
}
