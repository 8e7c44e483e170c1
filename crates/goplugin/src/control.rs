//! go-plugin's services on the control stream: `Control` (Ping, Quit) and `Dispenser`.
//!
//! Facts (hashicorp/go-plugin `rpc_server.go`): `Control.Ping(bool) -> struct{}`,
//! `Control.Quit(bool) -> struct{}` (ends the plugin), `Dispenser.Dispense(string) -> uint32`:
//! look the name up (`unknown plugin type: NAME`), build the server, allocate a broker id,
//! reply it, then accept that id and serve net/rpc service `Plugin` on it.

use std::collections::HashMap;
use std::sync::Arc;

use gob::Value;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::netrpc::{self, BoxFuture, CallError, Reply, RpcTypes, Service, Services};

/// A dispensable plugin (go-plugin's `Plugin.Server` half).
pub trait Plugin: Send + Sync + 'static {
    /// Builds the `Plugin` service for one dispense; `broker` lets it dial ids the host
    /// hands it (Mattermost's API mux id) or offer its own.
    fn server(&self, broker: &Broker) -> Result<Arc<dyn Service>, String>;
}

/// Plugins by dispense name (Mattermost: `"hooks"`).
pub type PluginSet = HashMap<String, Arc<dyn Plugin>>;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The host called `Control.Quit`.
    Quit,
    /// The yamux session ended (host closed the socket, or it failed).
    SessionEnded,
    /// The net/rpc loop serving `stream` (`"control"`, or the dispensed plugin's name) ended
    /// while the session lived on: the host closed that stream, or `error` broke the loop.
    /// Either way the plugin can no longer answer the host, so the connection is over; the
    /// loop's end is logged where it happens.
    StreamEnded {
        /// Which stream's loop ended.
        stream: String,
        /// What ended it, when it was not the host closing the stream.
        error: Option<String>,
    },
}

/// Records `reason` as the connection's end unless an earlier one was.
pub(crate) fn finish(done: &watch::Sender<Option<ShutdownReason>>, reason: ShutdownReason) {
    done.send_if_modified(|d| {
        let first = d.is_none();
        if first {
            *d = Some(reason);
        }
        first
    });
}

/// Logs the end of the net/rpc loop serving `stream` and records it as the connection's end.
pub(crate) fn loop_ended(
    done: &watch::Sender<Option<ShutdownReason>>,
    stream: &str,
    result: Result<(), netrpc::RpcError>,
) {
    let error = result.err().map(|e| e.to_string());
    // After Quit or the session's end this is the expected close, not news.
    if done.borrow().is_none() {
        let fields = [("stream", stream.to_string())];
        match &error {
            Some(e) => crate::log::error(
                &format!("serving the host's {stream} stream failed, ending the plugin: {e}"),
                &fields,
            ),
            None => crate::log::info(
                &format!("the host closed the {stream} stream; ending the plugin"),
                &fields,
            ),
        }
    }
    finish(
        done,
        ShutdownReason::StreamEnded {
            stream: stream.to_string(),
            error,
        },
    );
}

fn empty_reply(types: &RpcTypes) -> Reply {
    Reply {
        ty: types.empty_struct(),
        value: Value::Struct(gob::Struct::default()),
    }
}

struct Control {
    types: Arc<RpcTypes>,
    done: watch::Sender<Option<ShutdownReason>>,
}

impl Service for Control {
    fn call(&self, method: &str, _args: Value) -> BoxFuture<Result<Reply, CallError>> {
        let result = match method {
            "Ping" => Ok(empty_reply(&self.types)),
            "Quit" => {
                finish(&self.done, ShutdownReason::Quit);
                Ok(empty_reply(&self.types))
            }
            _ => Err(CallError::UnknownMethod),
        };
        Box::pin(async move { result })
    }
}

struct Dispenser {
    types: Arc<RpcTypes>,
    broker: Broker,
    plugins: Arc<PluginSet>,
    done: watch::Sender<Option<ShutdownReason>>,
}

impl Service for Dispenser {
    fn call(&self, method: &str, args: Value) -> BoxFuture<Result<Reply, CallError>> {
        if method != "Dispense" {
            return Box::pin(async { Err(CallError::UnknownMethod) });
        }
        let name = match args {
            Value::String(s) => s,
            other => {
                let text = format!("Dispense wants a string name, got a {}", other.kind_name());
                return Box::pin(async move { Err(CallError::Failed(text)) });
            }
        };
        let Some(plugin) = self.plugins.get(&name) else {
            let text = format!("unknown plugin type: {name}");
            return Box::pin(async move { Err(CallError::Failed(text)) });
        };
        let service = match plugin.server(&self.broker) {
            Ok(s) => s,
            Err(e) => return Box::pin(async move { Err(CallError::Failed(e)) }),
        };
        let id = self.broker.next_id();
        let broker = self.broker.clone();
        let types = self.types.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            // Like Go, a host that never dials only costs this task its 5 s.
            if let Ok(stream) = broker.accept(id).await {
                let services: Services = HashMap::from([("Plugin".to_string(), service)]);
                let result = netrpc::serve(stream, Arc::new(services), types).await;
                loop_ended(&done, &name, result);
            }
        });
        let reply = Reply {
            ty: self.types.types().uint(),
            value: Value::Uint(u64::from(id)),
        };
        Box::pin(async move { Ok(reply) })
    }
}

/// The services go-plugin serves on the control stream.
pub(crate) fn control_services(
    types: Arc<RpcTypes>,
    broker: Broker,
    plugins: Arc<PluginSet>,
    done: watch::Sender<Option<ShutdownReason>>,
) -> Services {
    let control: Arc<dyn Service> = Arc::new(Control {
        types: types.clone(),
        done: done.clone(),
    });
    let dispenser: Arc<dyn Service> = Arc::new(Dispenser {
        types,
        broker,
        plugins,
        done,
    });
    HashMap::from([
        ("Control".to_string(), control),
        ("Dispenser".to_string(), dispenser),
    ])
}
