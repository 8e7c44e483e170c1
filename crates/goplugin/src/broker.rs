//! go-plugin's MuxBroker: extra yamux streams named by a `u32` id.
//!
//! Facts (hashicorp/go-plugin `mux_broker.go`):
//! - Each side allocates ids on its own with `NextId` (atomic increment, first id 1).
//! - The side that allocated an id `Accept`s it; the peer `Dial`s it.
//! - `Dial(id)`: open a stream, write `id` as little-endian u32, read a 4-byte LE ack that
//!   must equal `id` (else `bad ack: GOT (expected ID)`).
//! - Every inbound stream starts with its LE id; it is parked under that id.
//! - `Accept(id)`: wait up to 5 s for that id (else `timeout waiting for accept`), then
//!   write the id back as the ack.
//! - An inbound stream nobody accepts within 5 s is closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::error::BrokerError;
use crate::yamux::{Session, Stream};

/// How long `accept` waits, and how long an unclaimed inbound stream is kept (Go: 5 s).
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parked inbound stream or a waiting `accept`.
enum Slot {
    /// `accept(id)` is waiting for the stream; `token` identifies that waiter.
    Waiting(oneshot::Sender<Stream>, u64),
    /// The stream arrived first; `token` tells the expiry timer it is still this one.
    Parked(Stream, u64),
}

struct Inner {
    session: Session,
    next_id: AtomicU32,
    next_token: AtomicU64,
    slots: Mutex<HashMap<u32, Slot>>,
}

/// The mux broker of one go-plugin connection. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("next_id", &self.inner.next_id.load(Ordering::Relaxed))
            .finish()
    }
}

impl Broker {
    /// A broker over `session`. Inbound streams reach it only through [`Broker::handle_inbound`],
    /// which the connection's accept loop calls for every stream after control/stdout/stderr.
    pub fn new(session: Session) -> Broker {
        Broker {
            inner: Arc::new(Inner {
                session,
                next_id: AtomicU32::new(0),
                next_token: AtomicU64::new(0),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The session the broker opens streams on.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<u32, Slot>> {
        // Every critical section is a single map operation, so a poisoned map is consistent.
        self.inner.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocates the next id this side will `accept` (1, 2, 3, ...).
    pub fn next_id(&self) -> u32 {
        self.inner
            .next_id
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// Waits up to 5 s for the peer to dial `id`, then acknowledges it.
    pub async fn accept(&self, id: u32) -> Result<Stream, BrokerError> {
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let parked = {
            let mut slots = self.slots();
            match slots.remove(&id) {
                Some(Slot::Parked(stream, _)) => Ok(stream),
                // A second accept for the same id replaces the first, whose receiver then
                // fails at once instead of waiting out its timeout.
                Some(Slot::Waiting(..)) | None => {
                    let (tx, rx) = oneshot::channel();
                    slots.insert(id, Slot::Waiting(tx, token));
                    Err(rx)
                }
            }
        };
        let mut rx = match parked {
            Ok(stream) => return ack(stream, id).await,
            Err(rx) => rx,
        };
        let stream = tokio::select! {
            r = &mut rx => r.ok(),
            _ = tokio::time::sleep(ACCEPT_TIMEOUT) => {
                let mut slots = self.slots();
                // Only remove our own waiter; a replacement belongs to another accept.
                if matches!(slots.get(&id), Some(Slot::Waiting(_, t)) if *t == token) {
                    slots.remove(&id);
                }
                drop(slots);
                // The stream may have been handed over in the same instant the timer fired.
                rx.try_recv().ok()
            }
        };
        match stream {
            Some(s) => ack(s, id).await,
            None => Err(BrokerError::AcceptTimeout),
        }
    }

    /// Opens a stream to the peer's `accept(id)` and checks its ack.
    pub async fn dial(&self, id: u32) -> Result<Stream, BrokerError> {
        let mut stream = self.inner.session.open().await?;
        stream.write_all(&id.to_le_bytes()).await?;
        let mut ack = [0u8; 4];
        stream.read_exact(&mut ack).await?;
        let got = u32::from_le_bytes(ack);
        if got != id {
            return Err(BrokerError::BadAck { got, expected: id });
        }
        Ok(stream)
    }

    /// Reads the id an inbound stream starts with and parks or hands over the stream.
    /// Run per stream (spawned), so one slow peer stream never blocks the others.
    pub async fn handle_inbound(&self, mut stream: Stream) {
        let mut idb = [0u8; 4];
        // Go waits forever for the id; we bound it by the same 5 s so a silent stream
        // cannot pin a task for the life of the session.
        match tokio::time::timeout(ACCEPT_TIMEOUT, stream.read_exact(&mut idb)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let id = u32::from_le_bytes(idb);
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = self.slots();
            match slots.remove(&id) {
                Some(Slot::Waiting(tx, _)) => match tx.send(stream) {
                    Ok(()) => return,
                    // The acceptor gave up in the meantime: park it like an early arrival.
                    Err(s) => {
                        slots.insert(id, Slot::Parked(s, token));
                    }
                },
                Some(parked @ Slot::Parked(..)) => {
                    // Go keeps the first stream for an id; the newcomer is closed (dropped).
                    slots.insert(id, parked);
                    return;
                }
                None => {
                    slots.insert(id, Slot::Parked(stream, token));
                }
            }
        }
        tokio::time::sleep(ACCEPT_TIMEOUT).await;
        let expired = {
            let mut slots = self.slots();
            if matches!(slots.get(&id), Some(Slot::Parked(_, t)) if *t == token) {
                slots.remove(&id)
            } else {
                None
            }
        };
        // Dropping the stream closes it (FIN), as Go's timeoutWait does.
        drop(expired);
    }
}

async fn ack(mut stream: Stream, id: u32) -> Result<Stream, BrokerError> {
    stream.write_all(&id.to_le_bytes()).await?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yamux::Config;

    fn pair() -> (Broker, Broker) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = Session::server(a, Config::default());
        let client = Session::client(b, Config::default());
        let sb = Broker::new(server.clone());
        let cb = Broker::new(client.clone());
        for (sess, br) in [(server, sb.clone()), (client, cb.clone())] {
            tokio::spawn(async move {
                while let Some(s) = sess.accept().await {
                    let br = br.clone();
                    tokio::spawn(async move { br.handle_inbound(s).await });
                }
            });
        }
        (sb, cb)
    }

    #[test]
    fn next_id_starts_at_one_and_increments() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, _b) = pair();
            assert_eq!([a.next_id(), a.next_id(), a.next_id()], [1, 2, 3]);
        });
    }

    #[tokio::test]
    async fn dial_writes_le_id_and_accept_acks_it() {
        let (a, b) = pair();
        let id = a.next_id();
        let (acc, dialed) = tokio::join!(a.accept(id), b.dial(id));
        let (mut acc, mut dialed) = (acc.unwrap(), dialed.unwrap());
        dialed.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        acc.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    }

    /// Reads exactly `N` bytes from `stream`, failing the test with `what` if they do not
    /// come within 5 s (a stream that lost its data would otherwise hang the test).
    async fn read_n<const N: usize>(stream: &mut Stream, what: &str) -> [u8; N] {
        let mut buf = [0u8; N];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{what}: nothing arrived within 5 s"))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        buf
    }

    #[tokio::test]
    async fn stream_arriving_before_accept_is_parked() {
        let (a, b) = pair();
        let id: u32 = 0x0102_0304;
        // The dialer's side by hand: the id as Dial writes it, and data right behind it in
        // the same frame, which waits in the parked stream until someone accepts.
        let mut dialed = b.session().open().await.unwrap();
        let early = [&id.to_le_bytes()[..], b"sent while parked"].concat();
        dialed.write_all(&early).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            matches!(a.slots().get(&id), Some(Slot::Parked(..))),
            "the stream is not parked under its id"
        );
        let mut accepted = a.accept(id).await.unwrap();
        assert_eq!(
            &read_n(&mut accepted, "the data sent while parked").await,
            b"sent while parked"
        );
        accepted.write_all(b"answer").await.unwrap();
        assert_eq!(read_n(&mut dialed, "the ack").await, id.to_le_bytes());
        assert_eq!(
            &read_n(&mut dialed, "the acceptor's answer").await,
            b"answer"
        );
        dialed.write_all(b"more").await.unwrap();
        assert_eq!(
            &read_n(&mut accepted, "data sent after the accept").await,
            b"more"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn accept_times_out_with_go_text() {
        let (a, _b) = pair();
        let err = a.accept(7).await.unwrap_err();
        assert_eq!(err.to_string(), "timeout waiting for accept");
    }

    #[tokio::test]
    async fn bad_ack_is_reported_with_go_text() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = Session::server(a, Config::default());
        let client = Session::client(b, Config::default());
        tokio::spawn(async move {
            let mut s = server.accept().await.unwrap();
            let mut id = [0u8; 4];
            s.read_exact(&mut id).await.unwrap();
            assert_eq!(id, 5u32.to_le_bytes(), "the id goes out little-endian");
            s.write_all(&6u32.to_le_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let err = Broker::new(client).dial(5).await.unwrap_err();
        assert_eq!(err.to_string(), "bad ack: 6 (expected 5)");
    }
}
