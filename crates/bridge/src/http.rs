//! `ServeHTTP` and `ServeMetrics`: the server's response-writer and request-body broker
//! streams on one side, one bidirectional gRPC stream to Python on the other.
//!
//! Nothing is buffered whole: the request body is pulled from the server in 64 KiB requests
//! (go-plugin's io-reader protocol) and forwarded chunk by chunk as it arrives; each response
//! part Python sends becomes a response-writer call (`SyncHeader`, `WriteHeader`, `Write`,
//! `Flush`) as it arrives. The reply to `Plugin.ServeHTTP` goes out only after every write was
//! acknowledged, because the server finishes the HTTP response when the call returns
//! (docs/internals.md, "ServeHTTP").

use std::sync::Arc;

use gob::{Struct, Value as GobValue};
use goplugin::Broker;
use goplugin::netrpc::{CallError, Client, Reply};
use goplugin::yamux::Stream;
use prost_reflect::{
    DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as PbValue,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use crate::bridge::Bridge;
use crate::ioreader;
use crate::log::{self, Level};
use crate::translate::lossy_text;

fn field<'a>(v: &'a GobValue, name: &str) -> Option<&'a GobValue> {
    match v {
        GobValue::Struct(s) => s.get(name),
        _ => None,
    }
}

fn uint_field(v: &GobValue, name: &str) -> u32 {
    match field(v, name) {
        Some(GobValue::Uint(u)) => u32::try_from(*u).unwrap_or(0),
        _ => 0,
    }
}

fn str_field(v: &GobValue, name: &str) -> String {
    match field(v, name) {
        Some(GobValue::String(s)) => s.clone(),
        // Not UTF-8 (a client's raw bytes): the replaced text, as for every Go string
        // (docs/internals.md, "Strings that are not UTF-8").
        Some(GobValue::NonUtf8String(b) | GobValue::Encoded(b)) => lossy_text(b),
        _ => String::new(),
    }
}

/// A Go string as text: any bytes that are not UTF-8 replaced (docs/internals.md, "Strings
/// that are not UTF-8"); `None` if `v` is not a string.
fn text(v: &GobValue) -> Option<String> {
    match v {
        GobValue::String(s) => Some(s.clone()),
        GobValue::NonUtf8String(b) => Some(lossy_text(b)),
        _ => None,
    }
}

fn failed(what: impl std::fmt::Display) -> CallError {
    CallError::Failed(what.to_string())
}

/// Serves one `ServeHTTP`/`ServeMetrics` call.
pub async fn serve(
    bridge: Arc<Bridge>,
    broker: Broker,
    hook: &str,
    args: GobValue,
) -> Result<Reply, CallError> {
    // Dial both streams first: the server accepts each within 5 s only.
    let writer_id = uint_field(&args, "ResponseWriterStream");
    let writer_stream = broker
        .dial(writer_id)
        .await
        .map_err(|e| failed(format!("dialing the response stream: {e}")))?;
    let writer = ResponseWriter::new(Client::new(writer_stream, bridge.types.clone()), &bridge)?;
    let body_id = uint_field(&args, "RequestBodyStream");
    let body = if body_id != 0 {
        Some(
            broker
                .dial(body_id)
                .await
                .map_err(|e| failed(format!("dialing the request body stream: {e}")))?,
        )
    } else {
        None
    };
    bridge.ready_within(hook).await.map_err(failed)?;
    let method = bridge
        .hooks
        .method(hook)
        .ok_or_else(|| failed(format!("the protobuf contract has no hook {hook}")))?;
    let part_desc = method.input();
    let init = request_init(&bridge, &part_desc, &args, body.is_some())?;

    let (tx, rx) = mpsc::channel::<DynamicMessage>(4);
    tx.send(init)
        .await
        .map_err(|_| failed("Python closed the request stream"))?;
    let pump = tokio::spawn(pump_body(body, tx, part_desc.clone()));
    let result = relay_response(&bridge, &method, rx, &writer, hook).await;
    // An early response leaves the body unread: stop pulling it.
    pump.abort();
    result?;
    Ok(bridge.empty())
}

/// Builds the first request part from `Z_ServeHTTPArgs.Request` (an `HTTPRequestSubset`).
fn request_init(
    bridge: &Bridge,
    part_desc: &MessageDescriptor,
    args: &GobValue,
    has_body: bool,
) -> Result<DynamicMessage, CallError> {
    let init_fd = part_desc
        .get_field(1)
        .ok_or_else(|| failed("HTTPRequestPart has no init"))?;
    let Kind::Message(init_desc) = init_fd.kind() else {
        return Err(failed("HTTPRequestPart.init is not a message"));
    };
    let mut init = DynamicMessage::new(init_desc.clone());
    let empty = GobValue::Struct(Struct::default());
    let req = field(args, "Request").unwrap_or(&empty);
    if let (Some(ctx), Some(fd)) = (
        field(args, "Context"),
        init_desc.get_field_by_name("plugin_context"),
    ) {
        let v = bridge
            .translator
            .gob_to_proto("plugin.Context", ctx, &fd)
            .map_err(failed)?;
        init.set_field(&fd, v);
    }
    for (name, go) in [
        ("method", "Method"),
        ("url", "URL"),
        ("proto", "Proto"),
        ("host", "Host"),
        ("remote_addr", "RemoteAddr"),
        ("request_uri", "RequestURI"),
    ] {
        if let Some(fd) = init_desc.get_field_by_name(name) {
            init.set_field(&fd, PbValue::String(str_field(req, go)));
        }
    }
    for (name, go) in [("proto_major", "ProtoMajor"), ("proto_minor", "ProtoMinor")] {
        if let (Some(fd), Some(GobValue::Int(i))) =
            (init_desc.get_field_by_name(name), field(req, go))
        {
            init.set_field(&fd, PbValue::I64(*i));
        }
    }
    if let (Some(fd), Some(h)) = (init_desc.get_field_by_name("headers"), field(req, "Header")) {
        init.set_field(&fd, headers_to_proto(h, &fd)?);
    }
    if let Some(fd) = init_desc.get_field_by_name("has_body") {
        init.set_field(&fd, PbValue::Bool(has_body));
    }
    let mut part = DynamicMessage::new(part_desc.clone());
    part.set_field(&init_fd, PbValue::Message(init));
    Ok(part)
}

fn headers_to_proto(
    h: &GobValue,
    fd: &prost_reflect::FieldDescriptor,
) -> Result<PbValue, CallError> {
    let GobValue::Map(entries) = h else {
        return Err(failed("request headers are not a map"));
    };
    let Kind::Message(entry) = fd.kind() else {
        return Err(failed("headers field is not a map"));
    };
    let Kind::Message(values_desc) = entry.map_entry_value_field().kind() else {
        return Err(failed("header values are not a message"));
    };
    let mut out = std::collections::HashMap::new();
    for (k, v) in entries {
        let (Some(k), GobValue::Slice(vs)) = (text(k), v) else {
            return Err(failed(format!(
                "a request header is gob {} => {}, not string => []string",
                k.kind_name(),
                v.kind_name()
            )));
        };
        let mut list = Vec::with_capacity(vs.len());
        for x in vs {
            let Some(x) = text(x) else {
                return Err(failed(format!(
                    "a value of request header {k:?} is gob {}, not a string",
                    x.kind_name()
                )));
            };
            list.push(PbValue::String(x));
        }
        let mut values = DynamicMessage::new(values_desc.clone());
        values.set_field_by_number(1, PbValue::List(list));
        out.insert(MapKey::String(k), PbValue::Message(values));
    }
    Ok(PbValue::Map(out))
}

/// Pulls the request body from the server and forwards each piece as it arrives, then
/// `body_end`.
async fn pump_body(
    body: Option<Stream>,
    tx: mpsc::Sender<DynamicMessage>,
    part_desc: MessageDescriptor,
) {
    let part = |number: u32, v: PbValue| {
        let mut m = DynamicMessage::new(part_desc.clone());
        m.set_field_by_number(number, v);
        m
    };
    if let Some(mut stream) = body {
        let forwarded = ioreader::pull(&mut stream, |chunk| {
            let tx = tx.clone();
            let msg = part(2, PbValue::Bytes(chunk));
            async move { tx.send(msg).await.is_ok() }
        })
        .await;
        if !matches!(forwarded, Ok(true)) {
            // Python stopped reading (an early response) or the server's stream failed.
            return;
        }
    }
    let _ = tx.send(part(3, PbValue::Bool(true))).await;
}

/// The server's response writer, over its net/rpc stream.
struct ResponseWriter {
    client: Client<Stream>,
    header_ty: gob::TypeId,
    int_ty: gob::TypeId,
    bytes_ty: gob::TypeId,
    empty_ty: gob::TypeId,
}

impl ResponseWriter {
    fn new(client: Client<Stream>, bridge: &Bridge) -> Result<Self, CallError> {
        let t = |e: &str| {
            bridge
                .translator
                .type_of(e)
                .ok_or_else(|| failed(format!("no gob type for {e}")))
        };
        Ok(ResponseWriter {
            client,
            header_ty: t("http.Header")?,
            int_ty: t("int")?,
            bytes_ty: t("[]uint8")?,
            empty_ty: t("struct {}")?,
        })
    }

    async fn call(&self, method: &str, ty: gob::TypeId, v: GobValue) -> Result<(), CallError> {
        self.client
            .call(&format!("Plugin.{method}"), ty, &v)
            .await
            .map(|_| ())
            .map_err(|e| failed(format!("response writer {method}: {e}")))
    }

    async fn sync_header(&self, headers: GobValue) -> Result<(), CallError> {
        self.call("SyncHeader", self.header_ty, headers).await
    }

    async fn write_header(&self, status: i64) -> Result<(), CallError> {
        self.call("WriteHeader", self.int_ty, GobValue::Int(status))
            .await
    }

    async fn write(&self, data: Vec<u8>) -> Result<(), CallError> {
        self.call("Write", self.bytes_ty, GobValue::Bytes(data))
            .await
    }

    async fn flush(&self) -> Result<(), CallError> {
        self.call("Flush", self.empty_ty, GobValue::Struct(Struct::default()))
            .await
    }
}

fn headers_from_proto(init: &DynamicMessage) -> GobValue {
    headers_field(init, 2)
}

/// The `map<string, HTTPHeaderValues>` field `number` of `msg` as a Go `http.Header`.
fn headers_field(msg: &DynamicMessage, number: u32) -> GobValue {
    let mut out = Vec::new();
    if let Some(PbValue::Map(m)) = msg.get_field_by_number(number).map(|c| c.into_owned()) {
        let mut keys: Vec<_> = m.keys().cloned().collect();
        keys.sort_by_key(|k| format!("{k:?}"));
        for k in keys {
            let MapKey::String(name) = &k else { continue };
            let values = match &m[&k] {
                PbValue::Message(v) => v
                    .get_field_by_number(1)
                    .and_then(|l| {
                        l.as_list().map(|l| {
                            l.iter()
                                .filter_map(|x| x.as_str().map(|s| GobValue::String(s.to_string())))
                                .collect()
                        })
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            out.push((GobValue::String(name.clone()), GobValue::Slice(values)));
        }
    }
    GobValue::Map(out)
}

/// Forwards Python's response parts to the server's response writer as they arrive.
async fn relay_response(
    bridge: &Bridge,
    method: &prost_reflect::MethodDescriptor,
    requests: mpsc::Receiver<DynamicMessage>,
    w: &ResponseWriter,
    hook: &str,
) -> Result<(), CallError> {
    let mut responses = match bridge
        .hooks
        .streaming(
            method,
            tokio_stream::wrappers::ReceiverStream::new(requests),
        )
        .await
    {
        Ok(s) => s,
        Err(status) => {
            log::log(
                Level::Error,
                &format!("{hook} could not reach Python"),
                &[("error", status.message().to_string())],
            );
            return internal_error(w, false).await;
        }
    };
    let mut header_written = false;
    while let Some(item) = responses.next().await {
        let part = match item {
            Ok(p) => p,
            Err(status) => {
                log::log(
                    Level::Error,
                    &format!("{hook} failed in Python"),
                    &[("error", status.message().to_string())],
                );
                return internal_error(w, header_written).await;
            }
        };
        let Some(which) = part
            .descriptor()
            .oneofs()
            .next()
            .and_then(|o| o.fields().find(|f| part.has_field(f)))
        else {
            continue;
        };
        match (which.number(), &*part.get_field(&which)) {
            (1, PbValue::Message(init)) if !header_written => {
                let status = init
                    .get_field_by_number(1)
                    .and_then(|v| v.as_i32())
                    .unwrap_or(0);
                let headers = headers_from_proto(init);
                match checked_start(status, &headers) {
                    Ok(status) => {
                        w.sync_header(headers).await?;
                        w.write_header(status).await?;
                        header_written = true;
                    }
                    Err(problem) => {
                        // Nothing of this response reaches the client: a status or header
                        // the server would pass on unchecked could split the response or
                        // smuggle headers, and half of it would mislead. Dropping Python's
                        // stream tells the handler the client is gone.
                        log::log(
                            Level::Error,
                            &format!(
                                "{hook}: {problem}; answering 500 instead of the plugin's response"
                            ),
                            &[],
                        );
                        return internal_error(w, false).await;
                    }
                }
            }
            (1, _) => log::log(
                Level::Warn,
                &format!(
                    "{hook}: the plugin sent response headers twice; the second set is ignored"
                ),
                &[],
            ),
            (2, PbValue::Bytes(b)) => {
                header_written = true;
                w.write(b.to_vec()).await?;
            }
            (3, PbValue::Bool(true)) => w.flush().await?,
            _ => {}
        }
    }
    Ok(())
}

/// The most header bytes a response from Python may carry, counted as on the HTTP/1.1 wire
/// (`name: value` and CRLF for every value). Go's `http.Server` accepts request headers of this
/// size by default (`DefaultMaxHeaderBytes`); reverse proxies in front of a server accept far
/// less by default. A plugin that sends more has a bug, and the server would pass it on.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// The status to write for a response Python started with `status` and `headers`, or why it
/// cannot be sent: a status outside 100–999 (0 means the default, 200), a header name that is
/// not an HTTP token, a value with CR, LF or NUL, or more than [`MAX_HEADER_BYTES`].
fn checked_start(status: i32, headers: &GobValue) -> Result<i64, String> {
    let status = match status {
        0 => 200,
        100..=999 => i64::from(status),
        bad => {
            return Err(format!(
                "the plugin wrote the invalid HTTP status code {bad}"
            ));
        }
    };
    check_headers(headers).map_err(|e| format!("the plugin's response {e}"))?;
    Ok(status)
}

/// Checks a Go `http.Header` built from Python's parts (see [`check_headers`]'s callers).
pub(crate) fn check_headers(headers: &GobValue) -> Result<(), String> {
    let GobValue::Map(entries) = headers else {
        return Ok(());
    };
    let mut size = 0usize;
    for (name, values) in entries {
        let (GobValue::String(name), GobValue::Slice(values)) = (name, values) else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!(
                "header name {:?} is not an HTTP token",
                shorten(name)
            ));
        }
        for value in values {
            let GobValue::String(value) = value else {
                continue;
            };
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!(
                    "header {:?} has a value with CR, LF or NUL",
                    shorten(name)
                ));
            }
            size += name.len() + value.len() + 4;
        }
    }
    if size > MAX_HEADER_BYTES {
        return Err(format!(
            "headers of {size} bytes exceed the limit of {MAX_HEADER_BYTES} bytes"
        ));
    }
    Ok(())
}

/// RFC 9110's `tchar`: what a header field name is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header name as it appears in a log line: at most 64 characters of it.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_string(),
    }
}

async fn internal_error(w: &ResponseWriter, header_written: bool) -> Result<(), CallError> {
    if header_written {
        // Too late for a status: the client sees a truncated body.
        return Ok(());
    }
    w.sync_header(GobValue::Map(vec![(
        GobValue::String("Content-Type".into()),
        GobValue::Slice(vec![GobValue::String("text/plain; charset=utf-8".into())]),
    )]))
    .await?;
    w.write_header(500).await?;
    w.write(b"500 internal server error\n".to_vec()).await
}

// ===== inter-plugin PluginHTTP (Python → server → another plugin) =====

/// `PluginHTTP`: Python streams `PluginHTTPRequestPart`s (init, body, body_end) and receives
/// `HTTPResponsePart`s. The streaming wire form `Plugin.PluginHTTPStream` carries both bodies on
/// plugin-allocated broker streams (the request body served with the io-reader protocol, the
/// response body written raw by the server); servers without it get the buffered
/// `Plugin.PluginHTTP`, for which the request body has to be collected first.
pub async fn plugin_http(
    bridge: Arc<Bridge>,
    method: prost_reflect::MethodDescriptor,
    mut requests: tonic::Streaming<DynamicMessage>,
) -> Result<crate::grpc::ResponseStream, tonic::Status> {
    use tonic::Status;
    let m = bridge
        .translator
        .schema()
        .api_method("PluginHTTP")
        .ok_or_else(|| Status::unimplemented("the schema has no PluginHTTP"))?;
    let client = bridge.api_client().ok_or_else(|| {
        Status::failed_precondition("PluginHTTP: the server's API is available from OnActivate on")
    })?;
    let broker = bridge
        .broker()
        .ok_or_else(|| Status::failed_precondition("PluginHTTP: no broker before OnActivate"))?;
    let init = match requests.next().await {
        Some(Ok(first)) => match crate::bridge::part_of(&first) {
            Some((1, PbValue::Message(init))) => init,
            _ => {
                return Err(Status::invalid_argument(
                    "PluginHTTP: the first part must be `init`",
                ));
            }
        },
        Some(Err(status)) => return Err(status),
        None => return Err(Status::invalid_argument("PluginHTTP: empty request stream")),
    };
    let text = |n: u32| {
        init.get_field_by_number(n)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let url = text(3);
    let request_uri = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| url[i + 3 + j..].to_string()))
        .unwrap_or_else(|| url.clone());
    let headers = headers_field(&init, 4);
    // The target plugin gets these headers as they are: the same checks as for a response.
    check_headers(&headers)
        .map_err(|e| Status::invalid_argument(format!("PluginHTTP: the request {e}")))?;
    let request = GobValue::Struct(Struct::new(vec![
        ("Method".into(), GobValue::String(text(2))),
        ("URL".into(), GobValue::Encoded(url.clone().into_bytes())),
        ("Proto".into(), GobValue::String("HTTP/1.1".into())),
        ("ProtoMajor".into(), GobValue::Int(1)),
        ("ProtoMinor".into(), GobValue::Int(1)),
        ("Header".into(), headers),
        ("RequestURI".into(), GobValue::String(request_uri)),
    ]));
    let has_body = init
        .get_field_by_number(5)
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let body = requests.filter_map(|part| {
        match part {
            Ok(p) => match crate::bridge::part_of(&p) {
                Some((2, PbValue::Bytes(b))) => Some(Ok(b)),
                // body_end, or nothing set: the body is complete when the stream ends.
                _ => None,
            },
            Err(status) => Some(Err(status)),
        }
    });
    let response_part = method.output();
    let (tx, rx) = mpsc::channel::<Result<DynamicMessage, Status>>(4);

    let Some(wire) = m
        .alternates
        .iter()
        .find(|w| w.service_method == "Plugin.PluginHTTPStream")
    else {
        return Err(Status::internal(
            "the schema lacks the PluginHTTPStream wire form",
        ));
    };
    let stream_ty = wire
        .args_struct
        .as_deref()
        .and_then(|n| bridge.translator.wire_struct(n))
        .ok_or_else(|| Status::internal("no wire type for PluginHTTPStream"))?;
    let response_id = broker.next_id();
    let response_broker = broker.clone();
    let response_stream = tokio::spawn(async move { response_broker.accept(response_id).await });
    let body = Box::pin(body);
    // The feeder owns the body until the server dials for it. A server without
    // PluginHTTPStream never dials; then the feeder is told to stop and hands the body back,
    // untouched, for the buffered form.
    let (cancel_feeder, cancelled) = tokio::sync::oneshot::channel::<()>();
    let (body_id, feeder) = if has_body {
        let id = broker.next_id();
        let b = broker.clone();
        let feeder = tokio::spawn(async move {
            let mut body = body;
            tokio::select! {
                accepted = b.accept(id) => {
                    if let Ok(stream) = accepted {
                        let _ = ioreader::serve(stream, &mut body).await;
                    }
                    None
                }
                // Only an explicit cancel: a dropped sender (the streaming path) is no reason.
                Ok(()) = cancelled => Some(body),
            }
        });
        (id, Some(feeder))
    } else {
        (0, None)
    };
    let args = GobValue::Struct(Struct::new(vec![
        (
            "ResponseBodyStream".into(),
            GobValue::Uint(u64::from(response_id)),
        ),
        ("Request".into(), request.clone()),
        (
            "RequestBodyStream".into(),
            GobValue::Uint(u64::from(body_id)),
        ),
    ]));
    match client
        .call("Plugin.PluginHTTPStream", stream_ty, &args)
        .await
    {
        Ok(reply) => {
            let status = match field(&reply, "StatusCode") {
                Some(GobValue::Int(i)) => *i,
                _ => 0,
            };
            let headers = field(&reply, "Header")
                .cloned()
                .unwrap_or(GobValue::Map(Vec::new()));
            tokio::spawn(async move {
                if status == 0 {
                    // The target answered nothing (no such plugin, or it returned nil): the
                    // server never writes or closes the response stream.
                    response_stream.abort();
                    let _ = tx
                        .send(Err(Status::not_found(
                            "PluginHTTP: the server returned no response",
                        )))
                        .await;
                    return;
                }
                let _ = tx
                    .send(Ok(response_init(&response_part, status, &headers)))
                    .await;
                let Ok(Ok(mut stream)) = response_stream.await else {
                    let _ = tx
                        .send(Err(Status::unavailable(
                            "PluginHTTP: the response body stream never opened",
                        )))
                        .await;
                    return;
                };
                let mut buf = vec![0u8; ioreader::CHUNK];
                loop {
                    match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                        Ok(0) => break,
                        Ok(n) => {
                            let mut part = DynamicMessage::new(response_part.clone());
                            part.set_field_by_number(
                                2,
                                PbValue::Bytes(bytes::Bytes::copy_from_slice(&buf[..n])),
                            );
                            if tx.send(Ok(part)).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx
                                .send(Err(Status::unavailable(format!(
                                    "PluginHTTP response body: {e}"
                                ))))
                                .await;
                            break;
                        }
                    }
                }
            });
        }
        Err(goplugin::netrpc::RpcError::Server(text))
            if text == "rpc: can't find method Plugin.PluginHTTPStream" =>
        {
            response_stream.abort();
            // An older server: collect the request body and use the buffered form.
            let mut collected = Vec::new();
            if let Some(feeder) = feeder {
                let _ = cancel_feeder.send(());
                if let Ok(Some(mut rest)) = feeder.await {
                    while let Some(item) = rest.next().await {
                        collected.extend_from_slice(&item?);
                    }
                }
            }
            let buffered_ty = m
                .args_struct
                .as_deref()
                .and_then(|n| bridge.translator.wire_struct(n))
                .ok_or_else(|| Status::internal("no wire type for PluginHTTP"))?;
            let mut fields = vec![("Request".to_string(), request)];
            if !collected.is_empty() {
                fields.push(("RequestBody".to_string(), GobValue::Bytes(collected)));
            }
            let reply = client
                .call(
                    "Plugin.PluginHTTP",
                    buffered_ty,
                    &GobValue::Struct(Struct::new(fields)),
                )
                .await
                .map_err(|e| crate::bridge::rpc_status(m, e))?;
            let Some(resp) = field(&reply, "Response") else {
                return Err(Status::not_found(
                    "PluginHTTP: the server returned no response",
                ));
            };
            let status = match field(resp, "StatusCode") {
                Some(GobValue::Int(i)) => *i,
                _ => 0,
            };
            let headers = field(resp, "Header")
                .cloned()
                .unwrap_or(GobValue::Map(Vec::new()));
            let _ = tx
                .send(Ok(response_init(&response_part, status, &headers)))
                .await;
            if let Some(GobValue::Bytes(b)) = field(&reply, "ResponseBody") {
                for piece in b.chunks(ioreader::CHUNK) {
                    let mut part = DynamicMessage::new(response_part.clone());
                    part.set_field_by_number(
                        2,
                        PbValue::Bytes(bytes::Bytes::copy_from_slice(piece)),
                    );
                    let _ = tx.send(Ok(part)).await;
                }
            }
        }
        Err(e) => {
            response_stream.abort();
            return Err(crate::bridge::rpc_status(m, e));
        }
    }
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// An `HTTPResponsePart` carrying `init` with a status and Go `http.Header`.
fn response_init(part_desc: &MessageDescriptor, status: i64, headers: &GobValue) -> DynamicMessage {
    let mut part = DynamicMessage::new(part_desc.clone());
    let Some(init_fd) = part_desc.get_field(1) else {
        return part;
    };
    let Kind::Message(init_desc) = init_fd.kind() else {
        return part;
    };
    let mut init = DynamicMessage::new(init_desc.clone());
    init.set_field_by_number(1, PbValue::I32(i32::try_from(status).unwrap_or(500)));
    if let Some(fd) = init_desc.get_field(2)
        && let Ok(h) = headers_to_proto(headers, &fd)
    {
        init.set_field(&fd, h);
    }
    part.set_field(&init_fd, PbValue::Message(init));
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pairs: &[(&str, &[&str])]) -> GobValue {
        GobValue::Map(
            pairs
                .iter()
                .map(|(k, vs)| {
                    (
                        GobValue::String((*k).to_string()),
                        GobValue::Slice(
                            vs.iter()
                                .map(|v| GobValue::String((*v).to_string()))
                                .collect(),
                        ),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn a_response_start_is_refused_for_a_bad_status_or_header() {
        let fine = header(&[
            ("Content-Type", &["text/plain"]),
            ("X-Multi", &["a", "b, c"]),
        ]);
        assert_eq!(checked_start(0, &fine), Ok(200));
        assert_eq!(checked_start(299, &fine), Ok(299));
        assert_eq!(checked_start(999, &fine), Ok(999));
        for bad in [-1, 42, 99, 1000] {
            let e = checked_start(bad, &fine).unwrap_err();
            assert_eq!(
                e,
                format!("the plugin wrote the invalid HTTP status code {bad}")
            );
        }
        for (name, value) in [
            ("X-Note", "a\r\nSet-Cookie: x=1"),
            ("X-Note", "a\nb"),
            ("X-Note", "a\rb"),
            ("X-Note", "a\0b"),
        ] {
            let e = checked_start(200, &header(&[(name, &[value])])).unwrap_err();
            assert_eq!(
                e,
                "the plugin's response header \"X-Note\" has a value with CR, LF or NUL"
            );
        }
        for name in ["X-Note\r\nSet-Cookie: x", "X Note", "", "X-Nöte", "X:Note"] {
            let e = checked_start(200, &header(&[(name, &["1"])])).unwrap_err();
            assert!(e.ends_with("is not an HTTP token"), "{name:?}: {e}");
            assert!(e.contains(&format!("{name:?}")), "{e}");
        }
        // A tab and other bytes outside CR, LF and NUL are the server's to judge.
        assert!(checked_start(200, &header(&[("X-Tab", &["a\tb"])])).is_ok());
    }

    #[test]
    fn headers_are_limited_to_one_mib_as_on_the_wire() {
        // "X-Big: " + value + CRLF: the name, the value and 4 bytes.
        let at_limit = "v".repeat(MAX_HEADER_BYTES - "X-Big".len() - 4);
        assert!(check_headers(&header(&[("X-Big", &[at_limit.as_str()])])).is_ok());
        let over = format!("{at_limit}v");
        assert_eq!(
            check_headers(&header(&[("X-Big", &[over.as_str()])])).unwrap_err(),
            format!(
                "headers of {} bytes exceed the limit of {MAX_HEADER_BYTES} bytes",
                MAX_HEADER_BYTES + 1
            )
        );
        // Many small values count together.
        let kib = "m".repeat(1020);
        let many: Vec<&str> = vec![kib.as_str(); 1030];
        assert!(check_headers(&header(&[("X-Many", &many)])).is_err());
    }

    #[test]
    fn a_long_bad_name_is_shortened_in_the_error() {
        let name = format!("{} bad", "n".repeat(5000));
        let e = check_headers(&header(&[(name.as_str(), &["1"])])).unwrap_err();
        assert!(e.len() < 120, "{e}");
        assert!(e.contains("..."), "{e}");
    }
}
