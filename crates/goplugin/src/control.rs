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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The host called `Control.Quit`.
    Quit,
    /// The yamux session ended (host closed the socket, or it failed).
    SessionEnded,
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
                self.done.send_if_modified(|d| {
                    let first = d.is_none();
                    if first {
                        *d = Some(ShutdownReason::Quit);
                    }
                    first
                });
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
        tokio::spawn(async move {
            // Like Go, a host that never dials only costs this task its 5 s.
            if let Ok(stream) = broker.accept(id).await {
                let services: Services = HashMap::from([("Plugin".to_string(), service)]);
                let _ = netrpc::serve(stream, Arc::new(services), types).await;
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
        done,
    });
    let dispenser: Arc<dyn Service> = Arc::new(Dispenser {
        types,
        broker,
        plugins,
    });
    HashMap::from([
        ("Control".to_string(), control),
        ("Dispenser".to_string(), dispenser),
    ])
}
