//! Connections over in-memory duplexes, on tokio's current-thread runtime (the bridge's),
//! with the clock paused where time matters: calls in flight, cancellation, answers that
//! match nothing, limits, broken peers, closing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::future::join_all;
use mmplug_lane::{
    CloseReason, Code, Event, Frame, HeaderError, Kind, Limits, Options, ProtocolError, Status,
    accept, connect,
};
use tokio::sync::oneshot;

fn echo(_method: &str, message: Bytes) -> std::future::Ready<Result<Bytes, Status>> {
    std::future::ready(Ok(message))
}

/// A handler that never answers and reports when its future is dropped.
fn never_answers(
    dropped: Arc<Mutex<Vec<oneshot::Receiver<()>>>>,
) -> impl Fn(&str, Bytes) -> futures::future::BoxFuture<'static, Result<Bytes, Status>>
+ Send
+ Sync
+ 'static {
    move |_method: &str, _message: Bytes| {
        let (notice, heard) = oneshot::channel();
        dropped.lock().unwrap().push(heard);
        let guard = DropNotice(Some(notice));
        Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Bytes::new())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn many_calls_in_flight_are_answered_out_of_order() {
    // Call i sleeps 100 - i ms, so they finish in reverse order of sending.
    let finished = Arc::new(Mutex::new(Vec::new()));
    let order = Arc::clone(&finished);
    let hooks = move |_method: &str, message: Bytes| {
        let order = Arc::clone(&order);
        async move {
            let i = u64::from(message[0]);
            tokio::time::sleep(Duration::from_millis(100 - i)).await;
            order.lock().unwrap().push(i);
            Ok(message)
        }
    };
    let (bridge, _python) = pair(Options::new(), Options::new().handler(hooks)).await;
    let calls = (0..64u8).map(|i| {
        let conn = bridge.connection.clone();
        async move {
            let answer = conn
                .call(ON_ACTIVATE, Bytes::from(vec![i, 0xAA]), None)
                .await;
            (i, answer)
        }
    });
    for (i, answer) in join_all(calls).await {
        assert_eq!(answer.expect("answered"), Bytes::from(vec![i, 0xAA]));
    }
    let finished = finished.lock().unwrap().clone();
    assert_eq!(finished, (0..64).rev().collect::<Vec<u64>>());
    assert_eq!(bridge.connection.stats().pending_calls, 0);
}

#[tokio::test]
async fn both_ends_call_on_one_connection() {
    let api = |method: &str, message: Bytes| {
        let answer = format!("api {method} {}", message.len());
        async move { Ok(Bytes::from(answer)) }
    };
    let hooks = |method: &str, _message: Bytes| {
        let answer = format!("hook {method}");
        async move { Ok(Bytes::from(answer)) }
    };
    let (bridge, python) = pair(Options::new().handler(api), Options::new().handler(hooks)).await;
    let (hook, api_call) = tokio::join!(
        bridge.connection.call("/h/Hook", Bytes::new(), None),
        python
            .connection
            .call("/a/GetUser", Bytes::from_static(b"xyz"), None),
    );
    assert_eq!(hook.unwrap(), "hook /h/Hook");
    assert_eq!(api_call.unwrap(), "api /a/GetUser 3");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_call_cancels_the_handler() {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let (bridge, python) = pair(
        Options::new(),
        Options::new().handler(never_answers(Arc::clone(&dropped))),
    )
    .await;
    let outcome = bridge
        .connection
        .call(ON_ACTIVATE, Bytes::new(), Some(Duration::from_secs(2)))
        .await;
    let status = outcome.unwrap_err();
    assert_eq!(status.code(), Code::DEADLINE_EXCEEDED);
    assert!(status.message().contains(ON_ACTIVATE), "{status}");
    assert_eq!(
        bridge.connection.stats().pending_calls,
        0,
        "the id is forgotten"
    );
    let heard = dropped.lock().unwrap().pop().expect("the handler ran");
    heard
        .await
        .expect("the handler's future was dropped by the CANCEL");
    assert_eq!(python.connection.stats().running_handlers, 0);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_future_cancels_the_handler() {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let (bridge, python) = pair(
        Options::new(),
        Options::new().handler(never_answers(Arc::clone(&dropped))),
    )
    .await;
    // The caller gives up on its own, without telling the call.
    let gave_up = tokio::time::timeout(
        Duration::from_secs(1),
        bridge.connection.call(ON_ACTIVATE, Bytes::new(), None),
    )
    .await;
    assert!(gave_up.is_err());
    let heard = dropped.lock().unwrap().pop().expect("the handler ran");
    heard.await.expect("the handler's future was dropped");
    assert_eq!(bridge.connection.stats().pending_calls, 0);
    assert_eq!(python.connection.stats().running_handlers, 0);
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_is_dropped_and_never_reaches_another_call() {
    let events = Events::default();
    let (bridge, mut raw) =
        RawPeer::connect(Options::new().observer(events.observer()), 1 << 16).await;
    let late = bridge
        .connection
        .call(ON_ACTIVATE, Bytes::new(), Some(Duration::from_secs(1)));
    let (outcome, first) = tokio::join!(late, raw.frame());
    assert_eq!(outcome.unwrap_err().code(), Code::DEADLINE_EXCEEDED);
    let first_id = first.call_id();
    assert_eq!(raw.frame().await, Frame::Cancel { call_id: first_id });

    // The answer comes anyway, after the CANCEL; then a second call is made.
    raw.send(&Frame::Response {
        call_id: first_id,
        message: Bytes::from_static(b"late"),
    })
    .await;
    let second = bridge.connection.call(ON_ACTIVATE, Bytes::new(), None);
    let serve = async {
        let request = raw.frame().await;
        assert_ne!(request.call_id(), first_id);
        raw.send(&Frame::Response {
            call_id: request.call_id(),
            message: Bytes::from_static(b"second"),
        })
        .await;
    };
    let (answer, ()) = tokio::join!(second, serve);
    assert_eq!(answer.unwrap(), "second");
    assert_eq!(
        events.take(),
        vec![Event::UnmatchedAnswer {
            kind: Kind::Response,
            call_id: first_id
        }]
    );
}

#[tokio::test]
async fn answers_to_unknown_ids_are_dropped() {
    let events = Events::default();
    let (bridge, mut raw) =
        RawPeer::connect(Options::new().observer(events.observer()), 1 << 16).await;
    raw.send(&Frame::Response {
        call_id: 999,
        message: Bytes::from_static(b"?"),
    })
    .await;
    raw.send(&Frame::Error {
        call_id: 998,
        code: 13,
        message: Bytes::from_static(b"?"),
    })
    .await;
    // A CANCEL for a request the bridge is not serving is no event: it crossed the answer.
    raw.send(&Frame::Cancel { call_id: 997 }).await;
    let call = bridge.connection.call(ON_ACTIVATE, Bytes::new(), None);
    let serve = async {
        let request = raw.frame().await;
        raw.send(&Frame::Response {
            call_id: request.call_id(),
            message: Bytes::from_static(b"ok"),
        })
        .await;
    };
    let (answer, ()) = tokio::join!(call, serve);
    assert_eq!(answer.unwrap(), "ok");
    assert_eq!(
        events.take(),
        vec![
            Event::UnmatchedAnswer {
                kind: Kind::Response,
                call_id: 999
            },
            Event::UnmatchedAnswer {
                kind: Kind::Error,
                call_id: 998
            },
        ]
    );
    assert!(bridge.connection.close_reason().is_none());
}

#[tokio::test]
async fn a_handler_error_travels_as_its_status() {
    let hooks =
        |_m: &str, _b: Bytes| async { Err(Status::new(Code::NOT_FOUND, "no such post é")) };
    let (bridge, _python) = pair(Options::new(), Options::new().handler(hooks)).await;
    let status = bridge
        .connection
        .call(ON_ACTIVATE, Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(status, Status::new(Code::NOT_FOUND, "no such post é"));
}

#[tokio::test]
async fn requests_to_an_end_without_a_handler_are_unimplemented() {
    let events = Events::default();
    let (bridge, _python) = pair(Options::new(), Options::new().observer(events.observer())).await;
    let status = bridge
        .connection
        .call(ON_ACTIVATE, Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::UNIMPLEMENTED);
    assert!(status.message().contains(ON_ACTIVATE), "{status}");
    assert!(matches!(
        &events.take()[..],
        [Event::Refused { call_id: 1, .. }]
    ));
}

#[tokio::test]
async fn a_method_path_that_is_not_utf8_is_unimplemented() {
    let events = Events::default();
    let options = Options::new().handler(echo).observer(events.observer());
    let (_bridge, mut raw) = RawPeer::connect(options, 1 << 16).await;
    raw.send(&Frame::Request {
        call_id: 5,
        method: Bytes::from_static(b"/x/\xff"),
        message: Bytes::new(),
    })
    .await;
    match raw.frame().await {
        Frame::Error { call_id, code, .. } => assert_eq!((call_id, code), (5, 12)),
        other => panic!("expected ERROR 12, got {other:?}"),
    }
    assert!(matches!(
        &events.take()[..],
        [Event::Refused { call_id: 5, .. }]
    ));
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_connection_goes_on() {
    let hooks = |method: &str, message: Bytes| {
        let panics = method == "/p/Panic";
        async move {
            if panics {
                panic!("a handler bug");
            }
            Ok(message)
        }
    };
    let (bridge, _python) = pair(Options::new(), Options::new().handler(hooks)).await;
    let status = bridge
        .connection
        .call("/p/Panic", Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::INTERNAL);
    let answer = bridge
        .connection
        .call("/p/Fine", Bytes::from_static(b"x"), None)
        .await;
    assert_eq!(answer.unwrap(), "x");
}

#[tokio::test]
async fn an_over_limit_request_is_answered_resource_exhausted() {
    let events = Events::default();
    let limits = Limits {
        max_body: 1024,
        ..Limits::default()
    };
    let options = Options::new()
        .handler(echo)
        .limits(limits)
        .observer(events.observer());
    let (bridge, mut raw) = RawPeer::connect(options, 1 << 16).await;
    let big = Frame::Request {
        call_id: 3,
        method: Bytes::from_static(b"/x/Big"),
        message: Bytes::from(vec![7u8; 5000]),
    };
    raw.send(&big).await;
    raw.send(&Frame::Request {
        call_id: 4,
        method: Bytes::from_static(b"/x/Small"),
        message: Bytes::from_static(b"small"),
    })
    .await;
    match raw.frame().await {
        Frame::Error {
            call_id,
            code,
            message,
        } => {
            assert_eq!((call_id, code), (3, 8));
            let text = String::from_utf8_lossy(&message);
            assert!(
                text.contains("5006 bytes") && text.contains("1024"),
                "{text}"
            );
        }
        other => panic!("expected ERROR 8, got {other:?}"),
    }
    assert_eq!(
        raw.frame().await,
        Frame::Response {
            call_id: 4,
            message: Bytes::from_static(b"small")
        }
    );
    let events = events.take();
    assert_eq!(
        events[0],
        Event::OverLimit {
            kind: Kind::Request,
            call_id: 3,
            length: 5006,
            limit: 1024
        }
    );
    assert!(matches!(events[1], Event::Refused { call_id: 3, .. }));
    assert!(bridge.connection.close_reason().is_none());
}

#[tokio::test]
async fn an_over_limit_answer_fails_only_its_call() {
    let limits = Limits {
        max_body: 1024,
        ..Limits::default()
    };
    let (bridge, mut raw) = RawPeer::connect(Options::new().limits(limits), 1 << 16).await;
    let serve = async {
        let first = raw.frame().await;
        let second = raw.frame().await;
        raw.send(&Frame::Response {
            call_id: first.call_id(),
            message: Bytes::from(vec![1u8; 4096]),
        })
        .await;
        raw.send(&Frame::Response {
            call_id: second.call_id(),
            message: Bytes::from_static(b"fits"),
        })
        .await;
    };
    let (first, second, ()) = tokio::join!(
        bridge.connection.call("/x/First", Bytes::new(), None),
        bridge.connection.call("/x/Second", Bytes::new(), None),
        serve
    );
    let status = first.unwrap_err();
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
    assert!(status.message().contains("4096 bytes"), "{status}");
    assert_eq!(second.unwrap(), "fits");
}

#[tokio::test]
async fn what_is_over_the_limit_is_not_sent() {
    let limits = Limits {
        max_body: 100,
        ..Limits::default()
    };
    let big_answer = |_m: &str, _b: Bytes| async { Ok(Bytes::from(vec![0u8; 200])) };
    let (bridge, python) = pair(
        Options::new().limits(limits),
        Options::new().limits(limits).handler(big_answer),
    )
    .await;
    // A request over the limit fails here, before it is numbered or sent.
    let status = python
        .connection
        .call("/x/Y", Bytes::from(vec![0u8; 200]), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
    let long_method = "m".repeat(70_000);
    let status = python
        .connection
        .call(&long_method, Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::INVALID_ARGUMENT);
    // A handler's answer over the limit is replaced by ERROR 8.
    let status = bridge
        .connection
        .call("/x/Y", Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
    assert!(status.message().contains("200 bytes"), "{status}");
}

/// Every rule a peer can break after the handshake, as the bytes that break it.
fn violations() -> Vec<(&'static str, Vec<u8>, ProtocolError)> {
    let hello = {
        let mut b = raw_header(2, 1, 0, 0, 0).to_vec();
        b.extend_from_slice(&[1, 0]);
        b
    };
    let request = |id: u64| {
        let mut b = raw_header(3, 2, 0, 3, id).to_vec();
        b.extend_from_slice(b"/x/");
        b
    };
    vec![
        (
            "unknown kind",
            raw_header(0, 9, 0, 0, 1).to_vec(),
            ProtocolError::Header(HeaderError::UnknownKind { kind: 9 }),
        ),
        (
            "flags",
            raw_header(0, 3, 0x10, 0, 1).to_vec(),
            ProtocolError::Header(HeaderError::UnknownFlags {
                kind: Kind::Response,
                call_id: 1,
                flags: 0x10,
            }),
        ),
        (
            "method past the body",
            raw_header(2, 2, 0, 3, 1).to_vec(),
            ProtocolError::Header(HeaderError::MethodPastBody {
                call_id: 1,
                method_length: 3,
                length: 2,
            }),
        ),
        (
            "cancel with a body",
            raw_header(1, 5, 0, 0, 1).to_vec(),
            ProtocolError::Header(HeaderError::CancelWithBody {
                call_id: 1,
                length: 1,
            }),
        ),
        ("second hello", hello, ProtocolError::SecondHello),
        (
            "request id in use",
            [request(7), request(7)].concat(),
            ProtocolError::RequestIdInUse { call_id: 7 },
        ),
    ]
}

#[tokio::test]
async fn a_broken_rule_closes_the_connection_and_fails_pending_calls() {
    for (name, bytes, rule) in violations() {
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let options = Options::new().handler(never_answers(dropped));
        let (bridge, mut raw) = RawPeer::connect(options, 1 << 16).await;
        let call = bridge.connection.call(ON_ACTIVATE, Bytes::new(), None);
        let break_it = async {
            raw.frame().await; // the call's REQUEST
            raw.send_raw(&bytes).await;
            // The bridge closes the stream: nothing more arrives.
            assert_eq!(raw.next().await, None, "{name}");
        };
        let (outcome, ()) = tokio::join!(call, break_it);
        let status = outcome.unwrap_err();
        assert_eq!(status.code(), Code::UNAVAILABLE, "{name}");
        assert!(
            status.message().contains(&rule.to_string()),
            "{name}: {status}"
        );
        match bridge.connection.closed().await {
            CloseReason::Violation(got) => assert_eq!(got, rule, "{name}"),
            other => panic!("{name}: closed for {other}"),
        }
        assert_eq!(bridge.connection.stats().running_handlers, 0, "{name}");
        let after = bridge
            .connection
            .call(ON_ACTIVATE, Bytes::new(), None)
            .await;
        assert_eq!(after.unwrap_err().code(), Code::UNAVAILABLE, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_fills_only_the_bounded_queue() {
    const MESSAGE: usize = 10 << 10;
    let limits = Limits {
        max_queued: 64 << 10,
        ..Limits::default()
    };
    // A 4 KiB pipe the raw peer does not read from.
    let (bridge, mut raw) = RawPeer::connect(Options::new().limits(limits), 4 << 10).await;
    let conn = &bridge.connection;
    let frame_size = 16 + "/x/Y".len() + MESSAGE;
    let fit = (64 << 10) / frame_size;
    let queued: Vec<_> = (0..fit)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move {
                conn.call("/x/Y", Bytes::from(vec![0u8; MESSAGE]), None)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(conn.stats().queued_bytes, fit * frame_size);

    // One more would pass the limit: refused at once, the others untouched.
    let status = conn
        .call("/x/Y", Bytes::from(vec![0u8; MESSAGE]), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
    assert!(status.message().contains("not reading"), "{status}");
    // A small call that fits still goes; a withdrawal (CANCEL) always does.
    let small = conn
        .call("/x/Small", Bytes::new(), Some(Duration::from_secs(1)))
        .await;
    assert_eq!(small.unwrap_err().code(), Code::DEADLINE_EXCEEDED);
    assert_eq!(conn.stats().pending_calls, fit);

    // The peer reads again: everything queued arrives, in order, and is answered.
    let mut ids = Vec::new();
    while ids.len() < fit {
        if let Frame::Request { call_id, .. } = raw.frame().await {
            ids.push(call_id);
        }
    }
    for call_id in ids {
        raw.send(&Frame::Response {
            call_id,
            message: Bytes::from_static(b"done"),
        })
        .await;
    }
    for call in queued {
        assert_eq!(call.await.unwrap().unwrap(), "done");
    }
    assert_eq!(conn.stats().queued_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn closing_the_connection_fails_pending_calls_with_unavailable() {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let (bridge, python) = pair(
        Options::new().handler(never_answers(Arc::clone(&dropped))),
        Options::new().handler(never_answers(Arc::clone(&dropped))),
    )
    .await;
    // Calls both ways, then Python goes away.
    let bridge_calls = join_all((0..3).map(|_| bridge.connection.call("/h/H", Bytes::new(), None)));
    let python_calls = join_all((0..2).map(|_| python.connection.call("/a/A", Bytes::new(), None)));
    let close = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(bridge.connection.stats().pending_calls, 3);
        assert_eq!(bridge.connection.stats().running_handlers, 2);
        python.connection.close();
    };
    let (bridge_outcomes, python_outcomes, ()) = tokio::join!(bridge_calls, python_calls, close);
    for outcome in bridge_outcomes.into_iter().chain(python_outcomes) {
        assert_eq!(outcome.unwrap_err().code(), Code::UNAVAILABLE);
    }
    assert!(matches!(
        bridge.connection.closed().await,
        CloseReason::PeerClosed
    ));
    assert!(matches!(
        python.connection.closed().await,
        CloseReason::Local
    ));
    // Every handler on both sides was dropped with the connection.
    let heard: Vec<_> = std::mem::take(&mut *dropped.lock().unwrap());
    assert_eq!(heard.len(), 5);
    for h in heard {
        h.await.expect("handler dropped");
    }
    let after = bridge.connection.call("/h/H", Bytes::new(), None).await;
    assert_eq!(after.unwrap_err().code(), Code::UNAVAILABLE);
}

#[tokio::test]
async fn a_peer_closing_inside_a_frame_is_reported_as_truncated() {
    let (bridge, mut raw) = RawPeer::connect(Options::new(), 1 << 16).await;
    raw.send_raw(&raw_header(10, 3, 0, 0, 1)).await;
    raw.send_raw(b"abc").await;
    drop(raw);
    assert!(matches!(
        bridge.connection.closed().await,
        CloseReason::Truncated
    ));
}

#[tokio::test]
async fn dropping_every_handle_closes_the_stream() {
    let (bridge, mut raw) = RawPeer::connect(Options::new(), 1 << 16).await;
    let clone = bridge.connection.clone();
    drop(bridge);
    tokio::task::yield_now().await;
    assert!(clone.close_reason().is_none(), "a clone keeps it open");
    drop(clone);
    assert_eq!(raw.next().await, None);
}

#[tokio::test]
async fn the_writer_coalesces_queued_frames_into_one_write() {
    let writes = Arc::new(AtomicUsize::new(0));
    let (bridge_end, python_end) = tokio::io::duplex(1 << 20);
    let counted = CountingStream {
        inner: bridge_end,
        writes: Arc::clone(&writes),
    };
    let python = tokio::spawn(connect(python_end, TOKEN, Options::new().handler(echo)));
    let bridge = accept(counted, TOKEN, Options::new()).await.unwrap();
    let _python = python.await.unwrap().unwrap();
    let before = writes.load(Ordering::SeqCst);
    // All 50 are queued in one poll of join_all, before the writer runs.
    let answers = join_all((0..50u8).map(|i| {
        bridge
            .connection
            .call(ON_ACTIVATE, Bytes::from(vec![i; 100]), None)
    }))
    .await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), Bytes::from(vec![i as u8; 100]));
    }
    assert_eq!(writes.load(Ordering::SeqCst) - before, 1);
}

#[tokio::test]
async fn large_messages_arrive_whole() {
    let (bridge, _python) = pair_with(8 << 10, Options::new(), Options::new().handler(echo)).await;
    let message: Bytes = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let small = Bytes::from_static(b"small");
    let (big, little) = tokio::join!(
        bridge.connection.call(ON_ACTIVATE, message.clone(), None),
        bridge.connection.call(ON_ACTIVATE, small.clone(), None),
    );
    assert_eq!(big.unwrap(), message);
    assert_eq!(little.unwrap(), small);
}

#[tokio::test]
async fn calls_on_a_closed_connection_fail_at_once() {
    let (bridge, _raw) = RawPeer::connect(Options::new(), 1 << 16).await;
    bridge.connection.close();
    let status = bridge
        .connection
        .call(ON_ACTIVATE, Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::UNAVAILABLE);
    assert!(status.message().contains("closed by this end"), "{status}");
}

#[tokio::test]
async fn requests_right_behind_the_hello_are_served() {
    use bytes::BytesMut;
    use mmplug_lane::frame::{Hello, VERSION};
    let (bridge_end, python_end) = tokio::io::duplex(1 << 16);
    let mut raw = RawPeer::over(python_end);
    // HELLO and a REQUEST in one write, before any answer.
    let mut out = BytesMut::new();
    Frame::Hello(Hello {
        version: VERSION,
        roles: mmplug_lane::Roles::NONE,
        token: Bytes::from_static(TOKEN),
    })
    .encode(&mut out)
    .unwrap();
    Frame::Request {
        call_id: 1,
        method: Bytes::from_static(b"/a/A"),
        message: Bytes::from_static(b"early"),
    }
    .encode(&mut out)
    .unwrap();
    raw.send_raw(&out).await;
    let _bridge = accept(bridge_end, TOKEN, Options::new().handler(echo))
        .await
        .unwrap();
    assert!(matches!(raw.frame().await, Frame::Hello(_)));
    assert_eq!(
        raw.frame().await,
        Frame::Response {
            call_id: 1,
            message: Bytes::from_static(b"early")
        }
    );
}

#[tokio::test]
async fn a_handler_holding_its_own_connection_is_released_when_it_closes() {
    let alive = Arc::new(());
    let watch = Arc::downgrade(&alive);
    let own = Arc::new(std::sync::OnceLock::<mmplug_lane::Connection>::new());
    let held = Arc::clone(&own);
    let hooks = move |_m: &str, message: Bytes| {
        let _ = (&alive, &held);
        std::future::ready(Ok(message))
    };
    let (bridge, python) = pair(Options::new(), Options::new().handler(hooks)).await;
    own.set(python.connection.clone()).unwrap();
    drop((own, python));
    // Only its own handler holds Python's end now, and it keeps serving.
    let answer = bridge
        .connection
        .call("/h/H", Bytes::from_static(b"x"), None)
        .await;
    assert_eq!(answer.unwrap(), "x");
    bridge.connection.close();
    let released = async {
        while watch.upgrade().is_some() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released)
        .await
        .expect("the handler was dropped with its closed connection");
}
