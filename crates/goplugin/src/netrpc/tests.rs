//! The transport's handling of over-limit bodies and truncated streams, against a peer that
//! writes raw net/rpc gob (our own encoder, held to Go's bytes in header.rs and the gob
//! crate's conformance tests). A small message limit keeps the big bodies small.

use std::collections::HashMap;
use std::sync::Arc;

use gob::{Limits, Types, Value};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::*;

const LIMIT: u64 = 1024;

fn limits() -> Limits {
    Limits {
        max_message_size: LIMIT,
        ..Limits::default()
    }
}

fn rpc_types() -> Arc<RpcTypes> {
    Arc::new(RpcTypes::new(Types::new()).unwrap())
}

/// A pipe whose reader gets at most 256 bytes per read, so big messages arrive in pieces.
fn pipe() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(256)
}

async fn value(r: &mut MsgReader<ReadHalf<DuplexStream>>) -> Value {
    match r.next().await.unwrap() {
        Msg::Value(v) => v,
        other => panic!("want a value, got {other:?}"),
    }
}

// ---- client: replies from the server ----------------------------------------------------

/// The server's end of a client connection: reads requests, writes replies.
struct FakeServer {
    requests: MsgReader<ReadHalf<DuplexStream>>,
    replies: MsgWriter<WriteHalf<DuplexStream>>,
    types: Arc<RpcTypes>,
}

impl FakeServer {
    fn new(stream: DuplexStream, types: &Arc<RpcTypes>) -> FakeServer {
        let (r, w) = tokio::io::split(stream);
        FakeServer {
            requests: MsgReader::new(r, Limits::default()),
            replies: MsgWriter::new(w, types.clone()),
            types: types.clone(),
        }
    }

    /// The next request's header and arguments.
    async fn request(&mut self) -> (Request, Value) {
        let header = Request::from_value(&value(&mut self.requests).await).unwrap();
        (header, value(&mut self.requests).await)
    }

    async fn reply(&mut self, req: &Request, body: Value) {
        self.reply_with_error(req, "", body).await;
    }

    /// A reply whose header carries `error` (Go's `rpc.ServerError`), with `body` all the same.
    async fn reply_with_error(&mut self, req: &Request, error: &str, body: Value) {
        let header = Response {
            service_method: req.service_method.clone(),
            seq: req.seq,
            error: error.into(),
        };
        let ty = match body {
            Value::Bytes(_) => self.types.types().bytes(),
            _ => self.types.types().uint(),
        };
        self.replies
            .send(self.types.response(), &header.to_value(), ty, &body)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn client_oversized_reply_fails_that_call_only() {
    let types = rpc_types();
    let (plugin_end, server_end) = pipe();
    let client = Client::with_limits(plugin_end, types.clone(), limits());
    let mut server = FakeServer::new(server_end, &types);
    let uint = types.types().uint();

    let call = |n: u64| {
        let client = client.clone();
        tokio::spawn(async move { client.call("Plugin.Get", uint, &Value::Uint(n)).await })
    };
    let big = call(0);
    let (big_req, _) = server.request().await;
    let small = call(1);
    let (small_req, _) = server.request().await;
    assert_eq!((big_req.seq, small_req.seq), (0, 1));

    // 4 KiB of bytes, over the 1 KiB limit: a body message of type id, singleton delta,
    // 3-byte length and the 4096 bytes.
    server.reply(&big_req, Value::Bytes(vec![9; 4096])).await;
    server.reply(&small_req, Value::Uint(7)).await;
    match big.await.unwrap() {
        Err(RpcError::TooLarge { part, size, limit }) => {
            assert_eq!((part, limit), ("reply", LIMIT));
            assert_eq!(size, 1 + 1 + 3 + 4096);
        }
        other => panic!("the oversized reply gave {other:?}"),
    }
    assert_eq!(small.await.unwrap().unwrap(), Value::Uint(7));

    // The connection is still up: a later call works.
    let later = call(2);
    let (req, _) = server.request().await;
    server.reply(&req, Value::Uint(8)).await;
    assert_eq!(later.await.unwrap().unwrap(), Value::Uint(8));
}

/// A client under the small limit with one `Plugin.Get` call in flight, which the server has
/// read.
struct PendingCall {
    types: Arc<RpcTypes>,
    client: Client<DuplexStream>,
    server: FakeServer,
    req: Request,
    reply: tokio::task::JoinHandle<Result<Value, RpcError>>,
}

async fn pending_call() -> PendingCall {
    let types = rpc_types();
    let (plugin_end, server_end) = pipe();
    let client = Client::with_limits(plugin_end, types.clone(), limits());
    let mut server = FakeServer::new(server_end, &types);
    let uint = types.types().uint();
    let c = client.clone();
    let reply = tokio::spawn(async move { c.call("Plugin.Get", uint, &Value::Uint(0)).await });
    let (req, _) = server.request().await;
    PendingCall {
        types,
        client,
        server,
        req,
        reply,
    }
}

#[tokio::test]
async fn client_error_reply_wins_over_an_oversized_body() {
    let mut call = pending_call().await;
    call.server
        .reply_with_error(&call.req, "boom", Value::Bytes(vec![1; 4096]))
        .await;
    match call.reply.await.unwrap() {
        Err(RpcError::Server(text)) => assert_eq!(text, "boom"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_oversized_reply_header_ends_every_call() {
    let PendingCall {
        types,
        client,
        mut server,
        req,
        reply: pending,
    } = pending_call().await;
    let uint = types.types().uint();
    let header = Response {
        service_method: "M".repeat(2000),
        seq: req.seq,
        error: String::new(),
    };
    server
        .replies
        .send(types.response(), &header.to_value(), uint, &Value::Uint(1))
        .await
        .unwrap();
    match pending.await.unwrap() {
        Err(RpcError::Protocol(text)) => assert!(
            text.contains("a response header of") && text.contains("exceeds the limit of 1024"),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.call("Plugin.Get", uint, &Value::Uint(1)).await,
        Err(RpcError::Shutdown)
    ));
}

// ---- server: requests from the host -----------------------------------------------------

/// Answers `Plugin.Len` with the length of its `[]byte` argument.
fn len_service(types: &Arc<RpcTypes>) -> Arc<Services> {
    let uint = types.types().uint();
    let service = move |method: &str, args: Value| -> BoxFuture<Result<Reply, CallError>> {
        let result = match (method, args) {
            ("Len", Value::Bytes(b)) => Ok(Reply {
                ty: uint,
                value: Value::Uint(b.len() as u64),
            }),
            (_, other) => Err(CallError::Failed(format!("got a {}", other.kind_name()))),
        };
        Box::pin(async move { result })
    };
    let service: Arc<dyn Service> = Arc::new(service);
    Arc::new(HashMap::from([("Plugin".to_string(), service)]))
}

/// The host's end of a served stream: writes requests, reads responses.
struct FakeHost {
    requests: MsgWriter<WriteHalf<DuplexStream>>,
    responses: MsgReader<ReadHalf<DuplexStream>>,
    types: Arc<RpcTypes>,
}

impl FakeHost {
    fn new(stream: DuplexStream, types: &Arc<RpcTypes>) -> FakeHost {
        let (r, w) = tokio::io::split(stream);
        FakeHost {
            requests: MsgWriter::new(w, types.clone()),
            responses: MsgReader::new(r, Limits::default()),
            types: types.clone(),
        }
    }

    async fn request(&mut self, seq: u64, args: Vec<u8>) {
        let header = Request {
            service_method: "Plugin.Len".into(),
            seq,
        };
        self.requests
            .send(
                self.types.request(),
                &header.to_value(),
                self.types.types().bytes(),
                &Value::Bytes(args),
            )
            .await
            .unwrap();
    }

    async fn response(&mut self) -> (Response, Value) {
        let header = Response::from_value(&value(&mut self.responses).await).unwrap();
        (header, value(&mut self.responses).await)
    }
}

#[tokio::test]
async fn server_answers_oversized_args_with_an_error_and_serves_the_next_request() {
    let types = rpc_types();
    let (plugin_end, host_end) = pipe();
    let served = tokio::spawn(serve_with_limits(
        plugin_end,
        len_service(&types),
        types.clone(),
        limits(),
    ));
    let mut host = FakeHost::new(host_end, &types);
    host.request(0, vec![3; 4096]).await;
    host.request(1, vec![3; 10]).await;

    let mut answers = HashMap::new();
    for _ in 0..2 {
        let (header, body) = host.response().await;
        answers.insert(header.seq, (header, body));
    }
    let (big, body) = &answers[&0];
    assert_eq!(
        big.error,
        "rpc: Plugin.Len: the request was a gob message of 4101 bytes, over the limit of 1024 \
         bytes, and was dropped unread"
    );
    assert_eq!(big.service_method, "Plugin.Len");
    assert_eq!(
        body,
        &Value::Struct(gob::Struct::default()),
        "Go's struct{{}}"
    );
    let (small, body) = &answers[&1];
    assert_eq!(small.error, "");
    assert_eq!(body, &Value::Uint(10));

    // Still serving; a clean close ends serve without an error.
    host.request(2, vec![3; 20]).await;
    let (header, body) = host.response().await;
    assert_eq!((header.seq, body), (2, Value::Uint(20)));
    host.requests.w.shutdown().await.unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn server_ends_on_an_oversized_request_header() {
    let types = rpc_types();
    let (plugin_end, host_end) = pipe();
    let served = tokio::spawn(serve_with_limits(
        plugin_end,
        len_service(&types),
        types.clone(),
        limits(),
    ));
    let mut host = FakeHost::new(host_end, &types);
    let header = Request {
        service_method: format!("Plugin.{}", "L".repeat(2000)),
        seq: 0,
    };
    host.requests
        .send(
            types.request(),
            &header.to_value(),
            types.types().bytes(),
            &Value::Bytes(vec![]),
        )
        .await
        .unwrap();
    match served.await.unwrap() {
        Err(RpcError::Protocol(text)) => {
            assert!(text.contains("a request header of"), "{text}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(host.responses.next().await.unwrap(), Msg::End));
}

// ---- the reader: where a stream may end --------------------------------------------------

fn encoded(values: &[Value]) -> Vec<u8> {
    let types = Types::new();
    let mut enc = gob::Encoder::new();
    let mut out = Vec::new();
    for v in values {
        enc.encode(&types, types.uint(), v, &mut out).unwrap();
    }
    out
}

#[tokio::test]
async fn eof_after_a_partial_message_left_from_an_earlier_read_is_an_error() {
    let stream = encoded(&[Value::Uint(1), Value::Uint(300)]);
    let (mut w, r) = tokio::io::duplex(1024);
    // One write, so one read brings the first value and part of the second.
    w.write_all(&stream[..stream.len() - 1]).await.unwrap();
    drop(w);
    let mut reader = MsgReader::new(r, Limits::default());
    assert!(matches!(
        reader.next().await.unwrap(),
        Msg::Value(Value::Uint(1))
    ));
    match reader.next().await {
        Err(RpcError::Protocol(text)) => assert_eq!(text, "unexpected EOF inside a gob message"),
        other => panic!("want the EOF error, got {other:?}"),
    }
}

#[tokio::test]
async fn eof_between_messages_is_a_clean_end() {
    let stream = encoded(&[Value::Uint(1), Value::Uint(2)]);
    let (mut w, r) = tokio::io::duplex(1024);
    w.write_all(&stream).await.unwrap();
    drop(w);
    let mut reader = MsgReader::new(r, Limits::default());
    assert!(matches!(
        reader.next().await.unwrap(),
        Msg::Value(Value::Uint(1))
    ));
    assert!(matches!(
        reader.next().await.unwrap(),
        Msg::Value(Value::Uint(2))
    ));
    assert!(matches!(reader.next().await.unwrap(), Msg::End));
}

#[tokio::test]
async fn eof_while_reading_past_an_oversized_message_is_an_error() {
    let types = Types::new();
    let mut stream = Vec::new();
    gob::Encoder::new()
        .encode(
            &types,
            types.bytes(),
            &Value::Bytes(vec![0; 4096]),
            &mut stream,
        )
        .unwrap();
    let (mut w, r) = tokio::io::duplex(1024);
    let mut reader = MsgReader::new(r, limits());
    let writer = tokio::spawn(async move {
        w.write_all(&stream[..2000]).await.unwrap();
    });
    match reader.next().await {
        Err(RpcError::Protocol(text)) => assert_eq!(text, "unexpected EOF inside a gob message"),
        other => panic!("want the EOF error, got {other:?}"),
    }
    writer.await.unwrap();
}

#[tokio::test]
async fn reading_past_an_oversized_message_keeps_memory_to_one_read() {
    let types = Types::new();
    let mut stream = Vec::new();
    let mut enc = gob::Encoder::new();
    enc.encode(
        &types,
        types.bytes(),
        &Value::Bytes(vec![0; 1 << 20]),
        &mut stream,
    )
    .unwrap();
    enc.encode(&types, types.uint(), &Value::Uint(5), &mut stream)
        .unwrap();
    let (mut w, r) = tokio::io::duplex(4096);
    let writer = tokio::spawn(async move {
        w.write_all(&stream).await.unwrap();
    });
    let mut reader = MsgReader::new(r, limits());
    match reader.next().await.unwrap() {
        Msg::TooLarge { size, limit } => assert_eq!((size, limit), (1 + 1 + 4 + (1 << 20), LIMIT)),
        other => panic!("{other:?}"),
    }
    // Reads come in at most 4 KiB here; the 1 MiB message was never held.
    assert!(
        reader.dec.buffer_capacity() <= 8192,
        "{}",
        reader.dec.buffer_capacity()
    );
    assert!(matches!(
        reader.next().await.unwrap(),
        Msg::Value(Value::Uint(5))
    ));
    writer.await.unwrap();
}
