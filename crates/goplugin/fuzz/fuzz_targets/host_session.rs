//! Arbitrary bytes as everything the host writes on the plugin's socket, through the path
//! the bridge runs: `serve::bind_with_env` and `Bound::accept` (a real unix socket), our
//! yamux server, the control/stdout/stderr streams, the mux broker's inbound streams,
//! go-plugin's `Control` and `Dispenser` services, and net/rpc on a dispensed broker stream.
//! The host's side half-closes after the bytes; the plugin must then wind down by itself.
//!
//! Checked beyond "no panic, hang or unbounded allocation": what the plugin writes back is a
//! sequence of whole yamux frames whose headers decode; and every 12-byte window of the input
//! that decodes as a frame header encodes back to the same bytes.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Once, OnceLock};

use gob::{Types, Value};
use goplugin::netrpc::{BoxFuture, CallError, Reply, RpcTypes, Service};
use goplugin::yamux::{FrameType, HEADER_LEN, Header};
use goplugin::{Broker, HandshakeConfig, Plugin, PluginSet, ServeConfig, serve};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

fn rpc_types() -> &'static Arc<RpcTypes> {
    static TYPES: OnceLock<Arc<RpcTypes>> = OnceLock::new();
    TYPES.get_or_init(|| Arc::new(RpcTypes::new(Types::new()).expect("net/rpc types")))
}

/// Stands in for the bridge's hooks: every call answers `struct{}` (what most hooks return
/// when they have nothing to say).
struct Hooks;

impl Service for Hooks {
    fn call(&self, _method: &str, _args: Value) -> BoxFuture<Result<Reply, CallError>> {
        let reply = Reply {
            ty: rpc_types().empty_struct(),
            value: Value::Struct(gob::Struct::default()),
        };
        Box::pin(async move { Ok(reply) })
    }
}

/// Dispensed as `hooks`, as the bridge's own plugin is.
struct HooksPlugin;

impl Plugin for HooksPlugin {
    fn server(&self, _broker: &Broker) -> Result<Arc<dyn Service>, String> {
        Ok(Arc::new(Hooks))
    }
}

/// Every 12-byte window that decodes as a header must encode back to itself.
fn check_header_codec(data: &[u8]) {
    for window in data.windows(HEADER_LEN) {
        let bytes: &[u8; HEADER_LEN] = window.try_into().expect("window length");
        if let Ok(h) = Header::decode(bytes) {
            assert_eq!(&h.encode(), bytes, "{h:?}");
        }
    }
}

/// The plugin's output must be whole frames with headers that decode.
fn check_frames(out: &[u8]) {
    let mut at = 0;
    while at < out.len() {
        let header: &[u8; HEADER_LEN] = out
            .get(at..at + HEADER_LEN)
            .unwrap_or_else(|| panic!("a partial frame header at byte {at}"))
            .try_into()
            .expect("header length");
        let h = Header::decode(header).unwrap_or_else(|e| panic!("frame at byte {at}: {e}"));
        at += HEADER_LEN;
        if h.ty == FrameType::Data {
            at += h.length as usize;
            assert!(at <= out.len(), "a partial data frame: {h:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // libFuzzer's own main runs instead of Rust's, which would have ignored SIGPIPE: writing
    // to a socket the plugin closed must be an error here, as in the bridge, not a kill.
    static IGNORE_SIGPIPE: Once = Once::new();
    // SAFETY: setting a signal disposition to SIG_IGN has no memory-safety preconditions.
    IGNORE_SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    check_header_codec(data);

    // Per input: a fresh runtime ends every task the input started. The paused clock lets
    // the broker's 5 s and the accept backlog's 1 s waits pass as soon as nothing else can
    // run, instead of stalling the fuzzer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    let out = runtime.block_on(async {
        let handshake = HandshakeConfig::mattermost();
        let cookie = handshake.magic_cookie_value.clone();
        let plugins: PluginSet = HashMap::from([(
            "hooks".to_string(),
            Arc::new(HooksPlugin) as Arc<dyn Plugin>,
        )]);
        let config = ServeConfig::mattermost(rpc_types().clone(), plugins);
        // The socket goes to the temp dir, as in production without PLUGIN_UNIX_SOCKET_DIR.
        let bound = serve::bind_with_env(config, |k| {
            (k == handshake.magic_cookie_key).then(|| cookie.clone())
        })
        .expect("binding a socket in the temp dir");
        let path = bound.socket_path().to_path_buf();

        let plugin = async move {
            // An input that never opens the three first streams ends accept with an error.
            if let Ok(conn) = bound.accept().await {
                conn.done().await;
                conn.close();
            }
        };
        let host = async {
            let mut socket = tokio::net::UnixStream::connect(&path)
                .await
                .expect("connecting to the bound socket");
            let (mut read, mut write) = socket.split();
            let writes = async {
                // The plugin drops the socket on a protocol error: a failed write is expected.
                let _ = write.write_all(data).await;
                let _ = write.shutdown().await;
            };
            let mut out = Vec::new();
            let ((), read) = tokio::join!(writes, read.read_to_end(&mut out));
            read.map(|_| out)
        };
        let ((), out) = tokio::join!(plugin, host);
        out
    });
    drop(runtime);
    // A read error (the plugin reset the socket) leaves nothing whole to check.
    if let Ok(out) = out {
        check_frames(&out);
    }
});
