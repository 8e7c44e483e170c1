//! The bridge proper: the net/rpc `Plugin` service the server dispenses as "hooks", and the
//! `PluginAPI` backend Python calls. Both translate through the [`Translator`]; neither has
//! code for any particular method beyond the few whose wire shape is not a plain call
//! (`Implemented`, `OnActivate`, `ServeHTTP`, `LoadPluginConfiguration`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gob::{Struct, Value as GobValue};
use goplugin::netrpc::{BoxFuture, CallError, Client, Reply, RpcError, RpcTypes, Service};
use goplugin::yamux::Stream;
use goplugin::{Broker, Plugin};
use mmplug_schema::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MethodDescriptor, ReflectMessage, Value as PbValue,
};
use tokio::sync::OnceCell;
use tonic::Status;

use crate::deadline::{Deadlines, Elapsed};
use crate::grpc::{ApiBackend, HooksClient, PACKAGE};
use crate::log::{self, Level};
use crate::manifest::{FailurePolicy, Manifest};
use crate::python::PythonProcess;
use crate::translate::{Translator, describe_error, response_error};

/// Everything a call needs, shared by the hooks service and the API backend.
pub struct Bridge {
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// Schema-driven translation.
    pub translator: Translator,
    /// The gob types of every Go type we send, plus net/rpc's headers.
    pub types: Arc<RpcTypes>,
    /// The compiled protobuf contract.
    pub pool: DescriptorPool,
    /// Python's `PluginHooks`.
    pub hooks: HooksClient,
    /// The Python process now running (replaced when the bridge restarts it).
    python: RwLock<Option<Arc<PythonProcess>>>,
    /// The server's API, dialed when the server calls `OnActivate`.
    api: RwLock<Option<Arc<Client<Stream>>>>,
    /// The session's mux broker, kept from `OnActivate` for API calls that carry byte streams.
    broker: RwLock<Option<Broker>>,
    /// The readiness of the Python process now running, established once per process: `Err`
    /// carries the activation error text. A restarted process gets a new cell, whose
    /// readiness includes replaying the server's activation (see [`Bridge::restarted`]).
    ready: std::sync::Mutex<Arc<OnceCell<Readiness>>>,
    /// How many times the bridge restarted Python; from the first on, readiness replays
    /// OnConfigurationChange and OnActivate, which the server will not send again.
    restarts: std::sync::atomic::AtomicU32,
    /// Why Python could not be started at all (no suitable interpreter, bad bundle, ...).
    startup_error: std::sync::OnceLock<String>,
    /// Benchmark instrument: unary hooks are answered by [`HooksClient::echo`], not Python.
    echo_hooks: bool,
    /// The time limits of hook calls in flight (one timer for all of them).
    deadlines: Deadlines,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("plugin", &self.manifest.id)
            .finish_non_exhaustive()
    }
}

/// Hooks whose wire shape is not a plain call, each with its own path in [`Bridge::hook`];
/// every other hook goes through the generic one.
pub const HOOKS_WITH_OWN_PATH: &[&str] = &[
    "Implemented",
    "OnActivate",
    "ServeHTTP",
    "ServeMetrics",
    "FileWillBeUploaded",
];

/// API methods with their own path; irregular methods of the upload shape (one plugin-served
/// byte stream plus parameters) share [`Bridge::api_upload`].
pub const API_WITH_OWN_PATH: &[&str] = &["LoadPluginConfiguration", "PluginHTTP"];

/// Whether an irregular API method has the upload shape `api_upload` serves.
/// What readiness established: the hooks Python implements, or why it did not start.
type Readiness = Result<Vec<String>, String>;

/// Why a hook produced no answer of Python's.
enum HookFailure {
    /// The plugin's handler raised (its AppError): the plugin decided.
    Plugin(String),
    /// The bridge could not get the plugin's decision: Python not running, not answering
    /// in time, or a value that could not be translated either way.
    Bridge(String),
}

/// The wire name of a gating hook's rejection reason (its last result, a Go `string`: the
/// server rejects what the hook gates when it is not empty), or `None` for other hooks.
pub fn gate_reason_field(m: &Method) -> Option<&str> {
    let last = m.results.last()?;
    if last.ty != "string" {
        return None;
    }
    let index = m.results.len() - 1;
    m.returns_fields
        .iter()
        .find(|f| f.role.as_deref() == Some("result") && f.index == Some(index))
        .map(|f| f.name.as_str())
}

/// Whether the hook's Go signature has an error result (`error` or `*model.AppError`).
fn has_error_result(m: &Method) -> bool {
    m.results
        .iter()
        .any(|r| r.ty == "error" || r.ty == "*model.AppError")
}

pub fn is_upload_shape(m: &Method) -> bool {
    let streams = m
        .args_fields
        .iter()
        .filter(|f| f.role.as_deref() == Some("stream"))
        .count();
    let others_are_params = m
        .args_fields
        .iter()
        .all(|f| matches!(f.role.as_deref(), Some("stream") | Some("param")));
    streams == 1 && others_are_params
}

/// How often readiness is polled while Python starts.
const READY_POLL: Duration = Duration::from_millis(10);

impl Bridge {
    /// Assembles the bridge.
    pub fn new(
        manifest: Manifest,
        translator: Translator,
        types: Arc<RpcTypes>,
        pool: DescriptorPool,
        hooks: HooksClient,
    ) -> Bridge {
        Bridge {
            manifest,
            translator,
            types,
            pool,
            hooks,
            python: RwLock::new(None),
            api: RwLock::new(None),
            broker: RwLock::new(None),
            ready: std::sync::Mutex::new(Arc::new(OnceCell::new())),
            restarts: std::sync::atomic::AtomicU32::new(0),
            startup_error: std::sync::OnceLock::new(),
            echo_hooks: false,
            deadlines: Deadlines::new(),
        }
    }

    /// Makes the generic hook path answer in the bridge itself ([`HooksClient::echo`]) instead
    /// of calling Python: the benchmark of the bridge's own share of a hook
    /// (`MMPLUG_BRIDGE_ECHO_HOOKS`). Python still starts, activates and serves the other hooks.
    pub fn echo_hooks(mut self) -> Bridge {
        self.echo_hooks = true;
        self
    }

    /// Records that Python could not be started; activation then fails with `reason` at once.
    pub fn startup_failed(&self, reason: String) {
        let _ = self.startup_error.set(reason);
    }

    /// The session's broker, from `OnActivate` on.
    pub fn broker(&self) -> Option<Broker> {
        self.broker.read().ok().and_then(|g| g.clone())
    }

    /// Whether the server has handed us its API (after `OnActivate` began).
    pub fn api_client(&self) -> Option<Arc<Client<Stream>>> {
        self.api.read().ok().and_then(|g| g.clone())
    }

    /// The Python process now running, if one was started.
    pub fn python(&self) -> Option<Arc<PythonProcess>> {
        self.python.read().ok().and_then(|g| g.clone())
    }

    /// [`Bridge::ready`], waited for no longer than hook `name`'s time limit: while the bridge
    /// restarts Python, a hook waits for it briefly, then gets the bridge's failure answer.
    pub async fn ready_within(&self, name: &str) -> Result<(), String> {
        // Every hook asks; almost always Python has long been ready. Then neither a timer
        // nor a copy of the list of hooks is needed.
        if let Ok(cell) = self.ready.lock()
            && let Some(Ok(_)) = cell.get()
        {
            return Ok(());
        }
        let limit = self.manifest.timeout_of(name);
        match self
            .deadlines
            .within(limit, std::pin::pin!(self.ready()))
            .await
        {
            Ok(ready) => ready.map(drop),
            Err(Elapsed) => Err(format!(
                "{name}: the plugin's Python was not ready within {} s",
                limit.as_secs_f64()
            )),
        }
    }

    /// Records the Python process just started.
    pub fn set_python(&self, process: PythonProcess) {
        if let Ok(mut g) = self.python.write() {
            *g = Some(Arc::new(process));
        }
    }

    /// Starts a new generation after Python died: hooks from now on wait for the process
    /// [`Bridge::set_python`] records next to be ready and reactivated.
    pub fn restarted(&self) {
        self.restarts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // No process until the new one is recorded: a hook waiting meanwhile must not take the
        // dead one's exit for the new one's failure.
        if let Ok(mut g) = self.python.write() {
            *g = None;
        }
        if let Ok(mut g) = self.ready.lock() {
            *g = Arc::new(OnceCell::new());
        }
    }

    /// Waits until Python serves its hooks (and, for a restarted process, has been given the
    /// server's configuration and activation again), then returns the hooks it implements.
    /// Fails with an explanation (and the tail of Python's stderr) if it exits or takes too
    /// long.
    pub async fn ready(&self) -> Result<Vec<String>, String> {
        let cell = match self.ready.lock() {
            Ok(g) => g.clone(),
            Err(_) => return Err("the bridge's readiness state is poisoned".into()),
        };
        cell.get_or_init(|| async {
            let hooks = self.wait_ready().await?;
            if self.restarts.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                self.reactivate(&hooks).await?;
            }
            Ok(hooks)
        })
        .await
        .clone()
    }

    /// Gives a restarted Python what the server gave the first one: OnConfigurationChange,
    /// then OnActivate (the API stream and broker are the bridge's and stay as they were).
    async fn reactivate(&self, implemented: &[String]) -> Result<(), String> {
        for hook in ["OnConfigurationChange", "OnActivate"] {
            if implemented.iter().any(|h| h == hook) {
                self.call_python_hook(hook)
                    .await
                    .map_err(|e| format!("{hook} failed in the restarted Python: {e}"))?;
            }
        }
        Ok(())
    }

    async fn wait_ready(&self) -> Result<Vec<String>, String> {
        let deadline = tokio::time::Instant::now() + self.manifest.ready_timeout;
        loop {
            if let Some(reason) = self.startup_error.get() {
                return Err(format!("cannot start the plugin's Python: {reason}"));
            }
            if let Some(py) = self.python()
                && let Some(status) = py.exit_status()
            {
                return Err(format!(
                    "the Python process exited during startup ({status}); its last output:\n{}",
                    py.stderr_tail().join("\n")
                ));
            }
            if let Ok(true) = self.hooks.is_serving().await {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let tail = self
                    .python()
                    .map(|p| p.stderr_tail().join("\n"))
                    .unwrap_or_default();
                return Err(format!(
                    "the Python process was not ready within {:?} (props.mmplug.ready_timeout_seconds in plugin.json); its last output:\n{tail}",
                    self.manifest.ready_timeout
                ));
            }
            // Python's lane HELLO is its readiness signal; the health check is polled for a
            // Python on gRPC.
            tokio::select! {
                () = tokio::time::sleep(READY_POLL) => {}
                () = self.hooks.lane().arrived() => {}
            }
        }
        let method = self
            .hook_method("Implemented")
            .map_err(|e| format!("{e:?}"))?;
        let req = self.envelope(&method)?;
        let resp = self
            .call_hook_limited("Implemented", &method, req)
            .await
            .map_err(|s| format!("Implemented failed in Python: {}", s.message()))?;
        let hooks = resp
            .get_field_by_number(2)
            .and_then(|v| {
                v.as_list().map(|l| {
                    l.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_default();
        let (hooks, unknown) = known_hooks(hooks, |h| {
            self.translator.schema().hook(h).is_some() && self.hooks.method(h).is_some()
        });
        if !unknown.is_empty() {
            // The server ignores names it does not know, but a newer server might know one the
            // bridge cannot translate, and would then call it: only bridged hooks are listed.
            log::log(
                Level::Error,
                "Python reported hooks this bridge does not have; the server is not told of them",
                &[("unknown", unknown.join(","))],
            );
        }
        log::log(
            Level::Info,
            "Python plugin ready",
            &[("hooks", hooks.join(","))],
        );
        self.gather_on_one_cpu();
        Ok(hooks)
    }

    /// Puts the bridge and the Python now running on one CPU, as plugin.json's `cpu_placement`
    /// asks (`cpu.rs` says why). A failure costs only speed: logged, the scheduler places them.
    fn gather_on_one_cpu(&self) {
        if self.manifest.cpu_placement != crate::cpu::Placement::Together {
            return;
        }
        let Some(py) = self.python() else { return };
        match crate::cpu::gather(py.pid()) {
            Ok(cpu) => log::log(
                Level::Debug,
                "the bridge and Python run on one CPU (cpu_placement \"together\")",
                &[("cpu", cpu.to_string())],
            ),
            Err(e) => log::log(
                Level::Warn,
                "could not put the bridge and Python on one CPU; the scheduler places them",
                &[("error", e.to_string())],
            ),
        }
    }

    fn hook_method(&self, name: &str) -> Result<MethodDescriptor, CallError> {
        self.hooks
            .method(name)
            .ok_or_else(|| CallError::Failed(format!("the protobuf contract has no hook {name}")))
    }

    /// A request message for `method` with its `RequestContext` (field 1) filled in.
    fn envelope(&self, method: &MethodDescriptor) -> Result<DynamicMessage, String> {
        let mut msg = DynamicMessage::new(method.input());
        self.set_context(&mut msg);
        Ok(msg)
    }

    fn set_context(&self, msg: &mut DynamicMessage) {
        if let Some(fd) = msg.descriptor().get_field(1)
            && let prost_reflect::Kind::Message(ctx) = fd.kind()
            && ctx
                .full_name()
                .strip_prefix(PACKAGE)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some("RequestContext")
        {
            let mut c = DynamicMessage::new(ctx);
            c.set_field_by_number(1, PbValue::String(self.manifest.id.clone()));
            msg.set_field(&fd, PbValue::Message(c));
        }
    }

    fn empty_reply(&self) -> Reply {
        Reply {
            ty: self.types.empty_struct(),
            value: GobValue::Struct(Struct::default()),
        }
    }

    /// The `Z_` returns struct type of a method.
    fn returns_type(&self, m: &Method) -> Result<gob::TypeId, CallError> {
        m.returns_struct
            .as_deref()
            .and_then(|n| self.translator.wire_struct(n))
            .ok_or_else(|| CallError::Failed(format!("no wire type for the returns of {}", m.name)))
    }

    // ===== hooks (server → Python) =====

    async fn hook(
        self: Arc<Self>,
        broker: Broker,
        name: String,
        args: GobValue,
    ) -> Result<Reply, CallError> {
        match name.as_str() {
            "Implemented" => {
                let hooks = self.ready().await.map_err(CallError::Failed)?;
                let ty = self
                    .translator
                    .type_of("[]string")
                    .ok_or_else(|| CallError::Failed("no []string type".into()))?;
                Ok(Reply {
                    ty,
                    value: GobValue::Slice(hooks.into_iter().map(GobValue::String).collect()),
                })
            }
            "OnActivate" => self.on_activate(&broker, &args).await,
            "ServeHTTP" | "ServeMetrics" => {
                crate::http::serve(self.clone(), broker, &name, args).await
            }
            "FileWillBeUploaded" => self.file_will_be_uploaded(&broker, args).await,
            _ => self.generic_hook(&name, args).await,
        }
    }

    async fn on_activate(&self, broker: &Broker, args: &GobValue) -> Result<Reply, CallError> {
        let id = |f: &str| match args {
            GobValue::Struct(s) => match s.get(f) {
                Some(GobValue::Uint(u)) => u32::try_from(*u).ok(),
                _ => None,
            },
            _ => None,
        };
        // Dial the API stream at once: the server waits only 5 s for it.
        let api_id = id("APIMuxId")
            .ok_or_else(|| CallError::Failed("OnActivate without APIMuxId".into()))?;
        let stream = broker
            .dial(api_id)
            .await
            .map_err(|e| CallError::Failed(format!("dialing the API stream: {e}")))?;
        if let Ok(mut g) = self.api.write() {
            *g = Some(Arc::new(Client::new(stream, self.types.clone())));
        }
        if let Ok(mut g) = self.broker.write() {
            *g = Some(broker.clone());
        }
        // The database driver stream: dialed so the server's accept does not time out; the
        // SQL passthrough is not offered to Python plugins.
        if let Some(drv) = id("DriverMuxId").filter(|i| *i != 0)
            && let Ok(s) = broker.dial(drv).await
        {
            tokio::spawn(async move {
                let _keep_open = s;
                std::future::pending::<()>().await;
            });
        }
        let implemented = self.ready().await.map_err(CallError::Failed)?;
        let returns = self
            .translator
            .schema()
            .hook("OnActivate")
            .ok_or_else(|| CallError::Failed("schema has no OnActivate".into()))?;
        let ty = self.returns_type(returns)?;
        // Go plugins run OnConfigurationChange once before OnActivate; a failure is logged,
        // not fatal, exactly as the Go plugin side does it.
        if implemented.iter().any(|h| h == "OnConfigurationChange")
            && let Err(e) = self.call_python_hook("OnConfigurationChange").await
        {
            log::log(
                Level::Error,
                "OnConfigurationChange failed before OnActivate",
                &[("error", e)],
            );
        }
        if !implemented.iter().any(|h| h == "OnActivate") {
            return Ok(Reply {
                ty,
                value: GobValue::Struct(Struct::default()),
            });
        }
        let method = self.hook_method("OnActivate")?;
        let req = self.envelope(&method).map_err(CallError::Failed)?;
        let resp = self
            .call_hook_limited("OnActivate", &method, req)
            .await
            .map_err(|s| {
                CallError::Failed(format!("OnActivate failed in Python: {}", s.message()))
            })?;
        let mut fields = Vec::new();
        if let Some(err) = response_error(&resp) {
            let v = self
                .translator
                .error_to_gob(&err)
                .map_err(|e| CallError::Failed(e.to_string()))?;
            fields.push(("A".to_string(), v));
        }
        Ok(Reply {
            ty,
            value: GobValue::Struct(Struct::new(fields)),
        })
    }

    /// Calls hook `name` in Python within its time limit (plugin.json); past it the server gets
    /// its answer without Python (DEADLINE_EXCEEDED here) and the call is cancelled on the
    /// Python side (async handlers see the cancellation; a sync one runs on in its thread).
    async fn call_hook_limited(
        &self,
        name: &str,
        method: &MethodDescriptor,
        req: DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let limit = self.manifest.timeout_of(name);
        match self
            .deadlines
            .within(limit, std::pin::pin!(self.hooks.call(method, req)))
            .await
        {
            Ok(result) => result,
            Err(Elapsed) => Err(Status::deadline_exceeded(format!(
                "{name} did not answer within {} s (props.mmplug.hook_timeout_seconds or hook_timeouts in plugin.json)",
                limit.as_secs_f64()
            ))),
        }
    }

    /// Calls a parameterless hook; the error text if it failed.
    async fn call_python_hook(&self, name: &str) -> Result<(), String> {
        let method = self.hook_method(name).map_err(|e| format!("{e:?}"))?;
        let req = self.envelope(&method)?;
        let resp = self
            .call_hook_limited(name, &method, req)
            .await
            .map_err(|s| s.message().to_string())?;
        match response_error(&resp) {
            Some(err) => Err(describe_error(&err)),
            None => Ok(()),
        }
    }

    async fn generic_hook(&self, name: &str, args: GobValue) -> Result<Reply, CallError> {
        let Some(m) = self.translator.hook(name) else {
            return Err(CallError::UnknownMethod);
        };
        if !m.regular {
            return Err(CallError::Failed(format!("hook {name} is not bridged yet")));
        }
        let has_error_slot = has_error_result(m);
        // A Go hook without an error result has nowhere to put a failure. The bridge then
        // answers "unchanged" (each result that replaces an argument gets that argument back):
        // zero values would make the server drop the posts of MessagesWillBeConsumed or reject
        // an edit in MessageWillBeUpdated; with the arguments echoed, nothing is lost.
        let unchanged = |why: String| -> Result<Reply, CallError> {
            log::log(
                Level::Error,
                &format!(
                    "{name} failed in Python; the server proceeds as if the hook changed nothing"
                ),
                &[("error", why)],
            );
            Ok(Reply {
                ty: self.returns_type(m)?,
                value: self.translator.unchanged_returns(m, &args),
            })
        };
        match self.run_hook(name, m, &args).await {
            Ok(reply) => Ok(reply),
            // The plugin's own exception: the documented behaviour (guide, "Errors").
            Err(HookFailure::Plugin(why)) if !has_error_slot => unchanged(why),
            Err(HookFailure::Plugin(why)) => Err(CallError::Failed(why)),
            Err(HookFailure::Bridge(why)) => {
                if let Some(reply) = self.failed_gate(name, m, &why)? {
                    return Ok(reply);
                }
                if has_error_slot {
                    Err(CallError::Failed(why))
                } else {
                    unchanged(why)
                }
            }
        }
    }

    /// Translates a hook call, runs it in Python and translates the answer back.
    async fn run_hook(
        &self,
        name: &str,
        m: &Method,
        args: &GobValue,
    ) -> Result<Reply, HookFailure> {
        self.ready_within(name).await.map_err(HookFailure::Bridge)?;
        let method = self
            .hook_method(name)
            .map_err(|e| HookFailure::Bridge(format!("{e:?}")))?;
        let mut req = self
            .translator
            .wire_to_message(m, false, args, &method.input())
            .map_err(|e| HookFailure::Bridge(format!("translating {name} for Python: {e}")))?;
        self.set_context(&mut req);
        let answer = if self.echo_hooks {
            self.hooks.echo(&method, &req)
        } else {
            self.call_hook_limited(name, &method, req).await
        };
        let resp = answer.map_err(|status| {
            HookFailure::Bridge(format!("{name} failed in Python: {}", status.message()))
        })?;
        // A hook with an error result carries the plugin's AppError to the server in it.
        if let Some(err) = response_error(&resp)
            && !has_error_result(m)
        {
            return Err(HookFailure::Plugin(describe_error(&err)));
        }
        let value = self
            .translator
            .message_to_wire(m, true, &resp, Some(args), &[])
            .map_err(|e| HookFailure::Bridge(format!("translating the reply of {name}: {e}")))?;
        let ty = self
            .returns_type(m)
            .map_err(|e| HookFailure::Bridge(format!("{e:?}")))?;
        Ok(Reply { ty, value })
    }

    /// The answer of gating hook `name` (its last result is a rejection reason) when the bridge
    /// could not get Python's decision and plugin.json's policy for it is `reject`: the reason
    /// alone, so the server turns the post, edit or upload away. `None` for any other hook or
    /// policy. Either way the failure is logged with its cause.
    fn failed_gate(&self, name: &str, m: &Method, why: &str) -> Result<Option<Reply>, CallError> {
        let Some(reason_field) = gate_reason_field(m) else {
            return Ok(None);
        };
        if self.manifest.failure_policy_of(name) != FailurePolicy::Reject {
            return Ok(None);
        }
        log::log(
            Level::Error,
            &format!(
                "{name}: the bridge could not get the plugin's decision, so it was rejected \
                 (props.mmplug.on_failure in plugin.json)"
            ),
            &[("error", why.to_string())],
        );
        let reason = format!(
            "{} could not check this and did not let it through",
            self.manifest.id
        );
        Ok(Some(Reply {
            ty: self.returns_type(m)?,
            value: GobValue::Struct(Struct::new(vec![(
                reason_field.to_string(),
                GobValue::String(reason),
            )])),
        }))
    }

    // ===== API (Python → server) =====

    async fn api_call(
        self: Arc<Self>,
        method: MethodDescriptor,
        request: DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let name = method.name().to_string();
        let Some(m) = self.translator.api_method(&name) else {
            return Err(Status::unimplemented(format!("unknown API method {name}")));
        };
        let client = self
            .api_client()
            .ok_or_else(|| Status::failed_precondition(format!("{name}: the server's API is available from OnActivate on (the server has not activated the plugin yet)")))?;
        let (args_ty, args) = if name == "LoadPluginConfiguration" {
            // The wire shape is Z_LoadPluginConfigurationArgsArgs{} → {A []byte}.
            let ty = m
                .args_struct
                .as_deref()
                .and_then(|n| self.translator.wire_struct(n))
                .ok_or_else(|| Status::internal("no wire type for LoadPluginConfiguration"))?;
            (ty, GobValue::Struct(Struct::default()))
        } else if m.regular {
            let ty = m
                .args_struct
                .as_deref()
                .and_then(|n| self.translator.wire_struct(n))
                .ok_or_else(|| Status::internal(format!("no wire type for {name}")))?;
            let args = self
                .translator
                .message_to_wire(m, false, &request, None, &[])
                .map_err(|e| Status::invalid_argument(format!("{name}: {e}")))?;
            (ty, args)
        } else {
            return Err(Status::unimplemented(format!(
                "{name} needs a streaming path that this bridge does not have yet"
            )));
        };
        let reply = client
            .call(&format!("Plugin.{name}"), args_ty, &args)
            .await
            .map_err(|e| rpc_status(m, e))?;
        if name == "LoadPluginConfiguration" {
            let mut resp = DynamicMessage::new(method.output());
            if let GobValue::Struct(s) = &reply
                && let Some(GobValue::Bytes(b)) = s.get("A")
            {
                resp.set_field_by_number(2, PbValue::Bytes(b.clone().into()));
            }
            return Ok(resp);
        }
        self.translator
            .wire_to_message(m, true, &reply, &method.output())
            .map_err(|e| Status::internal(format!("translating the reply of {name}: {e}")))
    }
}

/// Splits the hook names Python reported into those the bridge has (`is_hook`), each once, in
/// the order reported, and the rest. `Implemented` itself is never a hook to report.
fn known_hooks(
    reported: Vec<String>,
    is_hook: impl Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut known: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for name in reported {
        if name != "Implemented" && is_hook(&name) {
            if !known.contains(&name) {
                known.push(name);
            }
        } else if !unknown.contains(&name) {
            unknown.push(name);
        }
    }
    (known, unknown)
}

/// A net/rpc failure of an API call as a gRPC status the SDK maps to `PluginAPIError`.
pub(crate) fn rpc_status(m: &Method, e: RpcError) -> Status {
    match e {
        RpcError::Server(text) if text.starts_with("rpc: can't find") => {
            let since = m
                .min_server_version
                .as_deref()
                .map(|v| format!(" (it needs Mattermost {v} or newer)"))
                .unwrap_or_default();
            Status::unimplemented(format!(
                "this Mattermost server does not have the API method {}{since}: {text}",
                m.name
            ))
        }
        RpcError::Server(text) => Status::internal(format!("{}: {text}", m.name)),
        RpcError::Shutdown => Status::unavailable(format!(
            "{}: the connection to the server is shut down",
            m.name
        )),
        other => Status::internal(format!("{}: {other}", m.name)),
    }
}

/// The "hooks" plugin the server dispenses.
#[derive(Debug)]
pub struct HooksPlugin(pub Arc<Bridge>);

impl Plugin for HooksPlugin {
    fn server(&self, broker: &Broker) -> Result<Arc<dyn Service>, String> {
        Ok(Arc::new(HooksService {
            bridge: self.0.clone(),
            broker: broker.clone(),
        }))
    }
}

#[derive(Debug)]
struct HooksService {
    bridge: Arc<Bridge>,
    broker: Broker,
}

impl Service for HooksService {
    fn call(&self, method: &str, args: GobValue) -> BoxFuture<Result<Reply, CallError>> {
        let bridge = self.bridge.clone();
        let broker = self.broker.clone();
        let name = method.to_string();
        Box::pin(async move { bridge.hook(broker, name, args).await })
    }
}

/// The `PluginAPI` backend.
#[derive(Debug)]
pub struct ApiBridge(pub Arc<Bridge>);

impl ApiBackend for ApiBridge {
    fn call_bidi(
        &self,
        method: MethodDescriptor,
        requests: tonic::Streaming<DynamicMessage>,
    ) -> Pin<Box<dyn Future<Output = Result<crate::grpc::ResponseStream, Status>> + Send>> {
        Box::pin(crate::http::plugin_http(self.0.clone(), method, requests))
    }

    fn call_client_stream(
        &self,
        method: MethodDescriptor,
        requests: tonic::Streaming<DynamicMessage>,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
        Box::pin(self.0.clone().api_upload(method, requests))
    }

    fn call(
        &self,
        method: MethodDescriptor,
        request: DynamicMessage,
    ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
        Box::pin(self.0.clone().api_call(method, request))
    }
}

impl Bridge {
    /// An empty `struct{}` reply (what `ServeHTTP` answers).
    pub fn empty(&self) -> Reply {
        self.empty_reply()
    }
}

// ===== byte streams =====

/// The oneof field set in a stream part, and its value.
pub(crate) fn part_of(msg: &DynamicMessage) -> Option<(u32, PbValue)> {
    let field = msg
        .descriptor()
        .oneofs()
        .next()
        .and_then(|o| o.fields().find(|f| msg.has_field(f)))?;
    Some((field.number(), msg.get_field(&field).into_owned()))
}

impl Bridge {
    /// An API call whose Go signature takes an `io.Reader` (InstallPlugin, UploadData,
    /// ReceiveSharedChannelAttachmentSyncMsg): Python streams `init` then chunks; the bridge
    /// allocates a broker id, serves the chunks on it with the io-reader protocol as the server
    /// reads them, and makes the call with that id in the stream field.
    async fn api_upload(
        self: Arc<Self>,
        method: MethodDescriptor,
        mut requests: tonic::Streaming<DynamicMessage>,
    ) -> Result<DynamicMessage, Status> {
        use futures::StreamExt;
        let name = method.name().to_string();
        let m = self
            .translator
            .schema()
            .api_method(&name)
            .ok_or_else(|| Status::unimplemented(format!("unknown API method {name}")))?;
        let stream_fields: Vec<&str> = m
            .args_fields
            .iter()
            .filter(|f| f.role.as_deref() == Some("stream"))
            .map(|f| f.name.as_str())
            .collect();
        let [stream_field] = stream_fields[..] else {
            return Err(Status::unimplemented(format!(
                "{name} has {} byte streams; only single-stream uploads are bridged",
                stream_fields.len()
            )));
        };
        let client = self.api_client().ok_or_else(|| {
            Status::failed_precondition(format!(
                "{name}: the server's API is available from OnActivate on"
            ))
        })?;
        let broker = self.broker().ok_or_else(|| {
            Status::failed_precondition(format!("{name}: no broker before OnActivate"))
        })?;
        let init = match requests.next().await {
            Some(Ok(first)) => match part_of(&first) {
                Some((1, PbValue::Message(init))) => init,
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "{name}: the first part of the stream must be `init`"
                    )));
                }
            },
            Some(Err(status)) => return Err(status),
            None => {
                return Err(Status::invalid_argument(format!(
                    "{name}: empty request stream"
                )));
            }
        };
        let id = broker.next_id();
        let chunks = requests.map(move |part| match part {
            Ok(p) => match part_of(&p) {
                Some((2, PbValue::Bytes(b))) => Ok(b),
                _ => Err(Status::invalid_argument(
                    "after `init`, only `chunk` parts may follow",
                )),
            },
            Err(status) => Err(status),
        });
        let server_side = broker.clone();
        let feeder = tokio::spawn(async move {
            match server_side.accept(id).await {
                Ok(stream) => {
                    if let Err(e) = crate::ioreader::serve(stream, Box::pin(chunks)).await {
                        log::log(
                            Level::Warn,
                            "serving an upload to the server failed",
                            &[("error", e.to_string())],
                        );
                    }
                }
                Err(e) => log::log(
                    Level::Warn,
                    "the server never read the upload",
                    &[("error", e.to_string())],
                ),
            }
        });
        let args_ty = m
            .args_struct
            .as_deref()
            .and_then(|n| self.translator.wire_struct(n))
            .ok_or_else(|| Status::internal(format!("no wire type for {name}")))?;
        let args = self
            .translator
            .message_to_wire(
                m,
                false,
                &init,
                None,
                &[(stream_field, GobValue::Uint(u64::from(id)))],
            )
            .map_err(|e| Status::invalid_argument(format!("{name}: {e}")))?;
        let reply = client.call(&format!("Plugin.{name}"), args_ty, &args).await;
        // The server has read what it wanted by the time it replies.
        feeder.abort();
        let reply = reply.map_err(|e| rpc_status(m, e))?;
        self.translator
            .wire_to_message(m, true, &reply, &method.output())
            .map_err(|e| Status::internal(format!("translating the reply of {name}: {e}")))
    }

    /// `FileWillBeUploaded`: the upload arrives on a broker stream the server serves with the
    /// io-reader protocol and goes to Python chunk by chunk; the replacement bytes Python writes
    /// go to the server's replacement stream as they arrive, which is closed in every case (the
    /// server reads it to EOF after the call returns).
    async fn file_will_be_uploaded(
        &self,
        broker: &Broker,
        args: GobValue,
    ) -> Result<Reply, CallError> {
        // Every failure below is the bridge's (the plugin's own exception is answered inside).
        match self.relay_upload(broker, args).await {
            Err(CallError::Failed(why)) => {
                let m = self
                    .translator
                    .schema()
                    .hook("FileWillBeUploaded")
                    .ok_or_else(|| CallError::Failed("schema has no FileWillBeUploaded".into()))?;
                match self.failed_gate("FileWillBeUploaded", m, &why)? {
                    Some(reply) => Ok(reply),
                    None => Err(CallError::Failed(why)),
                }
            }
            other => other,
        }
    }

    async fn relay_upload(&self, broker: &Broker, args: GobValue) -> Result<Reply, CallError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let id = |f: &str| match &args {
            GobValue::Struct(s) => match s.get(f) {
                Some(GobValue::Uint(u)) => u32::try_from(*u).ok(),
                _ => None,
            },
            _ => None,
        };
        let upload_id = id("UploadedFileStream").ok_or_else(|| {
            CallError::Failed("FileWillBeUploaded without UploadedFileStream".into())
        })?;
        let replacement_id = id("ReplacementFileStream").ok_or_else(|| {
            CallError::Failed("FileWillBeUploaded without ReplacementFileStream".into())
        })?;
        let mut upload = broker
            .dial(upload_id)
            .await
            .map_err(|e| CallError::Failed(format!("dialing the upload stream: {e}")))?;
        let mut replacement = broker
            .dial(replacement_id)
            .await
            .map_err(|e| CallError::Failed(format!("dialing the replacement stream: {e}")))?;
        let result = async {
            self.ready_within("FileWillBeUploaded")
                .await
                .map_err(CallError::Failed)?;
            let m = self
                .translator
                .schema()
                .hook("FileWillBeUploaded")
                .ok_or_else(|| CallError::Failed("schema has no FileWillBeUploaded".into()))?;
            let method = self.hook_method("FileWillBeUploaded")?;
            let part_desc = method.input();
            let init_fd = part_desc
                .get_field(1)
                .ok_or_else(|| CallError::Failed("request part has no init".into()))?;
            let prost_reflect::Kind::Message(init_desc) = init_fd.kind() else {
                return Err(CallError::Failed("init is not a message".into()));
            };
            let mut init = self
                .translator
                .wire_to_message(m, false, &args, &init_desc)
                .map_err(|e| {
                    CallError::Failed(format!("translating FileWillBeUploaded for Python: {e}"))
                })?;
            self.set_context(&mut init);
            let (tx, rx) = tokio::sync::mpsc::channel::<DynamicMessage>(4);
            let mut first = DynamicMessage::new(part_desc.clone());
            first.set_field(&init_fd, PbValue::Message(init));
            tx.send(first)
                .await
                .map_err(|_| CallError::Failed("request stream closed".into()))?;
            let pump = tokio::spawn(async move {
                let _ = crate::ioreader::pull(&mut upload, |chunk| {
                    let tx = tx.clone();
                    let mut part = DynamicMessage::new(part_desc.clone());
                    part.set_field_by_number(2, PbValue::Bytes(chunk));
                    async move { tx.send(part).await.is_ok() }
                })
                .await;
                // Dropping the sender ends the request stream: EOF of the upload for Python.
            });
            let mut responses = self
                .hooks
                .streaming(&method, tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|s| {
                    CallError::Failed(format!(
                        "FileWillBeUploaded failed in Python: {}",
                        s.message()
                    ))
                })?;
            let mut outcome = None;
            while let Some(item) = responses.next().await {
                let part = item.map_err(|s| {
                    CallError::Failed(format!(
                        "FileWillBeUploaded failed in Python: {}",
                        s.message()
                    ))
                })?;
                match part_of(&part) {
                    Some((1, PbValue::Bytes(b))) => {
                        replacement.write_all(&b).await.map_err(|e| {
                            CallError::Failed(format!("writing the replacement file: {e}"))
                        })?
                    }
                    Some((2, PbValue::Message(res))) => {
                        outcome = Some(res);
                        break;
                    }
                    _ => {}
                }
            }
            pump.abort();
            let res = outcome.ok_or_else(|| {
                CallError::Failed(
                    "FileWillBeUploaded: Python ended the stream without a result".into(),
                )
            })?;
            if let Some(err) = response_error(&res) {
                log::log(
                    Level::Error,
                    "FileWillBeUploaded raised in Python; the upload proceeds unchanged",
                    &[("error", describe_error(&err))],
                );
                return Ok(GobValue::Struct(Struct::default()));
            }
            self.translator
                .message_to_wire(m, true, &res, Some(&args), &[])
                .map_err(|e| {
                    CallError::Failed(format!("translating the reply of FileWillBeUploaded: {e}"))
                })
        }
        .await;
        // Always close the replacement stream: the server reads it to EOF after the reply.
        let _ = replacement.shutdown().await;
        let value = result?;
        let m = self
            .translator
            .schema()
            .hook("FileWillBeUploaded")
            .ok_or_else(|| CallError::Failed("schema has no FileWillBeUploaded".into()))?;
        Ok(Reply {
            ty: self.returns_type(m)?,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tonic::transport::{Channel, Endpoint};

    use crate::grpc::{ApiBackend, ApiService, ResponseStream};

    const PLUGIN_ID: &str = "com.example.gate";
    const TOKEN: &str = "hooks-test-token";
    /// What a gating hook answers when the bridge rejects for the plugin (`failed_gate`).
    const REJECTION: &str = "com.example.gate could not check this and did not let it through";
    /// Longer than any time limit in these tests: a hook still unanswered then was never
    /// going to be.
    const NEVER: Duration = Duration::from_secs(3600);

    /// What the stand-in for the Python process does with a hook call.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Python {
        /// Never answers (a handler stuck in a loop, or waiting on something that never comes).
        Hangs,
        /// The plugin's handler raises: the response carries its AppError.
        Raises,
        /// Nothing answers on the hooks socket (Python died, or has not started serving).
        Unreachable,
    }

    /// Python's `PluginHooks` side, served in memory by the bridge's own generic gRPC service.
    #[derive(Debug)]
    struct FakePython {
        behaviour: Python,
        /// Set when a call it never answered was dropped: the bridge cancelled it.
        cancelled: Arc<AtomicBool>,
    }

    /// Sets its flag when dropped.
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl ApiBackend for FakePython {
        fn call(
            &self,
            method: MethodDescriptor,
            _request: DynamicMessage,
        ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
            match self.behaviour {
                Python::Hangs => {
                    let cancelled = SetOnDrop(self.cancelled.clone());
                    Box::pin(async move {
                        let _cancelled = cancelled;
                        std::future::pending().await
                    })
                }
                Python::Raises => {
                    let mut response = DynamicMessage::new(method.output());
                    let error_field = response.descriptor().get_field(1).unwrap();
                    let mut error =
                        DynamicMessage::new(error_field.kind().as_message().unwrap().clone());
                    error.set_field_by_name("id", PbValue::String("plugin.handler.raised".into()));
                    error
                        .set_field_by_name("message", PbValue::String("the handler raised".into()));
                    response.set_field(&error_field, PbValue::Message(error));
                    Box::pin(async move { Ok(response) })
                }
                Python::Unreachable => unreachable!("nothing is served when Python is unreachable"),
            }
        }

        fn call_client_stream(
            &self,
            _method: MethodDescriptor,
            _requests: tonic::Streaming<DynamicMessage>,
        ) -> Pin<Box<dyn Future<Output = Result<DynamicMessage, Status>> + Send>> {
            Box::pin(async { Err(Status::unimplemented("no streaming hooks in these tests")) })
        }

        fn call_bidi(
            &self,
            _method: MethodDescriptor,
            _requests: tonic::Streaming<DynamicMessage>,
        ) -> Pin<Box<dyn Future<Output = Result<ResponseStream, Status>> + Send>> {
            Box::pin(async { Err(Status::unimplemented("no streaming hooks in these tests")) })
        }
    }

    /// A channel to `python`: each connection is an in-memory stream to a gRPC server of its
    /// own (no socket, so tokio's paused clock stays in charge), or refused if Python is
    /// unreachable.
    fn channel_to(python: Arc<FakePython>, hooks: prost_reflect::ServiceDescriptor) -> Channel {
        Endpoint::from_static("http://python.test").connect_with_connector_lazy(tower::service_fn(
            move |_: http::Uri| {
                let python = python.clone();
                let service = ApiService::new(hooks.clone(), TOKEN, python.clone());
                async move {
                    if python.behaviour == Python::Unreachable {
                        return Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
                    }
                    let (bridge_end, python_end) = tokio::io::duplex(1 << 16);
                    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
                        service,
                        tokio_stream::once(Ok::<_, std::io::Error>(python_end)),
                    ));
                    Ok(hyper_util::rt::TokioIo::new(bridge_end))
                }
            },
        ))
    }

    /// A bridge for plugin [`PLUGIN_ID`] with `props.mmplug` = `mmplug_props`, whose Python
    /// is ready and behaves as `behaviour`.
    fn bridge_with(mmplug_props: &str, behaviour: Python) -> (Bridge, Arc<FakePython>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("plugin.json"),
            format!(r#"{{"id":"{PLUGIN_ID}","props":{{"mmplug":{mmplug_props}}}}}"#),
        )
        .unwrap();
        let manifest = Manifest::load(dir.path()).unwrap();
        let (translator, types, pool) = crate::run::load_contract().unwrap();
        let service = pool
            .get_service_by_name(&format!("{PACKAGE}.PluginHooks"))
            .unwrap();
        let python = Arc::new(FakePython {
            behaviour,
            cancelled: Arc::new(AtomicBool::new(false)),
        });
        let hooks = HooksClient::new(channel_to(python.clone(), service.clone()), service, TOKEN);
        let bridge = Bridge::new(manifest, translator, types, pool, hooks);
        // Python is up and activated: readiness is not what these tests are about.
        bridge.ready.lock().unwrap().set(Ok(Vec::new())).unwrap();
        (bridge, python)
    }

    /// The server's call of hook `name`, with how long it took to be answered.
    async fn call_hook(
        bridge: &Bridge,
        name: &str,
        args: GobValue,
    ) -> (Result<GobValue, CallError>, Duration) {
        let started = tokio::time::Instant::now();
        let answer = tokio::time::timeout(NEVER, bridge.generic_hook(name, args))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{name} was still waiting for Python after {NEVER:?}: the hook's time limit \
                     was not applied"
                )
            });
        (answer.map(|reply| reply.value), started.elapsed())
    }

    fn post() -> GobValue {
        GobValue::Struct(Struct::new(vec![
            ("Id".into(), GobValue::String("post-id".into())),
            ("Message".into(), GobValue::String("hello".into())),
        ]))
    }

    /// `Z_<hook>Args` / `Z_<hook>Returns` values: the fields by name.
    fn fields(fields: &[(&str, GobValue)]) -> GobValue {
        GobValue::Struct(Struct::new(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ))
    }

    /// A hook Python does not answer is abandoned at its time limit from plugin.json, not
    /// later (tokio's paused clock: the 5 s cost nothing), and the call in Python is
    /// cancelled.
    #[tokio::test(start_paused = true)]
    async fn a_hook_python_does_not_answer_is_abandoned_at_its_time_limit() {
        let (bridge, python) = bridge_with(
            r#"{"hook_timeouts":{"MessageWillBePosted":5}}"#,
            Python::Hangs,
        );
        let args = fields(&[("B", post())]);
        let (answer, took) = call_hook(&bridge, "MessageWillBePosted", args).await;
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_millis(5010),
            "MessageWillBePosted was answered after {took:?}, not at its limit of 5 s"
        );
        assert_eq!(
            answer,
            Ok(fields(&[("B", GobValue::String(REJECTION.into()))])),
            "past its time limit, MessageWillBePosted must be rejected (its default on_failure)"
        );
        // Let the cancellation reach the server side.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            python.cancelled.load(Ordering::SeqCst),
            "the hook call Python never answered was not cancelled"
        );

        // Without a per-hook limit, the plugin's default applies.
        let (bridge, _python) = bridge_with(r#"{"hook_timeout_seconds":7}"#, Python::Hangs);
        let (answer, took) = call_hook(&bridge, "OnDeactivate", fields(&[])).await;
        assert!(
            took >= Duration::from_secs(7) && took < Duration::from_millis(7010),
            "OnDeactivate was answered after {took:?}, not at the default limit of 7 s"
        );
        let Err(CallError::Failed(why)) = answer else {
            panic!("OnDeactivate answered {answer:?}; want its error result");
        };
        assert!(
            why.contains("OnDeactivate did not answer within 7 s"),
            "{why}"
        );
    }

    /// Checks hook `hook`'s answer to `args` from a bridge with `props.mmplug` = `props` whose
    /// Python behaves as `python`.
    async fn expect_answer(
        hook: &str,
        props: &str,
        python: Python,
        args: &GobValue,
        want: Result<GobValue, CallError>,
    ) {
        let (bridge, _python) = bridge_with(props, python);
        let (got, _) = call_hook(&bridge, hook, args.clone()).await;
        assert_eq!(
            got, want,
            "{hook} with Python {python:?} and props.mmplug {props}: the server got the left \
             answer, want the right one"
        );
    }

    /// What the server gets when the bridge has no answer of Python's (docs/internals.md §5):
    /// a gating hook rejects when its policy says so (by default the content hooks), and
    /// otherwise, like every hook without an error result, answers "unchanged" (each result
    /// that replaces an argument gets that argument back); a plugin's own exception is its
    /// decision, and answers "unchanged" too. (A hook with an error result gets the error: see
    /// the time-limit test.)
    #[tokio::test(start_paused = true)]
    async fn a_hook_without_pythons_answer_follows_the_failure_policy() {
        let rejected = |field: &str| Ok(fields(&[(field, GobValue::String(REJECTION.into()))]));
        let posted = fields(&[("B", post())]);
        let unchanged_post = Ok(fields(&[("A", post())]));
        // Content hooks fail closed by default, unless plugin.json lets them through.
        let allow = r#"{"on_failure":{"MessageWillBePosted":"allow"}}"#;
        for python in [Python::Hangs, Python::Unreachable] {
            expect_answer("MessageWillBePosted", "{}", python, &posted, rejected("B")).await;
            expect_answer(
                "MessageWillBePosted",
                allow,
                python,
                &posted,
                unchanged_post.clone(),
            )
            .await;
        }
        // The plugin's handler raised: the plugin decided, and the post goes on unchanged.
        let python = Python::Raises;
        expect_answer("MessageWillBePosted", "{}", python, &posted, unchanged_post).await;

        // Other gating hooks fail open by default, closed when plugin.json says so.
        let login = fields(&[("B", GobValue::Struct(Struct::default()))]);
        let reject = r#"{"on_failure":{"UserWillLogIn":"reject"}}"#;
        for python in [Python::Hangs, Python::Unreachable] {
            expect_answer("UserWillLogIn", "{}", python, &login, Ok(fields(&[]))).await;
            expect_answer("UserWillLogIn", reject, python, &login, rejected("A")).await;
        }

        // Not gating, no error result: "unchanged" keeps the posts.
        let consumed = fields(&[("A", GobValue::Slice(vec![post()]))]);
        for python in [Python::Hangs, Python::Unreachable, Python::Raises] {
            expect_answer(
                "MessagesWillBeConsumed",
                "{}",
                python,
                &consumed,
                Ok(consumed.clone()),
            )
            .await;
        }
    }

    #[test]
    fn implemented_lists_only_bridged_hooks_once() {
        let schema = crate::schema::embedded().unwrap();
        let reported = [
            "OnActivate",
            "NoSuchHook",
            "ServeHTTP",
            "ServeHTTP",
            "Implemented",
            "",
            "serveHTTP",
            "NoSuchHook",
        ]
        .map(String::from)
        .to_vec();
        let (known, unknown) = known_hooks(reported, |h| schema.hook(h).is_some());
        assert_eq!(known, ["OnActivate", "ServeHTTP"]);
        assert_eq!(unknown, ["NoSuchHook", "Implemented", "", "serveHTTP"]);
    }

    /// Our `apiverify`: every API method and hook of the pinned module has a path through the
    /// bridge. A schema update that brings an irregular method fails here until it gets one.
    #[test]
    fn every_api_method_and_hook_has_a_path() {
        let schema = crate::schema::embedded().unwrap();
        let mut missing = Vec::new();
        for m in &schema.api {
            if !(m.regular || API_WITH_OWN_PATH.contains(&m.name.as_str()) || is_upload_shape(m)) {
                missing.push(format!("API {}", m.name));
            }
        }
        for h in &schema.hooks {
            if !(h.regular || HOOKS_WITH_OWN_PATH.contains(&h.name.as_str())) {
                missing.push(format!("hook {}", h.name));
            }
        }
        assert!(missing.is_empty(), "no bridge path for: {missing:?}");
        assert_eq!(
            schema.api.len(),
            258,
            "API methods of server/public {}",
            schema.version
        );
        assert_eq!(
            schema.hooks.len(),
            52,
            "hooks (with Implemented) of server/public {}",
            schema.version
        );
    }
}
