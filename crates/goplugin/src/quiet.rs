//! [`QuietUnixStream`]: a unix stream socket that the event loop watches for input only.
//!
//! tokio's `UnixStream` registers its socket with epoll for readability *and* writability,
//! edge-triggered. On Linux a unix socket signals "writable" every time the peer reads
//! something this end wrote (`sock_wfree` → `unix_write_space`), so a thread sleeping in
//! `epoll_wait` is woken once per message the peer consumes, only to find nothing to do and
//! sleep again. For a request/answer protocol that is one extra sleep and wake-up per call
//! on each socket: `perf stat` counted 4 context switches per hook in the bridge where 2 are
//! needed (one wait for the hook call, one for Python's answer).
//!
//! This stream registers for readability alone. Writes go straight to the non-blocking
//! socket; only when one would block (the peer has stopped reading and the socket buffer is
//! full) is a duplicate of the descriptor registered for writability, and it is dropped
//! (deregistered) by the next write that gets through. So a peer that keeps reading never
//! wakes this end, and one that stops still gets this end's writes delivered as it resumes.

use std::io::{self, IoSlice, Write as _};
use std::net::Shutdown;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// A connected unix stream socket watched by the event loop for input only (module doc).
#[derive(Debug)]
pub struct QuietUnixStream {
    /// The socket, registered for readability.
    socket: AsyncFd<UnixStream>,
    /// A duplicate of the socket's descriptor registered for writability while a write
    /// waits for room; `None` otherwise.
    write_wait: Option<AsyncFd<OwnedFd>>,
}

impl QuietUnixStream {
    /// Takes over a connected socket (made non-blocking here). Must be called inside a
    /// tokio runtime with I/O enabled.
    pub fn new(socket: UnixStream) -> io::Result<QuietUnixStream> {
        socket.set_nonblocking(true)?;
        Ok(QuietUnixStream {
            // SAFETY: the UnixStream owns its descriptor and the AsyncFd owns the UnixStream,
            // which nothing replaces or closes before the AsyncFd is dropped.
            socket: unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?,
            write_wait: None,
        })
    }

    /// Takes over a tokio socket, re-registering it for input only.
    pub fn from_tokio(socket: tokio::net::UnixStream) -> io::Result<QuietUnixStream> {
        QuietUnixStream::new(socket.into_std()?)
    }

    /// Runs one non-blocking write; on `WouldBlock` waits for room on the duplicate
    /// registered for writability and tries again.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&UnixStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(self.socket.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => {
                    // Room again: stop listening for it, so the peer's reads stop waking us.
                    self.write_wait = None;
                    return Poll::Ready(done);
                }
            }
            if self.write_wait.is_none() {
                // Registering reports the current state, so room made since the failed write
                // is not missed.
                let duplicate = self.socket.get_ref().as_fd().try_clone_to_owned()?;
                // SAFETY: as in `new`: the OwnedFd is the AsyncFd's own, open until it drops.
                let wait =
                    unsafe { AsyncFd::register_with_interest(duplicate, Interest::WRITABLE) }?;
                self.write_wait = Some(wait);
            }
            let Some(wait) = &self.write_wait else {
                continue;
            };
            let mut guard = ready!(wait.poll_write_ready(cx))?;
            // The readiness was used up by the failed write; the next one comes as a new edge.
            guard.clear_ready();
        }
    }
}

impl AsyncRead for QuietUnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.socket.poll_read_ready(cx))?;
            let fd = this.socket.get_ref().as_raw_fd();
            // SAFETY: only `read` writes into the unfilled part (never de-initializing it), at
            // most its length; the memory is valid for writes of that length, and `fd` is the
            // open socket `this.socket` owns.
            let (n, wanted) = unsafe {
                let unfilled = buf.unfilled_mut();
                let wanted = unfilled.len();
                (libc::read(fd, unfilled.as_mut_ptr().cast(), wanted), wanted)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        continue;
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => return Poll::Ready(Err(e)),
                }
            }
            let n = n.unsigned_abs();
            // SAFETY: the kernel initialized the first `n` bytes of the unfilled part.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            if n > 0 && n < wanted {
                // A short read drained the socket (as tokio's own sockets assume): the next
                // read would only say WouldBlock. Data arriving later raises a new edge.
                guard.clear_ready();
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for QuietUnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |mut socket| socket.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |mut socket| socket.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go to the socket directly: nothing is held back.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.socket.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (QuietUnixStream, tokio::net::UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (
            QuietUnixStream::new(a).unwrap(),
            tokio::net::UnixStream::from_std(b).unwrap(),
        )
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_end_with_shutdown() {
        let (mut quiet, mut peer) = pair();
        quiet.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");

        peer.write_all(b"world!").await.unwrap();
        let mut got = vec![0u8; 6];
        quiet.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"world!");

        quiet.shutdown().await.unwrap();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());

        drop(peer);
        let mut rest = Vec::new();
        assert_eq!(quiet.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_read_waits_for_data_that_comes_later() {
        let (mut quiet, mut peer) = pair();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 4];
            quiet.read_exact(&mut got).await.unwrap();
            got
        });
        tokio::task::yield_now().await;
        peer.write_all(b"late").await.unwrap();
        assert_eq!(reader.await.unwrap(), b"late");
    }

    #[tokio::test]
    async fn a_write_to_a_full_socket_resumes_when_the_peer_reads() {
        let (mut quiet, mut peer) = pair();
        // Far more than a unix socket buffers: the writer must wait for the reader.
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            quiet.write_all(&data).await.unwrap();
            // Room came back: the registration for writability is gone again.
            assert!(quiet.write_wait.is_none());
            quiet.shutdown().await.unwrap();
        });
        // Let the writer fill the socket and park before anything is read.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got == expected, "the bytes arrived changed or out of order");
    }
}
