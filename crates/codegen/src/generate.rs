//! Schema → proto generation (docs/internals.md §7).
//!
//! Choices the contract leaves open, fixed here:
//! - Message names: a `model` struct keeps its Go name, any other package's struct is
//!   PascalCase(package) + Name, generic instances append their type arguments
//!   (`model.PropertyOptions[*model.PluginPropertyOption]` →
//!   `PropertyOptionsModelPluginPropertyOption`). A name already taken (hand-written files,
//!   RPC messages, an earlier type in sorted order) gets `Type`, then `Type2`, `Type3`… appended.
//! - Wrapper messages: `<Elem>List { repeated <Elem> values = 1; }` for a list inside a list or
//!   map value, `<Key><Value>Map { map<K, V> values = 1; }` for a map inside a list or map
//!   value, `<Key><Value>Entry { key = 1; value = 2; }` (repeated) for maps whose Go key type
//!   is not a proto map key. A wrapper name already used by a model message gets `Values`
//!   instead of `List`/`Map` (e.g. `[][]*model.Post` → `PostValues`, since `PostList` exists).
//! - Field names: snake_case of the Go name; a Python keyword gets a trailing `_`; a name
//!   repeated within a message gets `_<number>` appended. A `*plugin.Context` parameter is
//!   always named `plugin_context`. Unnamed results are named after their type (`*model.User`
//!   → `user`, `[]*model.Post` → `posts`, basic types → `value`, `[]byte` → `data`), except a
//!   hook's trailing unnamed `string` result, which is always `rejection_reason`.
//! - Byte streams (`io.Reader`/`io.Writer` parameters) become gRPC streams of parts; the
//!   parameter's field number is `reserved` in the init message so numbering still follows Go.
//! - Go named types that gob encodes with GobEncode/MarshalBinary (other than time.Time and
//!   url.URL) are `bytes` holding that encoding.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mmplug_schema::{Basic, GoType, Method, Param, Schema};

use crate::names::{field_name, pascal, plural, snake};
use crate::{Error, PROTO_DIR};

/// The generated files (name within [`PROTO_DIR`], content) and an index of the RPCs.
#[derive(Debug)]
pub struct Generated {
    pub files: Vec<(String, String)>,
    /// (service, rpc name, Go method name) for every generated RPC, in file order.
    pub rpcs: Vec<Rpc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpc {
    pub service: &'static str,
    pub name: String,
    pub go_method: String,
    pub request: String,
    pub response: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// The Go doc comment.
    pub doc: String,
    pub min_server_version: Option<String>,
    /// The request's payload (Go parameters, in order): fields from number 2 on, plus the
    /// byte-stream parameters (which are not fields). Empty for the HTTP streams.
    pub params: Vec<Slot>,
    /// The response's fields from number 2 on (the Go results other than the error).
    pub results: Vec<Slot>,
    /// Whether the Go signature has an `error`/`*model.AppError` result.
    pub error_result: bool,
}

/// One Go parameter or result and where it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The proto field name (also the Python parameter name).
    pub name: String,
    /// The Go type expression.
    pub go_ty: String,
    /// The proto field type; None for an `io.Reader`/`io.Writer` parameter (a byte stream).
    pub field: Option<FieldTy>,
    /// A Go `...T` parameter.
    pub variadic: bool,
}

const PKG: &str = "mattermost.plugin.v1";
const WKT_STRUCT: &str = "google/protobuf/struct.proto";
const WKT_TIMESTAMP: &str = "google/protobuf/timestamp.proto";
const WKT_EMPTY: &str = "google/protobuf/empty.proto";
const SCALARS: &[&str] = &[
    "bool", "string", "bytes", "int32", "int64", "uint32", "uint64", "double", "float",
];
const MAP_KEYS: &[&str] = &["bool", "string", "int32", "int64", "uint32", "uint64"];
/// Recursion bound for named types whose underlying type names another named type.
const MAX_DEPTH: usize = 64;

/// How a proto field is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Plain,
    Optional,
    Repeated,
    /// `ty` is the whole `map<K, V>` text.
    Map,
}

/// The proto type of a field: its label and (fully qualified for well-known types) type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTy {
    pub label: Label,
    pub ty: String,
    /// Key and value proto types when `label == Map`.
    pub kv: Option<(String, String)>,
}

impl FieldTy {
    fn plain(ty: &str) -> Self {
        FieldTy {
            label: Label::Plain,
            ty: ty.to_string(),
            kv: None,
        }
    }
}

/// How a method travels over gRPC.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Unary,
    /// io.Reader params become a client stream, io.Writer params a server stream.
    Bytes {
        reader: bool,
        writer: bool,
    },
    /// Hooks ServeHTTP/ServeMetrics (http.proto, §4).
    ServeHttp,
    /// API PluginHTTP (http.proto).
    PluginHttp,
}

struct Gen<'a> {
    schema: &'a Schema,
    /// Go type key → proto message name, for every struct type of the schema.
    msg_names: BTreeMap<String, String>,
    taken: BTreeSet<String>,
    /// Go struct types referenced so far and not yet rendered.
    queue: Vec<String>,
    rendered: BTreeSet<String>,
    /// Wrapper definition key → (name, body).
    wrappers: BTreeMap<String, (String, String)>,
    /// Imports needed by the file being rendered.
    imports: BTreeSet<String>,
}

/// Generates models.proto, api.proto and hooks.proto. `handwritten` are the contents of the
/// hand-written files, read only for the message and enum names they define.
pub fn generate(schema: &Schema, handwritten: &[&str]) -> Result<Generated, Error> {
    let mut g = Gen {
        schema,
        msg_names: BTreeMap::new(),
        taken: BTreeSet::new(),
        queue: Vec::new(),
        rendered: BTreeSet::new(),
        wrappers: BTreeMap::new(),
        imports: BTreeSet::new(),
    };
    for text in handwritten {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("message" | "enum"), Some(name)) = (words.next(), words.next()) {
                g.taken.insert(name.trim_end_matches('{').to_string());
            }
        }
    }
    for m in &schema.api {
        for s in ["Request", "Response", "RequestPart", "ResponsePart"] {
            g.taken.insert(format!("{}{s}", m.name));
        }
    }
    for m in &schema.hooks {
        for s in [
            "HookRequest",
            "HookResponse",
            "HookRequestPart",
            "HookResponsePart",
        ] {
            g.taken.insert(format!("{}{s}", m.name));
        }
    }
    g.assign_message_names();

    let mut rpcs = Vec::new();
    let api = g.service_file("api", "PluginAPI", &schema.api, false, &mut rpcs)?;
    let hooks = g.service_file("hooks", "PluginHooks", &schema.hooks, true, &mut rpcs)?;
    let models = g.models_file()?;
    Ok(Generated {
        files: vec![
            ("models.proto".into(), models),
            ("api.proto".into(), api),
            ("hooks.proto".into(), hooks),
        ],
        rpcs,
    })
}

impl Gen<'_> {
    fn assign_message_names(&mut self) {
        for (key, ty) in &self.schema.types {
            if ty.kind != "struct" || ty.gob.is_some() || special_named(key).is_some() {
                continue;
            }
            let (pkg, name) = key.split_once('.').unwrap_or(("", key));
            let base = if ty.package.ends_with("/server/public/model") {
                pascal(name)
            } else {
                pascal(&format!("{pkg}_{name}"))
            };
            let mut cand = base.clone();
            let mut n = 1;
            while self.taken.contains(&cand) {
                cand = if n == 1 {
                    format!("{base}Type")
                } else {
                    format!("{base}Type{n}")
                };
                n += 1;
            }
            self.taken.insert(cand.clone());
            self.msg_names.insert(key.clone(), cand);
        }
    }

    fn use_models(&mut self, own_file: bool) {
        if !own_file {
            self.imports.insert(format!("{PROTO_DIR}/models.proto"));
        }
    }

    /// The proto type of a Go type in field position.
    fn field(&mut self, t: &GoType, depth: usize) -> Result<FieldTy, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Unsupported(format!(
                "type nesting deeper than {MAX_DEPTH} at {t:?}"
            )));
        }
        Ok(match t {
            GoType::Basic(b) => FieldTy::plain(scalar(*b)?),
            GoType::Named(n) => self.named(n, depth)?,
            GoType::Error => self.named("error", depth)?,
            GoType::Ptr(inner) => {
                let f = self.field(inner, depth + 1)?;
                if f.label == Label::Plain && SCALARS.contains(&f.ty.as_str()) {
                    FieldTy {
                        label: Label::Optional,
                        ..f
                    }
                } else {
                    f
                }
            }
            GoType::Slice(e) | GoType::Array(_, e) if **e == GoType::Basic(Basic::Uint8) => {
                FieldTy::plain("bytes")
            }
            GoType::Slice(e) | GoType::Array(_, e) => FieldTy {
                label: Label::Repeated,
                ty: self.single(e, depth + 1)?,
                kv: None,
            },
            GoType::Map(k, v) => {
                if **k == GoType::Basic(Basic::String) && **v == GoType::Interface {
                    self.imports.insert(WKT_STRUCT.into());
                    return Ok(FieldTy::plain("google.protobuf.Struct"));
                }
                let kf = self.field(k, depth + 1)?;
                let vt = self.single(v, depth + 1)?;
                if kf.label == Label::Plain && MAP_KEYS.contains(&kf.ty.as_str()) {
                    FieldTy {
                        label: Label::Map,
                        ty: format!("map<{}, {vt}>", kf.ty),
                        kv: Some((kf.ty, vt)),
                    }
                } else {
                    let kt = self.single(k, depth + 1)?;
                    FieldTy {
                        label: Label::Repeated,
                        ty: self.entry_wrapper(&kt, &vt),
                        kv: None,
                    }
                }
            }
            GoType::Interface | GoType::UnnamedInterface(_) => {
                self.imports.insert(WKT_STRUCT.into());
                FieldTy::plain("google.protobuf.Value")
            }
            GoType::EmptyStruct => {
                self.imports.insert(WKT_EMPTY.into());
                FieldTy::plain("google.protobuf.Empty")
            }
            GoType::UnnamedStruct(_) => {
                return Err(Error::Unsupported(
                    "unnamed struct types with fields are not mapped".into(),
                ));
            }
        })
    }

    fn named(&mut self, n: &str, depth: usize) -> Result<FieldTy, Error> {
        if let Some(special) = special_named(n) {
            match special {
                "AppError" => self.imports.insert(format!("{PROTO_DIR}/common.proto")),
                "google.protobuf.Timestamp" => self.imports.insert(WKT_TIMESTAMP.into()),
                _ => false,
            };
            return Ok(FieldTy::plain(special));
        }
        let Some(ty) = self.schema.types.get(n) else {
            return Err(Error::Unsupported(format!("type {n} is not in the schema")));
        };
        if ty.gob.is_some() {
            return Ok(FieldTy::plain("bytes"));
        }
        match ty.kind.as_str() {
            "struct" => {
                let name = self.msg_names[n].clone();
                if !self.rendered.contains(n) && !self.queue.iter().any(|q| q == n) {
                    self.queue.push(n.to_string());
                }
                self.use_models(false);
                Ok(FieldTy::plain(&name))
            }
            "named" => {
                let u = GoType::parse(ty.underlying.as_deref().unwrap_or_default())?;
                self.field(&u, depth + 1)
            }
            "interface" => {
                // A dynamic value; the gob interface name tells the bridge the concrete type.
                self.imports.insert(WKT_STRUCT.into());
                Ok(FieldTy::plain("google.protobuf.Value"))
            }
            other => Err(Error::Unsupported(format!(
                "type {n} has unknown kind {other:?}"
            ))),
        }
    }

    /// The proto type of a Go type as a list element or map value: never labelled, so nested
    /// lists and maps get wrapper messages.
    fn single(&mut self, t: &GoType, depth: usize) -> Result<String, Error> {
        let f = self.field(t, depth)?;
        Ok(match f.label {
            Label::Plain | Label::Optional => f.ty,
            Label::Repeated => self.wrapper(
                format!("list:{}", f.ty),
                &format!("{}List", last_pascal(&f.ty)),
                &format!("{}Values", last_pascal(&f.ty)),
                format!("  repeated {} values = 1;\n", f.ty),
            ),
            Label::Map => {
                let (k, v) = f.kv.expect("map field carries its key and value");
                let stem = format!("{}{}", last_pascal(&k), last_pascal(&v));
                self.wrapper(
                    format!("map:{k}:{v}"),
                    &format!("{stem}Map"),
                    &format!("{stem}Values"),
                    format!("  map<{k}, {v}> values = 1;\n"),
                )
            }
        })
    }

    fn entry_wrapper(&mut self, k: &str, v: &str) -> String {
        let stem = format!("{}{}", last_pascal(k), last_pascal(v));
        self.wrapper(
            format!("entry:{k}:{v}"),
            &format!("{stem}Entry"),
            &format!("{stem}EntryValue"),
            format!("  {k} key = 1;\n  {v} value = 2;\n"),
        )
    }

    fn wrapper(&mut self, key: String, name: &str, fallback: &str, body: String) -> String {
        self.use_models(false);
        if let Some((n, _)) = self.wrappers.get(&key) {
            return n.clone();
        }
        let mut cand = name.to_string();
        let mut i = 2;
        if self.taken.contains(&cand) {
            cand = fallback.to_string();
        }
        while self.taken.contains(&cand) {
            cand = format!("{fallback}{i}");
            i += 1;
        }
        self.taken.insert(cand.clone());
        self.wrappers.insert(key, (cand.clone(), body));
        cand
    }

    fn models_file(&mut self) -> Result<String, Error> {
        self.imports.clear();
        let mut messages: BTreeMap<String, String> = BTreeMap::new();
        while let Some(key) = self.queue.pop() {
            if !self.rendered.insert(key.clone()) {
                continue;
            }
            let ty = &self.schema.types[&key];
            let name = self.msg_names[&key].clone();
            let mut out = String::new();
            comment(&mut out, "", &ty.doc);
            if !ty.doc.is_empty() {
                out.push_str("//\n");
            }
            let _ = writeln!(out, "// Go type {key} ({}).", ty.package);
            let _ = writeln!(out, "message {name} {{");
            let mut used = BTreeSet::new();
            for (i, f) in ty.fields.iter().enumerate() {
                let num = i + 1;
                let t = GoType::parse(&f.ty)?;
                let ft = self
                    .field(&t, 0)
                    .map_err(|e| Error::Unsupported(format!("{key}.{}: {e}", f.name)))?;
                let fname = unique(&mut used, field_name(&snake(&f.name)), num);
                comment(&mut out, "  ", &f.doc);
                let mut note = format!("Go {} {}", f.name, f.ty);
                if !f.json.is_empty() {
                    let _ = write!(note, ", json {:?}", f.json);
                }
                if f.embedded {
                    note.push_str(", embedded");
                }
                let _ = writeln!(out, "  // {note}.");
                field_line(&mut out, &ft, &fname, num);
            }
            out.push_str("}\n");
            messages.insert(name, out);
        }
        let mut body = String::new();
        for m in messages.values() {
            body.push('\n');
            body.push_str(m);
        }
        for (name, def) in self.wrappers.values() {
            let _ = write!(
                body,
                "\n// Wrapper for a nested list or map (proto fields cannot nest them directly).\nmessage {name} {{\n{def}}}\n"
            );
        }
        let header = self.header(
            "models",
            "One message per Go struct reachable from the plugin API and hooks.",
        );
        Ok(format!("{header}{body}"))
    }

    fn header(&mut self, file: &str, what: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "// Code generated by mmplug-codegen from schema/mattermost-api.json ({} {}). DO NOT EDIT.",
            self.schema.module, self.schema.version
        );
        let _ = writeln!(out, "// {what}");
        let _ = writeln!(
            out,
            "// Regenerate: go run ./tools/apischema && cargo run -p mmplug-codegen"
        );
        out.push_str("syntax = \"proto3\";\n\n");
        let _ = writeln!(out, "package {PKG};");
        let own = format!("{PROTO_DIR}/{file}.proto");
        let imports: Vec<&String> = self.imports.iter().filter(|i| **i != own).collect();
        if !imports.is_empty() {
            out.push('\n');
        }
        for i in imports {
            let _ = writeln!(out, "import \"{i}\";");
        }
        out
    }

    fn service_file(
        &mut self,
        file: &str,
        service: &'static str,
        methods: &[Method],
        hooks: bool,
        rpcs: &mut Vec<Rpc>,
    ) -> Result<String, Error> {
        self.imports.clear();
        self.imports.insert(format!("{PROTO_DIR}/common.proto"));
        let (req_sfx, resp_sfx) = if hooks {
            ("HookRequest", "HookResponse")
        } else {
            ("Request", "Response")
        };
        let mut svc = String::new();
        let mut msgs = String::new();
        for m in methods {
            let shape = shape(m, hooks)?;
            let mut params = Vec::new();
            let mut results = Vec::new();
            let req = format!("{}{req_sfx}", m.name);
            let resp = format!("{}{resp_sfx}", m.name);
            let (rpc_req, rpc_resp, cs, ss) = match shape {
                Shape::ServeHttp => {
                    self.imports.insert(format!("{PROTO_DIR}/http.proto"));
                    (
                        "HTTPRequestPart".to_string(),
                        "HTTPResponsePart".to_string(),
                        true,
                        true,
                    )
                }
                Shape::PluginHttp => {
                    self.imports.insert(format!("{PROTO_DIR}/http.proto"));
                    (
                        "PluginHTTPRequestPart".to_string(),
                        "HTTPResponsePart".to_string(),
                        true,
                        true,
                    )
                }
                Shape::Unary => {
                    params = self.request(&mut msgs, m, &req, service)?;
                    results = self.response(&mut msgs, m, &resp, service)?;
                    (req.clone(), resp.clone(), false, false)
                }
                Shape::Bytes { reader, writer } => {
                    params = self.request(&mut msgs, m, &req, service)?;
                    results = self.response(&mut msgs, m, &resp, service)?;
                    let mut rq = req.clone();
                    let mut rs = resp.clone();
                    if reader {
                        rq = format!("{req}Part");
                        let _ = write!(
                            msgs,
                            "\n// A part of the {name} request stream: `init` first, then the bytes of the\n\
                             // stream parameter as `chunk` parts (each at most 64 KiB, in order); closing the\n\
                             // sending side marks the end of the bytes (EOF for the Go reader).\n\
                             message {rq} {{\n  oneof part {{\n    {req} init = 1;\n    bytes chunk = 2;\n  }}\n}}\n",
                            name = m.name
                        );
                    }
                    if writer {
                        rs = format!("{resp}Part");
                        let _ = write!(
                            msgs,
                            "\n// A part of the {name} response stream: the bytes the handler writes to the\n\
                             // io.Writer parameter as `chunk` parts (each at most 64 KiB, in order, forwarded as\n\
                             // they arrive), then exactly one `result`, which ends the call.\n\
                             message {rs} {{\n  oneof part {{\n    bytes chunk = 1;\n    {resp} result = 2;\n  }}\n}}\n",
                            name = m.name
                        );
                    }
                    (rq, rs, reader, writer)
                }
            };
            svc.push('\n');
            comment(&mut svc, "  ", &m.doc);
            if !m.regular {
                let _ = writeln!(
                    svc,
                    "  //\n  // Wire: special-cased net/rpc shape (see schema wire_note)."
                );
            }
            let _ = writeln!(
                svc,
                "  rpc {}({}{rpc_req}) returns ({}{rpc_resp});",
                m.name,
                if cs { "stream " } else { "" },
                if ss { "stream " } else { "" }
            );
            rpcs.push(Rpc {
                service,
                name: m.name.clone(),
                go_method: m.name.clone(),
                request: rpc_req,
                response: rpc_resp,
                client_streaming: cs,
                server_streaming: ss,
                doc: m.doc.clone(),
                min_server_version: m.min_server_version.clone(),
                params,
                results,
                error_result: m
                    .results
                    .iter()
                    .any(|r| r.ty == "error" || r.ty == "*model.AppError"),
            });
        }
        let what = if hooks {
            "Service PluginHooks: one RPC per plugin.Hooks method, served by the Python process."
        } else {
            "Service PluginAPI: one RPC per plugin.API method, served by the bridge."
        };
        let header = self.header(file, what);
        Ok(format!("{header}\nservice {service} {{{svc}}}\n{msgs}"))
    }

    fn request(
        &mut self,
        out: &mut String,
        m: &Method,
        name: &str,
        service: &str,
    ) -> Result<Vec<Slot>, Error> {
        let mut slots = Vec::new();
        let _ = write!(
            out,
            "\n// Request of {service}.{}.\nmessage {name} {{\n  RequestContext context = 1;\n",
            m.name
        );
        let mut used: BTreeSet<String> = ["context".to_string()].into();
        for (i, p) in m.params.iter().enumerate() {
            let num = i + 2;
            if is_stream_type(&p.ty)
                || (m.name == "LoadPluginConfiguration" && p.ty == "interface {}")
            {
                let _ = writeln!(
                    out,
                    "  // Go {} {}: not a field (travels as a stream or not at all).\n  reserved {num};",
                    p.name, p.ty
                );
                if is_stream_type(&p.ty) {
                    slots.push(Slot {
                        // Not a field: its name cannot clash with one.
                        name: field_name(&snake(&p.name)),
                        go_ty: p.ty.clone(),
                        field: None,
                        variadic: false,
                    });
                }
                continue;
            }
            let fname = if p.ty == "*plugin.Context" {
                "plugin_context".to_string()
            } else if p.name.is_empty() {
                format!("arg{i}")
            } else {
                field_name(&snake(&p.name))
            };
            let fname = unique(&mut used, fname, num);
            let ft = self
                .field(&GoType::parse(&p.ty)?, 0)
                .map_err(|e| Error::Unsupported(format!("{}({}): {e}", m.name, p.name)))?;
            let shown = match (p.variadic, p.ty.strip_prefix("[]")) {
                (true, Some(elem)) => format!("...{elem}"),
                _ => p.ty.clone(),
            };
            let _ = writeln!(out, "  // Go {} {shown}.", p.name);
            field_line(out, &ft, &fname, num);
            slots.push(Slot {
                name: fname,
                go_ty: p.ty.clone(),
                field: Some(ft),
                variadic: p.variadic,
            });
        }
        out.push_str("}\n");
        Ok(slots)
    }

    fn response(
        &mut self,
        out: &mut String,
        m: &Method,
        name: &str,
        service: &str,
    ) -> Result<Vec<Slot>, Error> {
        let mut slots = Vec::new();
        let _ = write!(
            out,
            "\n// Response of {service}.{}. An unset `error` means success.\nmessage {name} {{\n  AppError error = 1;\n",
            m.name
        );
        if m.name == "LoadPluginConfiguration" {
            out.push_str("  // The plugin configuration as JSON (Go unmarshals it into `dest`).\n  bytes config = 2;\n}\n");
            slots.push(Slot {
                name: "config".into(),
                go_ty: "[]byte".into(),
                field: Some(FieldTy::plain("bytes")),
                variadic: false,
            });
            return Ok(slots);
        }
        let mut used: BTreeSet<String> = ["error".to_string()].into();
        let mut seen_error = false;
        let mut num = 2;
        for (ri, r) in m.results.iter().enumerate() {
            if r.ty == "error" || r.ty == "*model.AppError" {
                if seen_error {
                    return Err(Error::Unsupported(format!(
                        "{} has two error results",
                        m.name
                    )));
                }
                seen_error = true;
                continue;
            }
            let t = GoType::parse(&r.ty)?;
            let fname = if m.name == "Implemented" {
                "hooks".to_string()
            } else if service == "PluginHooks"
                && r.name.is_empty()
                && r.ty == "string"
                && ri + 1 == m.results.len()
            {
                // Every hook's trailing string result is the reason it rejects the object
                // (empty = allowed), per the plugin.Hooks docs.
                "rejection_reason".to_string()
            } else if r.name.is_empty() {
                field_name(&derive_name(&t))
            } else {
                field_name(&snake(&r.name))
            };
            let fname = unique(&mut used, fname, num);
            let ft = self
                .field(&t, 0)
                .map_err(|e| Error::Unsupported(format!("{} result: {e}", m.name)))?;
            let _ = writeln!(
                out,
                "  // Go result {}{}.",
                if r.name.is_empty() { "" } else { &r.name },
                if r.name.is_empty() {
                    r.ty.clone()
                } else {
                    format!(" {}", r.ty)
                }
            );
            field_line(out, &ft, &fname, num);
            slots.push(Slot {
                name: fname,
                go_ty: r.ty.clone(),
                field: Some(ft),
                variadic: false,
            });
            num += 1;
        }
        out.push_str("}\n");
        Ok(slots)
    }
}

fn shape(m: &Method, hooks: bool) -> Result<Shape, Error> {
    let has = |ty: &str| m.params.iter().any(|p| p.ty == ty);
    if hooks && has("http.ResponseWriter") {
        let tys: Vec<&str> = m.params.iter().map(|p| p.ty.as_str()).collect();
        if tys != ["*plugin.Context", "http.ResponseWriter", "*http.Request"]
            || !m.results.is_empty()
        {
            return Err(Error::Unsupported(format!(
                "{}: unexpected HTTP hook signature {tys:?}",
                m.name
            )));
        }
        return Ok(Shape::ServeHttp);
    }
    if !hooks && has("*http.Request") {
        let ok = m.params.len() == 1 && m.results.len() == 1 && m.results[0].ty == "*http.Response";
        if !ok {
            return Err(Error::Unsupported(format!(
                "{}: unexpected HTTP API signature",
                m.name
            )));
        }
        return Ok(Shape::PluginHttp);
    }
    let readers = m.params.iter().filter(|p| p.ty == "io.Reader").count();
    let writers = m.params.iter().filter(|p| p.ty == "io.Writer").count();
    if readers > 1 || writers > 1 {
        return Err(Error::Unsupported(format!(
            "{}: more than one byte stream per direction",
            m.name
        )));
    }
    let unknown = m
        .params
        .iter()
        .chain(&m.results)
        .map(|v: &Param| v.ty.as_str())
        .find(|t| (t.contains("io.") || t.contains("http.")) && !is_stream_type(t));
    if let Some(t) = unknown {
        return Err(Error::Unsupported(format!(
            "{}: no stream mapping for {t}",
            m.name
        )));
    }
    Ok(if readers + writers == 0 {
        Shape::Unary
    } else {
        Shape::Bytes {
            reader: readers == 1,
            writer: writers == 1,
        }
    })
}

fn is_stream_type(t: &str) -> bool {
    matches!(t, "io.Reader" | "io.Writer")
}

/// Go named types with a fixed proto mapping.
fn special_named(n: &str) -> Option<&'static str> {
    Some(match n {
        "error" | "model.AppError" => "AppError",
        "time.Time" => "google.protobuf.Timestamp",
        "url.URL" => "string",
        "json.RawMessage" => "bytes",
        _ => return None,
    })
}

fn scalar(b: Basic) -> Result<&'static str, Error> {
    Ok(match b {
        Basic::Bool => "bool",
        Basic::String => "string",
        Basic::Int | Basic::Int64 => "int64",
        Basic::Int8 | Basic::Int16 | Basic::Int32 => "int32",
        Basic::Uint | Basic::Uint64 | Basic::Uintptr => "uint64",
        Basic::Uint8 | Basic::Uint16 | Basic::Uint32 => "uint32",
        Basic::Float64 => "double",
        Basic::Float32 => "float",
        Basic::Complex64 | Basic::Complex128 => {
            return Err(Error::Unsupported(format!(
                "Go basic type {} has no proto mapping",
                b.name()
            )));
        }
    })
}

/// The last dotted segment of a proto type, PascalCased (`google.protobuf.Value` → `Value`,
/// `string` → `String`).
fn last_pascal(ty: &str) -> String {
    pascal(ty.rsplit('.').next().unwrap_or(ty))
}

/// A field name for an unnamed Go result, from its type.
fn derive_name(t: &GoType) -> String {
    match t {
        GoType::Ptr(i) => derive_name(i),
        GoType::Error => snake("error"),
        GoType::Named(n) => {
            let base = n.split('[').next().unwrap_or(n);
            snake(base.rsplit('.').next().unwrap_or(base))
        }
        GoType::Slice(e) | GoType::Array(_, e) => {
            if **e == GoType::Basic(Basic::Uint8) {
                "data".into()
            } else {
                match derive_name(e).as_str() {
                    "value" => "values".into(),
                    other => plural(other),
                }
            }
        }
        GoType::Map(..) => "values".into(),
        _ => "value".into(),
    }
}

fn unique(used: &mut BTreeSet<String>, name: String, num: usize) -> String {
    let name = if used.contains(&name) {
        format!("{name}_{num}")
    } else {
        name
    };
    used.insert(name.clone());
    name
}

fn field_line(out: &mut String, f: &FieldTy, name: &str, num: usize) {
    let label = match f.label {
        Label::Plain | Label::Map => "",
        Label::Optional => "optional ",
        Label::Repeated => "repeated ",
    };
    let _ = writeln!(out, "  {label}{} {name} = {num};", f.ty);
}

/// Writes a Go doc comment as `//` lines.
fn comment(out: &mut String, indent: &str, doc: &str) {
    for line in doc.trim_end().lines() {
        if line.trim().is_empty() {
            let _ = writeln!(out, "{indent}//");
        } else {
            let _ = writeln!(out, "{indent}// {}", line.trim_end());
        }
    }
}
