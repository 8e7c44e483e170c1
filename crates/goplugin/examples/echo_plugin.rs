//! A tiny plugin for the Go interop host (`conformance/goplugin-host`): serves a `Plugin`
//! service whose methods exercise every part of the transport. Its Go twin types are in
//! the host's main.go; each field list here must match the Go struct exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gob::{Struct, TypeId, Types, Value};
use goplugin::netrpc::{BoxFuture, CallError, Client, Reply, RpcTypes, Service};
use goplugin::yamux::Stream;
use goplugin::{Broker, Plugin, PluginSet, ServeConfig, ServeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

/// Type ids of the Go types the methods reply with or send.
struct Tys {
    echo: TypeId,
    add: TypeId,
    sink: TypeId,
}

fn declare(types: &mut Types) -> Tys {
    let (s, i, u, b) = (types.string(), types.int(), types.uint(), types.bool());
    let strings = types.slice(s);
    let counts = types.map(s, u);
    let echo = types
        .struct_type(
            "EchoArgs",
            vec![
                ("A".into(), s),
                ("B".into(), i),
                ("C".into(), strings),
                ("D".into(), counts),
                ("E".into(), b),
            ],
        )
        .expect("EchoArgs is a valid struct");
    let add = types
        .struct_type("AddArgs", vec![("X".into(), i), ("Y".into(), i)])
        .expect("AddArgs is a valid struct");
    let sink = types
        .struct_type("SinkResult", vec![("N".into(), u), ("Sum".into(), u)])
        .expect("SinkResult is a valid struct");
    Tys { echo, add, sink }
}

const FNV_OFFSET: u64 = 14695981039346656037;

fn fnv1a(mut h: u64, b: &[u8]) -> u64 {
    for &c in b {
        h ^= u64::from(c);
        h = h.wrapping_mul(1099511628211);
    }
    h
}

/// The host's pattern: byte i is (i*7+3) mod 251.
fn pattern(off: u64, n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| (((off + i) * 7 + 3) % 251) as u8)
        .collect()
}

/// State shared by all dispenses of the plugin.
struct Shared {
    types: Arc<RpcTypes>,
    tys: Tys,
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    sink: watch::Sender<Option<(u64, u64)>>,
    parked: watch::Sender<Option<Arc<tokio::sync::Mutex<Stream>>>>,
    stdout: watch::Sender<Option<Arc<tokio::sync::Mutex<Stream>>>>,
}

impl Shared {
    fn gate(&self, name: &str) -> Arc<Semaphore> {
        let mut g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        g.entry(name.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(0)))
            .clone()
    }

    fn empty(&self) -> Reply {
        Reply {
            ty: self.types.empty_struct(),
            value: Value::Struct(Struct::default()),
        }
    }

    fn uint(&self, v: u64) -> Reply {
        Reply {
            ty: self.types.types().uint(),
            value: Value::Uint(v),
        }
    }
}

struct EchoPlugin(Arc<Shared>);

impl Plugin for EchoPlugin {
    fn server(&self, broker: &Broker) -> Result<Arc<dyn Service>, String> {
        Ok(Arc::new(EchoService {
            shared: self.0.clone(),
            broker: broker.clone(),
        }))
    }
}

struct EchoService {
    shared: Arc<Shared>,
    broker: Broker,
}

fn field_u64(v: &Value, name: &str) -> u64 {
    match v {
        Value::Struct(s) => match s.get(name) {
            Some(Value::Uint(u)) => *u,
            _ => 0,
        },
        _ => 0,
    }
}

fn failed(e: impl std::fmt::Display) -> CallError {
    CallError::Failed(e.to_string())
}

impl Service for EchoService {
    fn call(&self, method: &str, args: Value) -> BoxFuture<Result<Reply, CallError>> {
        let sh = self.shared.clone();
        let broker = self.broker.clone();
        let method = method.to_string();
        Box::pin(async move {
            match method.as_str() {
                "Echo" => Ok(Reply {
                    ty: sh.tys.echo,
                    value: args,
                }),
                "Fail" => match args {
                    Value::String(s) => Err(CallError::Failed(format!("boom: {s}"))),
                    other => Err(failed(format!(
                        "Fail wants a string, got {}",
                        other.kind_name()
                    ))),
                },
                "Wait" | "Release" => {
                    let Value::String(name) = args else {
                        return Err(failed("gate name must be a string"));
                    };
                    let gate = sh.gate(&name);
                    if method == "Wait" {
                        gate.acquire().await.map_err(failed)?.forget();
                    } else {
                        gate.add_permits(1);
                    }
                    Ok(sh.empty())
                }
                "CallBack" => {
                    let Value::Uint(id) = args else {
                        return Err(failed("CallBack wants a broker id"));
                    };
                    let id = u32::try_from(id).map_err(failed)?;
                    let stream = broker.dial(id).await.map_err(failed)?;
                    let client = Client::new(stream, sh.types.clone());
                    let add = Value::structure([("X", Value::Int(40)), ("Y", Value::Int(2))]);
                    let sum = client
                        .call("Plugin.Add", sh.tys.add, &add)
                        .await
                        .map_err(failed)?;
                    Ok(Reply {
                        ty: sh.types.types().int(),
                        value: sum,
                    })
                }
                "OfferEcho" => {
                    let id = broker.next_id();
                    tokio::spawn(async move {
                        if let Ok(mut s) = broker.accept(id).await {
                            let mut buf = vec![0u8; 32 * 1024];
                            while let Ok(n) = s.read(&mut buf).await {
                                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    });
                    Ok(sh.uint(u64::from(id)))
                }
                "OfferSink" => {
                    let id = broker.next_id();
                    sh.sink.send_replace(None);
                    let sh2 = sh.clone();
                    tokio::spawn(async move {
                        let Ok(mut s) = broker.accept(id).await else {
                            return;
                        };
                        let (mut n, mut sum) = (0u64, FNV_OFFSET);
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(k) = s.read(&mut buf).await {
                            if k == 0 {
                                break;
                            }
                            sum = fnv1a(sum, &buf[..k]);
                            n += k as u64;
                        }
                        sh2.sink.send_replace(Some((n, sum)));
                    });
                    Ok(sh.uint(u64::from(id)))
                }
                "SinkResult" => {
                    let mut rx = sh.sink.subscribe();
                    let (n, sum) = rx
                        .wait_for(|r| r.is_some())
                        .await
                        .map_err(failed)?
                        .unwrap_or((0, 0));
                    Ok(Reply {
                        ty: sh.tys.sink,
                        value: Value::structure([("N", Value::Uint(n)), ("Sum", Value::Uint(sum))]),
                    })
                }
                "OfferPark" => {
                    let id = broker.next_id();
                    sh.parked.send_replace(None);
                    let sh2 = sh.clone();
                    tokio::spawn(async move {
                        if let Ok(s) = broker.accept(id).await {
                            sh2.parked
                                .send_replace(Some(Arc::new(tokio::sync::Mutex::new(s))));
                        }
                    });
                    Ok(sh.uint(u64::from(id)))
                }
                "DrainParked" => {
                    let Value::Uint(n) = args else {
                        return Err(failed("DrainParked wants a byte count"));
                    };
                    let mut rx = sh.parked.subscribe();
                    let stream = rx
                        .wait_for(|p| p.is_some())
                        .await
                        .map_err(failed)?
                        .clone()
                        .ok_or_else(|| failed("no parked stream"))?;
                    let mut buf = vec![0u8; usize::try_from(n).map_err(failed)?];
                    stream
                        .lock()
                        .await
                        .read_exact(&mut buf)
                        .await
                        .map_err(failed)?;
                    Ok(Reply {
                        ty: sh.types.types().bytes(),
                        value: Value::Bytes(buf),
                    })
                }
                "AcceptNobody" => {
                    let id = broker.next_id();
                    match broker.accept(id).await {
                        Ok(_) => Err(failed("somebody dialed an id nobody was told about")),
                        Err(e) => Err(failed(e)),
                    }
                }
                "Source" => {
                    let id = u32::try_from(field_u64(&args, "Id")).map_err(failed)?;
                    let total = field_u64(&args, "N");
                    let mut s = broker.dial(id).await.map_err(failed)?;
                    let mut off = 0u64;
                    while off < total {
                        let n = (total - off).min(64 * 1024) as usize;
                        s.write_all(&pattern(off, n)).await.map_err(failed)?;
                        off += n as u64;
                    }
                    s.shutdown().await.map_err(failed)?;
                    Ok(sh.empty())
                }
                "Log" => {
                    let Value::String(line) = args else {
                        return Err(failed("Log wants a string"));
                    };
                    let mut rx = sh.stdout.subscribe();
                    let out = rx
                        .wait_for(|s| s.is_some())
                        .await
                        .map_err(failed)?
                        .clone()
                        .ok_or_else(|| failed("no stdout stream"))?;
                    out.lock()
                        .await
                        .write_all(line.as_bytes())
                        .await
                        .map_err(failed)?;
                    Ok(sh.empty())
                }
                _ => Err(CallError::UnknownMethod),
            }
        })
    }
}

fn main() {
    let mut types = Types::new();
    let tys = declare(&mut types);
    let types = Arc::new(RpcTypes::new(types).expect("net/rpc header types are valid"));
    let shared = Arc::new(Shared {
        types: types.clone(),
        tys,
        gates: Mutex::new(HashMap::new()),
        sink: watch::channel(None).0,
        parked: watch::channel(None).0,
        stdout: watch::channel(None).0,
    });
    let plugin: Arc<dyn Plugin> = Arc::new(EchoPlugin(shared.clone()));
    let plugins = PluginSet::from([("hooks".to_string(), plugin)]);
    let bound = match goplugin::serve::bind(ServeConfig::mattermost(types, plugins)) {
        Ok(b) => b,
        Err(ServeError::Cookie(e)) => {
            eprint!("{e}");
            std::process::exit(e.exit_code());
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = bound.write_handshake(std::io::stdout().lock()) {
        eprintln!("writing the handshake: {e}");
        std::process::exit(1);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let mut conn = match bound.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        if let Some(out) = conn.take_stdout() {
            shared
                .stdout
                .send_replace(Some(Arc::new(tokio::sync::Mutex::new(out))));
        }
        conn.done().await;
        conn.close();
        0
    });
    rt.shutdown_background();
    std::process::exit(code);
}
