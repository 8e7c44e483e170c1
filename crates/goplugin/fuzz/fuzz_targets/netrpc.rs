//! Arbitrary bytes as the server's side of a net/rpc stream, through the code the bridge runs
//! on them, in both directions the server feeds:
//!
//! - as requests to `netrpc::serve` (how hooks and the control services arrive): gob
//!   decoding, `Request::from_value`, dispatch, and every reply path (a reply, a reply whose
//!   value does not fit its type, a failed call, an unknown method, an unknown service, an
//!   ill-formed name);
//! - as replies to a `netrpc::Client` with calls in flight (how API results arrive).
//!
//! Beyond "no panic, hang or unbounded allocation": the reply stream the plugin writes must
//! decode; on a stream that ends cleanly every request is answered exactly once, with its
//! own seq and method; and each client call ends with exactly what the first reply carrying
//! its seq said, or with a shutdown/protocol error when no such reply arrived.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use gob::{Decoder, Limits, Types, Value};
use goplugin::netrpc::{
    self, BoxFuture, CallError, Client, Reply, Request, Response, RpcError, RpcTypes, Service,
    Services,
};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

/// Calls the client has in flight when the server's bytes arrive: seqs 0..CALLS.
const CALLS: u64 = 4;

fn rpc_types() -> &'static Arc<RpcTypes> {
    static TYPES: OnceLock<Arc<RpcTypes>> = OnceLock::new();
    TYPES.get_or_init(|| Arc::new(RpcTypes::new(Types::new()).expect("net/rpc types")))
}

/// The values our decoder reads from `data`, and whether it stopped on an error.
fn decode_all(data: &[u8]) -> (Vec<Value>, bool) {
    let mut dec = Decoder::new(Limits::default());
    dec.feed(data);
    let mut values = Vec::new();
    loop {
        match dec.next_value() {
            Ok(Some(v)) => values.push(v),
            Ok(None) => return (values, false),
            Err(_) => return (values, true),
        }
    }
}

/// Stands in for the bridge's hook service; the method name picks the outcome so the
/// fuzzer reaches every reply path the transport has.
struct Hooks;

impl Service for Hooks {
    fn call(&self, method: &str, args: Value) -> BoxFuture<Result<Reply, CallError>> {
        let result = match method.len() % 3 {
            0 => Err(CallError::UnknownMethod),
            1 => Err(CallError::Failed(format!("{method} failed"))),
            // Declared a string: a non-string argument takes the encode-error reply path.
            _ => Ok(Reply {
                ty: rpc_types().types().string(),
                value: args,
            }),
        };
        Box::pin(async move { result })
    }
}

async fn serve_requests(data: &[u8]) {
    let types = rpc_types();
    let (plugin_end, host_end) = tokio::io::duplex(64 * 1024);
    let hooks: Arc<dyn Service> = Arc::new(Hooks);
    let services: Services = HashMap::from([("Plugin".to_string(), hooks)]);
    let (mut host_read, mut host_write) = tokio::io::split(host_end);
    let host_writes = async {
        // The plugin drops the stream at the first bad message: a failed write is expected.
        let _ = host_write.write_all(data).await;
        let _ = host_write.shutdown().await;
    };
    let mut written = Vec::new();
    let (served, (), read) = tokio::join!(
        netrpc::serve(plugin_end, Arc::new(services), types.clone()),
        host_writes,
        host_read.read_to_end(&mut written),
    );
    read.expect("reading an in-memory stream");

    let (replies, reply_error) = decode_all(&written);
    assert!(!reply_error, "the plugin wrote replies that do not decode");
    assert!(replies.len() % 2 == 0, "a reply without its body");
    let mut answered: Vec<(u64, String)> = replies
        .chunks(2)
        .map(|pair| {
            let r = Response::from_value(&pair[0]).expect("the plugin's reply header");
            (r.seq, r.service_method)
        })
        .collect();

    let (requests, request_error) = decode_all(data);
    let mut asked: Vec<(u64, String)> = requests
        .chunks(2)
        .map_while(|pair| Request::from_value(&pair[0]).ok())
        .map(|r| (r.seq, r.service_method))
        .collect();
    asked.sort();
    answered.sort();
    if served.is_ok() {
        assert!(
            !request_error,
            "a clean end after bytes our decoder rejects"
        );
        assert_eq!(answered, asked, "a clean stream answers every request once");
    } else {
        let mut unanswered = asked.clone();
        for a in &answered {
            let at = unanswered
                .iter()
                .position(|q| q == a)
                .unwrap_or_else(|| panic!("reply {a:?} answers no request of {asked:?}"));
            unanswered.remove(at);
        }
    }
}

async fn client_replies(data: &[u8]) {
    let types = rpc_types();
    let (plugin_end, host_end) = tokio::io::duplex(64 * 1024);
    let (mut host_read, mut host_write) = tokio::io::split(host_end);
    let client = Client::new(plugin_end, types.clone());
    let mut calls = tokio::task::JoinSet::new();
    for call in 0..CALLS {
        let client = client.clone();
        calls.spawn(async move {
            let args = Value::String(format!("call {call}"));
            let result = client
                .call("Plugin.GetUser", rpc_types().types().string(), &args)
                .await;
            (args, result)
        });
    }
    drop(client);

    // The server's bytes go out only once every request has, so each reply finds its call
    // waiting; the requests also say which seq each call got.
    let mut sent = Decoder::new(Limits::default());
    let mut seq_of: HashMap<String, u64> = HashMap::new();
    let mut header: Option<Request> = None;
    let mut buf = vec![0u8; 4096];
    while (seq_of.len() as u64) < CALLS {
        let n = host_read.read(&mut buf).await.expect("in-memory stream");
        assert!(n > 0, "the client closed before sending its requests");
        sent.feed(&buf[..n]);
        while let Some(v) = sent.next_value().expect("the client's own requests decode") {
            match header.take() {
                None => header = Some(Request::from_value(&v).expect("the client's header")),
                Some(h) => {
                    let Value::String(args) = v else {
                        panic!("the client sent {v:?} for a string")
                    };
                    seq_of.insert(args, h.seq);
                }
            }
        }
    }

    let host_writes = async {
        // The client stops reading at the first bad message: a failed write is expected.
        let _ = host_write.write_all(data).await;
        let _ = host_write.shutdown().await;
    };
    let collect = async {
        let mut results = Vec::new();
        while let Some(done) = calls.join_next().await {
            results.push(done.expect("a call task panicked"));
        }
        results
    };
    let ((), results) = tokio::join!(host_writes, collect);

    // What the client's reader saw: reply pairs up to the first header that is not one.
    let (values, _) = decode_all(data);
    let mut first_reply: HashMap<u64, (String, Value)> = HashMap::new();
    for pair in values.chunks(2) {
        let Ok(r) = Response::from_value(&pair[0]) else {
            break;
        };
        let Some(body) = pair.get(1) else { break };
        first_reply.entry(r.seq).or_insert((r.error, body.clone()));
    }
    for (args, result) in results {
        let Value::String(name) = &args else {
            unreachable!()
        };
        let seq = seq_of[name];
        match (first_reply.get(&seq), &result) {
            (Some((error, body)), Ok(v)) if error.is_empty() => assert!(
                gob_fuzz::same_value(body, v),
                "seq {seq}: got {v:?}, the reply was {body:?}"
            ),
            (Some((error, _)), Err(RpcError::Server(e))) if !error.is_empty() => {
                assert_eq!(e, error, "seq {seq}")
            }
            (None, Err(RpcError::Shutdown | RpcError::Protocol(_))) => {}
            (reply, result) => panic!("seq {seq}: reply {reply:?} but the call got {result:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Per input: a fresh runtime ends every task the input started. The paused clock makes
    // the run independent of wall time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        serve_requests(data).await;
        client_replies(data).await;
    });
});
