//! Time limits for many calls on one timer ([`Deadlines`]).
//!
//! `tokio::time::timeout` per hook call arms a timer in tokio's wheel; one whose deadline
//! comes before every other the runtime waits for (as a hook's limit does on an otherwise idle
//! bridge) makes the timer driver wake the runtime's own thread through its eventfd so it can
//! wait less: a `write` and an extra `epoll_wait` per call, seen in `strace` of every hook.
//! Here one sweeper task holds a single timer, set to the earliest deadline it knows of.
//! A call whose deadline is later than that (the next call with the same limit always is)
//! only enters a map; the sweeper wakes when the armed deadline passes, fails what has
//! expired and re-arms for the earliest that is left, if any.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// A call's time limit passed before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Time limits of calls in flight, on one timer (module doc). Cheap to clone; every clone is
/// the same set.
#[derive(Debug, Clone, Default)]
pub struct Deadlines {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the sweeper: a deadline earlier than the armed one arrived, or `Shared` is gone.
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    /// Calls in flight by deadline (and a number telling equal deadlines apart); each sender
    /// fails its call.
    calls: BTreeMap<(Instant, u64), oneshot::Sender<()>>,
    next_number: u64,
    /// The deadline the sweeper's timer is set to, if any.
    armed: Option<Instant>,
    sweeper_started: bool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The sweeper holds only a weak reference: it wakes, finds nothing, and ends.
        self.wake.notify_one();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent: a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Deadlines {
    /// An empty set; its sweeper task starts with the first call (inside a tokio runtime).
    pub fn new() -> Deadlines {
        Deadlines::default()
    }

    /// Runs `call` for at most `limit`: its output, or [`Elapsed`] once the limit has passed
    /// (`call` is then polled no more, and the caller drops it unfinished, as
    /// `tokio::time::timeout` would). Must be awaited inside a tokio runtime.
    pub async fn within<T>(
        &self,
        limit: Duration,
        mut call: Pin<&mut (dyn Future<Output = T> + Send + '_)>,
    ) -> Result<T, Elapsed> {
        let Some(deadline) = Instant::now().checked_add(limit) else {
            // Past any instant the clock can reach: no limit at all.
            return Ok(call.await);
        };
        let (fail, mut expired) = oneshot::channel();
        let entry = self.enter(deadline, fail);
        // Polled by hand rather than with `select!`, and through `dyn Future` rather than
        // generically: each made the bridge's code, and so its resident memory, measurably
        // larger (rss_idle_bridge: nearly all of the code is resident).
        let outcome = std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = call.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            // Sent by the sweeper when the deadline passes; the sender is only ever dropped
            // unsent by `entry` below, after this is over.
            Pin::new(&mut expired).poll(cx).map(|_| Err(Elapsed))
        })
        .await;
        drop(entry);
        outcome
    }

    fn enter(&self, deadline: Instant, fail: oneshot::Sender<()>) -> Entry<'_> {
        let mut state = self.shared.state();
        let number = state.next_number;
        state.next_number = number.wrapping_add(1);
        state.calls.insert((deadline, number), fail);
        if !state.sweeper_started {
            state.sweeper_started = true;
            tokio::spawn(sweep(
                Arc::downgrade(&self.shared),
                Arc::clone(&self.shared.wake),
            ));
        }
        if state.armed.is_none_or(|armed| deadline < armed) {
            state.armed = Some(deadline);
            self.shared.wake.notify_one();
        }
        Entry {
            shared: &self.shared,
            key: (deadline, number),
        }
    }

    /// Calls whose limit is running (tests).
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.shared.state().calls.len()
    }
}

/// A call's place in [`State::calls`], removed when the call ends however it ends.
struct Entry<'a> {
    shared: &'a Shared,
    key: (Instant, u64),
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        // The armed deadline stays: the sweeper re-arms from what is left when it fires,
        // which costs one wake-up per limit instead of a timer change per call.
        self.shared.state().calls.remove(&self.key);
    }
}

/// Fails calls whose deadline has passed; sleeps until the earliest armed deadline.
async fn sweep(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let armed = match shared.upgrade() {
            Some(shared) => shared.state().armed,
            None => return,
        };
        match armed {
            None => wake.notified().await,
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    // An earlier deadline (or the end): look again.
                    () = wake.notified() => continue,
                }
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let now = Instant::now();
                let mut state = shared.state();
                while let Some(entry) = state.calls.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    // A call that went away as its deadline passed: nothing to fail.
                    let _ = entry.remove().send(());
                }
                state.armed = state.calls.first_key_value().map(|((at, _), _)| *at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_call_that_finishes_in_time_gives_its_output() {
        let deadlines = Deadlines::new();
        let out = deadlines
            .within(
                SECOND,
                pin!(async {
                    tokio::time::sleep(SECOND / 2).await;
                    7
                }),
            )
            .await;
        assert_eq!(out, Ok(7));
        assert_eq!(deadlines.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_limit_fails_at_the_limit() {
        let deadlines = Deadlines::new();
        let started = Instant::now();
        let out = deadlines
            .within(SECOND, pin!(std::future::pending::<()>()))
            .await;
        assert_eq!(out, Err(Elapsed));
        assert_eq!(started.elapsed(), SECOND);
        assert_eq!(deadlines.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_limit_after_a_longer_one_still_fires_on_time() {
        let deadlines = Deadlines::new();
        let long = tokio::spawn({
            let deadlines = deadlines.clone();
            async move {
                let started = Instant::now();
                let out = deadlines
                    .within(10 * SECOND, pin!(std::future::pending::<()>()))
                    .await;
                (out, started.elapsed())
            }
        });
        tokio::task::yield_now().await;
        let started = Instant::now();
        let short = deadlines
            .within(SECOND, pin!(std::future::pending::<()>()))
            .await;
        assert_eq!((short, started.elapsed()), (Err(Elapsed), SECOND));
        let (out, took) = long.await.unwrap();
        assert_eq!(out, Err(Elapsed));
        assert!(
            took >= 10 * SECOND && took < 10 * SECOND + SECOND / 10,
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_one_after_another_each_get_their_whole_limit() {
        // The timer stays armed at the first call's deadline while later calls run; each
        // later call must still get its full limit, measured from its own start.
        let deadlines = Deadlines::new();
        for _ in 0..3 {
            let out = deadlines
                .within(SECOND, pin!(tokio::time::sleep(SECOND * 3 / 4)))
                .await;
            assert_eq!(out, Ok(()));
        }
        let started = Instant::now();
        let out = deadlines
            .within(SECOND, pin!(std::future::pending::<()>()))
            .await;
        assert_eq!((out, started.elapsed()), (Err(Elapsed), SECOND));
    }

    #[tokio::test(start_paused = true)]
    async fn many_calls_in_flight_expire_each_at_its_own_deadline() {
        let deadlines = Deadlines::new();
        let mut calls = tokio::task::JoinSet::new();
        for i in 1..=5u32 {
            let deadlines = deadlines.clone();
            calls.spawn(async move {
                let started = Instant::now();
                let limit = SECOND * i;
                // Odd ones finish just in time, even ones never.
                let out = if i % 2 == 1 {
                    deadlines
                        .within(limit, pin!(tokio::time::sleep(limit - SECOND / 10)))
                        .await
                } else {
                    deadlines.within(limit, pin!(std::future::pending())).await
                };
                (i, out, started.elapsed())
            });
        }
        let mut seen = Vec::new();
        while let Some(done) = calls.join_next().await {
            seen.push(done.unwrap());
        }
        seen.sort_by_key(|(i, _, _)| *i);
        for (i, out, took) in seen {
            if i % 2 == 1 {
                assert_eq!(out, Ok(()), "call {i}");
                assert_eq!(took, SECOND * i - SECOND / 10, "call {i}");
            } else {
                assert_eq!((out, took), (Err(Elapsed), SECOND * i), "call {i}");
            }
        }
        assert_eq!(deadlines.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_ends_with_the_last_handle() {
        let deadlines = Deadlines::new();
        deadlines
            .within(SECOND, pin!(std::future::ready(())))
            .await
            .unwrap();
        let weak = Arc::downgrade(&deadlines.shared);
        drop(deadlines);
        assert!(weak.upgrade().is_none());
        // The sweeper task is woken, finds the set gone and returns: nothing is left running.
        tokio::time::sleep(2 * SECOND).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 0);
    }
}
