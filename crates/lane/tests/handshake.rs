//! The HELLO exchange: the right token and roles are accepted; anything else is refused with
//! its reason, and the stream is closed.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use mmplug_lane::frame::Hello;
use mmplug_lane::{
    Frame, HandshakeError, HeaderError, Kind, MAX_HELLO, Options, Roles, accept, connect,
};

async fn accept_raw(bytes: &[u8]) -> (Result<(), HandshakeError>, RawPeer) {
    let (bridge_end, python_end) = tokio::io::duplex(1 << 16);
    let mut raw = RawPeer::over(python_end);
    raw.send_raw(bytes).await;
    let outcome = accept(bridge_end, TOKEN, Options::new()).await.map(|_| ());
    (outcome, raw)
}

fn hello(version: u8, roles: u8, token: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Frame::Hello(Hello {
        version,
        roles: Roles::from_bits(roles),
        token: Bytes::copy_from_slice(token),
    })
    .encode(&mut out)
    .unwrap();
    out.to_vec()
}

#[tokio::test]
async fn the_right_token_is_accepted_and_roles_are_exchanged() {
    let (bridge, python) = pair(Options::new(), Options::new().roles(Roles::SERVES_HOOKS)).await;
    assert!(bridge.peer_roles.serves_hooks());
    assert_eq!(bridge.connection.peer_roles(), Roles::SERVES_HOOKS);
    assert_eq!(python.peer_roles, Roles::NONE);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_stream_closed() {
    let (bridge_end, python_end) = tokio::io::duplex(1 << 16);
    let python = tokio::spawn(connect(python_end, b"not-the-token", Options::new()));
    let err = accept(bridge_end, TOKEN, Options::new()).await.unwrap_err();
    assert!(
        matches!(err, HandshakeError::WrongToken { length: 13 }),
        "{err}"
    );
    let shown = err.to_string();
    assert!(
        !shown.contains("not-the-token") && !shown.contains("4f1c"),
        "{shown}"
    );
    let refused = python.await.unwrap().unwrap_err();
    assert!(matches!(refused, HandshakeError::Refused), "{refused}");
}

#[tokio::test]
async fn a_token_that_differs_only_in_length_or_is_empty_is_refused() {
    for token in [&TOKEN[..63], TOKEN.repeat(2).as_slice(), b""] {
        let (outcome, _) = accept_raw(&hello(1, 0, token)).await;
        assert!(
            matches!(outcome, Err(HandshakeError::WrongToken { .. })),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_first_frame_other_than_hello_is_refused() {
    let mut request = BytesMut::new();
    Frame::Request {
        call_id: 1,
        method: Bytes::from_static(b"/a/A"),
        message: Bytes::new(),
    }
    .encode(&mut request)
    .unwrap();
    let (outcome, mut raw) = accept_raw(&request).await;
    let err = outcome.unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::NotHello {
                kind: Kind::Request,
                call_id: 1
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the first frame is a REQUEST (call id 1), not a HELLO"
    );
    assert_eq!(raw.next().await, None, "closed without an answer");
}

#[tokio::test]
async fn a_first_header_that_breaks_a_rule_is_refused() {
    let (outcome, _) = accept_raw(&raw_header(2, 1, 0x01, 0, 0)).await;
    assert!(
        matches!(
            outcome,
            Err(HandshakeError::Header(HeaderError::UnknownFlags { .. }))
        ),
        "{outcome:?}"
    );
    let (outcome, _) = accept_raw(&raw_header(2, 1, 0, 0, 5)).await;
    assert!(
        matches!(
            outcome,
            Err(HandshakeError::Header(HeaderError::HelloCallId {
                call_id: 5
            }))
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn another_version_or_unknown_roles_are_refused() {
    let (outcome, _) = accept_raw(&hello(2, 0, TOKEN)).await;
    assert!(
        matches!(outcome, Err(HandshakeError::Version { version: 2 })),
        "{outcome:?}"
    );
    let (outcome, _) = accept_raw(&hello(1, 0x82, TOKEN)).await;
    assert!(
        matches!(outcome, Err(HandshakeError::UnknownRoles { roles: 0x82 })),
        "{outcome:?}"
    );
    // Naming the hooks it serves means nothing without serving hooks.
    let (outcome, _) = accept_raw(&hello(1, 0x02, TOKEN)).await;
    assert!(
        matches!(outcome, Err(HandshakeError::UnknownRoles { roles: 0x02 })),
        "{outcome:?}"
    );
    let (outcome, _) = accept_raw(&hello(1, 0x03, TOKEN)).await;
    assert!(outcome.is_ok(), "serves hooks and names them: {outcome:?}");
}

#[tokio::test]
async fn a_hello_over_its_limit_is_refused_unread() {
    // Only the header arrives: the refusal must not wait for the body.
    let (outcome, _) = accept_raw(&raw_header(MAX_HELLO + 1, 1, 0, 0, 0)).await;
    assert!(
        matches!(
            outcome,
            Err(HandshakeError::HelloTooLong {
                length,
                max: MAX_HELLO
            }) if length == MAX_HELLO + 1
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_peer_that_closes_before_its_hello_is_whole_is_reported() {
    for cut in [0, 5, 16, 20] {
        let whole = hello(1, 0, TOKEN);
        let (bridge_end, python_end) = tokio::io::duplex(1 << 16);
        let mut raw = RawPeer::over(python_end);
        raw.send_raw(&whole[..cut]).await;
        drop(raw);
        let outcome = accept(bridge_end, TOKEN, Options::new()).await;
        assert!(
            matches!(outcome, Err(HandshakeError::Closed)),
            "cut at {cut}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn the_connecting_side_refuses_an_answer_that_is_not_a_bare_hello() {
    for (answer, want) in [
        (hello(1, 0, b"extra"), "at most 2"),
        (hello(3, 0, b""), "version 3"),
        (raw_header(0, 5, 0, 0, 1).to_vec(), "CANCEL"),
    ] {
        let (python_end, bridge_end) = tokio::io::duplex(1 << 16);
        let mut raw = RawPeer::over(bridge_end);
        raw.send_raw(&answer).await;
        let err = connect(python_end, TOKEN, Options::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        // What the connecting side sent first is its HELLO with the token.
        match raw.frame().await {
            Frame::Hello(h) => assert_eq!(&h.token[..], TOKEN),
            other => panic!("expected HELLO, got {other:?}"),
        }
    }
}
