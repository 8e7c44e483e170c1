//! Generic, lossless translation between gob values (what the server speaks) and protobuf
//! messages (what Python speaks), driven by the schema's Go types and the proto descriptors.
//!
//! There is no per-method or per-type code: a Go struct field at position k is proto field
//! number k, a method's parameters are request fields 2.. and its non-error results response
//! fields 2.., its error result response field 1 (docs/internals.md, "The protobuf contract").
//! The walk goes down the Go type and the proto descriptor together, so a mismatch between
//! them is found, named and reported, never silently dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use gob::{Types, Value as GobValue};
use mmplug_schema::{Basic, Field, GoType, Method, Schema, SchemaError};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage,
    Value as PbValue,
};

/// Registered name of Mattermost's AppError in `error` interfaces.
pub const APP_ERROR_NAME: &str = "*model.AppError";
/// Registered name of go-plugin/Mattermost's string error in `error` interfaces.
pub const ERROR_STRING_NAME: &str = "*plugin.ErrorString";
/// Registered name of the Postgres driver error.
pub const PQ_ERROR_NAME: &str = "*pq.Error";

/// Types the bridge encodes outside any `Z_` struct: net/rpc bodies of the response-writer
/// protocol (`SyncHeader(http.Header)`, `WriteHeader(int)`, `Write([]byte)`, `Flush(struct{})`)
/// and the bare `[]string` reply of `Implemented`.
const EXTRA_TYPES: &[&str] = &[
    "http.Header",
    "int",
    "[]uint8",
    "struct {}",
    "[]string",
    "uint32",
];

/// A value that cannot be translated. The path says where (`Post.metadata.embeds[0].data`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TranslateError {
    pub path: String,
    pub message: String,
}

pub(crate) type Result<T> = std::result::Result<T, TranslateError>;

/// Where in a value the walk is, for error messages: a chain of borrowed parts on the stack,
/// rendered (`Post.metadata.embeds.[0].data`) only when an error needs it, so the walk over
/// every field of every call allocates nothing for it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    part: Part<'a>,
}

#[derive(Debug, Clone, Copy, Default)]
enum Part<'a> {
    /// The top of the walk.
    #[default]
    Top,
    /// A message or struct field.
    Name(&'a str),
    /// A list element.
    Index(usize),
    /// A map entry.
    Key(&'a dyn std::fmt::Debug),
}

impl<'a> Path<'a> {
    pub(crate) fn root(name: &'a str) -> Path<'a> {
        Path {
            parent: None,
            part: Part::Name(name),
        }
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> TranslateError {
        let mut parts = Vec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            match p.part {
                Part::Top => {}
                Part::Name(n) => parts.push(n.to_string()),
                Part::Index(i) => parts.push(format!("[{i}]")),
                Part::Key(k) => parts.push(format!("[{k:?}]")),
            }
            at = p.parent;
        }
        parts.reverse();
        TranslateError {
            path: if parts.is_empty() {
                "(top)".into()
            } else {
                parts.join(".")
            },
            message: message.into(),
        }
    }

    pub(crate) fn with(&'a self, name: &'a str) -> Path<'a> {
        self.child(Part::Name(name))
    }

    pub(crate) fn index(&'a self, i: usize) -> Path<'a> {
        self.child(Part::Index(i))
    }

    fn key(&'a self, key: &'a dyn std::fmt::Debug) -> Path<'a> {
        self.child(Part::Key(key))
    }

    fn child(&'a self, part: Part<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            part,
        }
    }
}

/// A field the server sent that the pinned schema does not have: a server of another release
/// (an older one still sends fields v0.4.4 removed, a newer one adds fields). gob ignores such
/// fields, and a Go plugin built against the pinned module would too, so the bridge does the
/// same: there is no field in the protobuf contract to carry it. Logged once per field at
/// debug level so an operator can see the version skew.
fn note_unknown_field(type_name: &str, field: &str) {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let key = format!("{type_name}.{field}");
    let first = SEEN
        .lock()
        .map(|mut g| g.get_or_insert_with(Default::default).insert(key.clone()))
        .unwrap_or(false);
    if first {
        crate::log::log(
            crate::log::Level::Debug,
            "the server sent a field this bridge's schema does not have; ignoring it, as gob does",
            &[("field", key)],
        );
    }
}

/// The Go value a translated value replaces, if known: see [`Translator::message_to_wire`].
pub(crate) type Hint<'a> = Option<&'a GobValue>;

fn hint_field<'a>(hint: Hint<'a>, name: &str) -> Hint<'a> {
    match hint {
        Some(GobValue::Struct(s)) => s.get(name),
        _ => None,
    }
}

pub(crate) fn hint_index(hint: Hint<'_>, i: usize) -> Hint<'_> {
    match hint {
        Some(GobValue::Slice(v) | GobValue::Array(v)) => v.get(i),
        _ => None,
    }
}

pub(crate) fn hint_key<'a>(hint: Hint<'a>, key: &GobValue) -> Hint<'a> {
    match hint {
        Some(GobValue::Map(entries)) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

/// An interface hint's concrete value.
pub(crate) fn hint_unwrap(hint: Hint<'_>) -> Hint<'_> {
    match hint {
        Some(GobValue::Interface(Some(i))) => Some(&i.value),
        other => other,
    }
}

/// A number from a `google.protobuf.Value`: what the replaced Go value was if it was the same
/// number, else `float64` (what `encoding/json` gives for a JSON number).
pub(crate) fn number_like_hint(f: f64, hint: Hint<'_>) -> GobValue {
    if let Some(GobValue::Interface(Some(i))) = hint {
        match &i.value {
            GobValue::Int(n) if *n as f64 == f => {
                return GobValue::interface(i.name.clone(), GobValue::Int(*n));
            }
            GobValue::Uint(n) if *n as f64 == f => {
                return GobValue::interface(i.name.clone(), GobValue::Uint(*n));
            }
            GobValue::Float(x) if *x == f => {
                return GobValue::interface(i.name.clone(), GobValue::Float(*x));
            }
            _ => {}
        }
    }
    GobValue::interface("float64", GobValue::Float(f))
}

/// For a result field of a hook, the argument of the same Go type (the value the result
/// replaces: MessageWillBePosted's post, MessageWillBeUpdated's new post, ...).
fn hint_for_result<'a>(m: &Method, result: &Field, args: &'a GobValue) -> Hint<'a> {
    let GobValue::Struct(s) = args else {
        return None;
    };
    let arg = m
        .args_fields
        .iter()
        .find(|a| a.ty == result.ty && a.role.as_deref() == Some("param"))?;
    s.get(&arg.name)
}

/// Which way an `error`/AppError travels, to pick proto field numbers for results.
fn is_error_type(t: &GoType) -> bool {
    match t {
        GoType::Error => true,
        GoType::Ptr(inner) => matches!(&**inner, GoType::Named(n) if n == "model.AppError"),
        _ => false,
    }
}

/// The type a named non-struct type stands for on the translation path (`model.StringMap` →
/// `map[string]string`, a named interface → `interface {}`); structs, GobEncoders and
/// anything else come back as they are.
fn resolve_underlying(schema: &Schema, t: &GoType) -> GoType {
    if let GoType::Named(n) = t
        && let Some(def) = schema.types.get(n)
    {
        if def.kind == "named"
            && def.gob.is_none()
            && let Some(u) = def
                .underlying
                .as_deref()
                .and_then(|u| GoType::parse(u).ok())
        {
            return resolve_underlying(schema, &u);
        }
        if def.kind == "interface" {
            return GoType::Interface;
        }
    }
    t.clone()
}

/// A method's `Z_` args and returns structs: (name, fields as (name, Go type)) each.
type WireStructs = (String, Vec<(String, String)>, String, Vec<(String, String)>);

/// The translator: the schema, the gob type arena built from it, and the descriptors.
#[derive(Debug)]
pub struct Translator {
    schema: Schema,
    types: Types,
    /// gob type for each Go type expression seen, keyed by its canonical spelling.
    gob_types: HashMap<String, gob::TypeId>,
    /// parsed Go types of struct fields, by named type: computed once.
    struct_fields: HashMap<String, Vec<(String, GoType)>>,
    /// What [`Translator::underlying`] resolves a named type to, for the named types it does
    /// not leave as they are: computed once.
    underlying: HashMap<String, GoType>,
    /// The `Z_` args and returns structs of the methods called so far as envelopes, by
    /// struct name: computed at a method's first call instead of at every call (a plugin
    /// calls few of the hundreds of methods, so none is made before it is needed).
    envelopes: Mutex<HashMap<String, Arc<Envelope>>>,
    /// Positions in `schema.api` and `schema.hooks`, sorted by method name, for the lookup
    /// every call makes (a binary search instead of a scan): one small allocation each.
    api_by_name: Vec<u16>,
    hooks_by_name: Vec<u16>,
}

/// The positions of `methods` sorted by name; of methods with the same name, the first
/// (as [`Schema::api_method`] and [`Schema::hook`] find it).
fn by_name(methods: &[Method]) -> std::result::Result<Vec<u16>, SchemaError> {
    let count = u16::try_from(methods.len()).map_err(|_| {
        SchemaError::Undefined(format!("{} methods: more than a u16 counts", methods.len()))
    })?;
    let mut order: Vec<u16> = (0..count).collect();
    // Stable: equal names keep their schema order, so the first comes first.
    order.sort_by(|&a, &b| {
        methods[usize::from(a)]
            .name
            .cmp(&methods[usize::from(b)].name)
    });
    order.dedup_by(|later, earlier| {
        methods[usize::from(*later)].name == methods[usize::from(*earlier)].name
    });
    Ok(order)
}

/// The method `name` among `methods`, through `sorted` (from [`by_name`]).
fn find_by_name<'a>(methods: &'a [Method], sorted: &[u16], name: &str) -> Option<&'a Method> {
    let at = sorted
        .binary_search_by(|&i| methods[usize::from(i)].name.as_str().cmp(name))
        .ok()?;
    methods.get(usize::from(sorted[at]))
}

/// A `Z_` struct's fields as a method envelope maps them, in order: each field's proto field
/// number (`None` for a field that is not a parameter or result) and its Go type (or why its
/// type does not parse, reported when the field is translated).
type Envelope = Vec<(Option<u32>, std::result::Result<GoType, String>)>;

impl Translator {
    /// Builds the gob type arena for every named type, every `Z_` struct and every registered
    /// interface name in the schema.
    pub fn new(schema: Schema) -> std::result::Result<Translator, SchemaError> {
        let mut t = Translator {
            schema,
            types: Types::new(),
            gob_types: HashMap::new(),
            struct_fields: HashMap::new(),
            underlying: HashMap::new(),
            envelopes: Mutex::default(),
            api_by_name: Vec::new(),
            hooks_by_name: Vec::new(),
        };
        t.api_by_name = by_name(&t.schema.api)?;
        t.hooks_by_name = by_name(&t.schema.hooks)?;
        let names: Vec<String> = t.schema.types.keys().cloned().collect();
        for name in &names {
            let def = &t.schema.types[name];
            if def.kind == "struct" && def.gob.is_none() {
                let mut fields = Vec::with_capacity(def.fields.len());
                for f in &def.fields {
                    fields.push((f.name.clone(), t.schema.resolve(&f.ty)?));
                }
                t.struct_fields.insert(name.clone(), fields);
            }
        }
        for name in &names {
            let named = GoType::Named(name.clone());
            let resolved = resolve_underlying(&t.schema, &named);
            if resolved != named {
                t.underlying.insert(name.clone(), resolved);
            }
        }
        for name in &names {
            t.gob_type(&GoType::Named(name.clone()))?;
        }
        let methods: Vec<WireStructs> = t
            .schema
            .api
            .iter()
            .chain(t.schema.hooks.iter())
            .flat_map(|m| {
                let pairs = |fs: &[Field]| {
                    fs.iter()
                        .map(|f| (f.name.clone(), f.ty.clone()))
                        .collect::<Vec<_>>()
                };
                let main = (
                    m.args_struct.clone().unwrap_or_default(),
                    pairs(&m.args_fields),
                    m.returns_struct.clone().unwrap_or_default(),
                    pairs(&m.returns_fields),
                );
                // Alternate wire forms (PluginHTTPStream) need their structs too.
                let alternates = m.alternates.iter().map(move |w| {
                    (
                        w.args_struct.clone().unwrap_or_default(),
                        pairs(&w.args_fields),
                        w.returns_struct.clone().unwrap_or_default(),
                        pairs(&w.returns_fields),
                    )
                });
                std::iter::once(main).chain(alternates)
            })
            .collect();
        for (args_name, args, returns_name, returns) in methods {
            for (name, fields) in [(args_name, args), (returns_name, returns)] {
                if name.is_empty() {
                    continue;
                }
                let mut ids = Vec::with_capacity(fields.len());
                for (fname, fty) in fields {
                    let ty = t.schema.resolve(&fty)?;
                    ids.push((fname, t.gob_type(&ty)?));
                }
                let id = t
                    .types
                    .struct_type(&name, ids)
                    .map_err(|e| SchemaError::Undefined(format!("{name}: {e:?}")))?;
                t.gob_types.insert(format!("plugin.{name}"), id);
            }
        }
        let registered: Vec<(String, String)> = t
            .schema
            .registered
            .iter()
            .map(|r| (r.name.clone(), r.ty.clone()))
            .collect();
        for (name, ty) in registered {
            let go = t.schema.resolve(&ty)?;
            let id = t.gob_type(&go)?;
            t.types.register(&name, id);
        }
        for expr in EXTRA_TYPES {
            let go = t.schema.resolve(expr)?;
            t.gob_type(&go)?;
        }
        Ok(t)
    }

    /// The API method `name`, as [`Schema::api_method`] finds it, without a scan.
    pub fn api_method(&self, name: &str) -> Option<&Method> {
        find_by_name(&self.schema.api, &self.api_by_name, name)
    }

    /// The hook `name`, as [`Schema::hook`] finds it, without a scan.
    pub fn hook(&self, name: &str) -> Option<&Method> {
        find_by_name(&self.schema.hooks, &self.hooks_by_name, name)
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Hands the gob type arena over (to the net/rpc layer, which adds its header types and
    /// owns it from then on). The type ids this translator returns stay valid in it.
    pub fn take_types(&mut self) -> Types {
        std::mem::take(&mut self.types)
    }

    /// The gob type of a Go type expression that [`Translator::new`] built (every type in
    /// the schema, plus the few the bridge sends by hand: see `EXTRA_TYPES`).
    pub fn type_of(&self, expr: &str) -> Option<gob::TypeId> {
        self.gob_types.get(expr).copied()
    }

    /// The gob type of a method's `Z_` args or returns struct (`Z_KVGetArgs`).
    pub fn wire_struct(&self, name: &str) -> Option<gob::TypeId> {
        self.gob_types.get(&format!("plugin.{name}")).copied()
    }

    /// The gob type for a Go type, building it (and everything it references) on first use.
    pub fn gob_type(&mut self, t: &GoType) -> std::result::Result<gob::TypeId, SchemaError> {
        let key = t.to_string();
        if let Some(id) = self.gob_types.get(&key) {
            return Ok(*id);
        }
        let bad = |e: gob::SchemaError| SchemaError::Undefined(format!("{key}: {e:?}"));
        let id = match t {
            GoType::Basic(b) => match b {
                Basic::Bool => self.types.bool(),
                Basic::String => self.types.string(),
                Basic::Float32 | Basic::Float64 => self.types.float(),
                Basic::Complex64 | Basic::Complex128 => self.types.complex(),
                b if b.is_signed() => self.types.int(),
                _ => self.types.uint(),
            },
            GoType::Ptr(inner) => self.gob_type(inner)?,
            GoType::Interface | GoType::Error => self.types.interface(),
            GoType::EmptyStruct => self.types.struct_type("", Vec::new()).map_err(bad)?,
            // Parsed, but nothing on the translation path carries them.
            GoType::UnnamedInterface(_) | GoType::UnnamedStruct(_) => {
                return Err(SchemaError::Unsupported(key));
            }
            GoType::Slice(e) if t.is_byte_slice() => {
                let _ = e;
                self.types.bytes()
            }
            GoType::Slice(e) => {
                let e = self.gob_type(e)?;
                self.types.slice(e)
            }
            GoType::Array(n, e) => {
                let e = self.gob_type(e)?;
                self.types.array(*n, e)
            }
            GoType::Map(k, v) => {
                let k = self.gob_type(k)?;
                let v = self.gob_type(v)?;
                self.types.map(k, v)
            }
            GoType::Named(name) => {
                let def = self
                    .schema
                    .types
                    .get(name)
                    .ok_or_else(|| SchemaError::Undefined(name.clone()))?;
                let short = name.rsplit('.').next().unwrap_or(name).to_string();
                match (def.gob.as_deref(), def.kind.as_str()) {
                    (Some("GobEncoder"), _) => self.types.gob_encoder(&short),
                    (Some("BinaryMarshaler"), _) => self.types.binary_marshaler(&short),
                    (_, "struct") => {
                        // Declare first so recursive types can refer to themselves.
                        let id = self.types.declare_struct(&short);
                        self.gob_types.insert(key.clone(), id);
                        let fields = self.struct_fields.get(name).cloned().unwrap_or_default();
                        let mut ids = Vec::with_capacity(fields.len());
                        for (fname, fty) in &fields {
                            ids.push((fname.clone(), self.gob_type(fty)?));
                        }
                        self.types.define_struct(id, ids).map_err(bad)?;
                        return Ok(id);
                    }
                    (_, "interface") => self.types.interface(),
                    _ => {
                        let under = def.underlying.clone().ok_or_else(|| {
                            SchemaError::Undefined(format!("{name} has no underlying type"))
                        })?;
                        let under = self.schema.resolve(&under)?;
                        let like = self.gob_type(&under)?;
                        // Go gives named slices, arrays and maps their own type id and name;
                        // a named basic type is just the basic type on the wire.
                        match under.pointee() {
                            GoType::Slice(_) if !under.is_byte_slice() => {
                                self.types.named(&short, like).map_err(bad)?
                            }
                            GoType::Array(..) | GoType::Map(..) => {
                                self.types.named(&short, like).map_err(bad)?
                            }
                            _ => like,
                        }
                    }
                }
            }
        };
        self.gob_types.insert(key, id);
        Ok(id)
    }

    /// Fields of a named struct type as parsed Go types.
    fn fields_of(&self, name: &str) -> Option<&[(String, GoType)]> {
        self.struct_fields.get(name).map(Vec::as_slice)
    }

    /// Resolves named non-struct types to their underlying type (`model.StringMap` →
    /// `map[string]string`), leaving structs, GobEncoders and interfaces named. Looked up in
    /// the table [`Translator::new`] fills: this runs for every field of every call.
    fn underlying<'a>(&'a self, t: &'a GoType) -> &'a GoType {
        match t {
            GoType::Named(n) => self.underlying.get(n).unwrap_or(t),
            _ => t,
        }
    }

    // ===== method envelopes =====

    /// Proto field number of each `Z_` field, following the envelope rule; `None` for fields
    /// that are not a parameter or result (stream ids of irregular methods).
    fn envelope(&self, m: &Method, results: bool) -> Arc<Envelope> {
        let name = if results {
            &m.returns_struct
        } else {
            &m.args_struct
        };
        let Some(name) = name else {
            return Arc::new(Self::make_envelope(m, results));
        };
        // Every update is one insert: a panic elsewhere leaves the cache usable.
        let mut envelopes = self
            .envelopes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(envelope) = envelopes.get(name) {
            return Arc::clone(envelope);
        }
        let envelope = Arc::new(Self::make_envelope(m, results));
        envelopes.insert(name.clone(), Arc::clone(&envelope));
        envelope
    }

    fn make_envelope(m: &Method, results: bool) -> Envelope {
        let fields = if results {
            &m.returns_fields
        } else {
            &m.args_fields
        };
        fields
            .iter()
            .zip(Self::envelope_numbers(m, results))
            .map(|(f, number)| (number, GoType::parse(&f.ty).map_err(|e| e.to_string())))
            .collect()
    }

    fn envelope_numbers(m: &Method, results: bool) -> Vec<Option<u32>> {
        let fields = if results {
            &m.returns_fields
        } else {
            &m.args_fields
        };
        let sig = if results { &m.results } else { &m.params };
        let mut next = 2u32;
        let mut numbers_by_index = Vec::with_capacity(sig.len());
        for p in sig {
            let is_err = results
                && GoType::parse(&p.ty)
                    .map(|t| is_error_type(&t))
                    .unwrap_or(false);
            if is_err {
                numbers_by_index.push(1);
            } else {
                numbers_by_index.push(next);
                next += 1;
            }
        }
        fields
            .iter()
            .map(|f| {
                let role = if results { "result" } else { "param" };
                if f.role.as_deref() == Some(role) {
                    f.index.and_then(|i| numbers_by_index.get(i).copied())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Builds the `Z_` struct value (args of an API call, or returns of a hook) from a proto
    /// request/response message.
    ///
    /// `hint` is the value this one replaces, if any (a hook's args when translating its
    /// returns): where Python sends back a number equal to the one Go sent, the Go kind it
    /// had (`int64`, `int`, ...) is kept, because protobuf's `Value` has only doubles.
    ///
    /// `streams` gives the values of the broker stream-id fields (role `stream`) of irregular
    /// methods, which the caller allocates; any other non-parameter field is an error.
    pub fn message_to_wire(
        &self,
        m: &Method,
        results: bool,
        msg: &DynamicMessage,
        hint: Option<&GobValue>,
        streams: &[(&str, GobValue)],
    ) -> Result<GobValue> {
        let fields = if results {
            &m.returns_fields
        } else {
            &m.args_fields
        };
        let envelope = self.envelope(m, results);
        let mut out = Vec::new();
        let desc = msg.descriptor();
        let path = Path::root(desc.name());
        for (f, (number, go)) in fields.iter().zip(envelope.iter()) {
            let Some(number) = number else {
                if let Some((_, v)) = streams.iter().find(|(name, _)| *name == f.name) {
                    out.push((f.name.clone(), v.clone()));
                    continue;
                }
                return Err(path.err(format!("field {} of {} is not a plain parameter or result; it needs the method's own path", f.name, m.name)));
            };
            let fd = desc.get_field(*number).ok_or_else(|| {
                path.err(format!("no field number {number} for Go field {}", f.name))
            })?;
            let go = go.as_ref().map_err(|e| path.err(e.clone()))?;
            let field_hint = hint.and_then(|h| hint_for_result(m, f, h));
            if let Some(v) = self.field_to_gob(go, msg, &fd, &path.with(fd.name()), field_hint)? {
                out.push((f.name.clone(), v));
            }
        }
        Ok(GobValue::Struct(gob::Struct::new(out)))
    }

    /// Builds a proto request/response message from a `Z_` struct value (args of a hook, or
    /// returns of an API call).
    pub fn wire_to_message(
        &self,
        m: &Method,
        results: bool,
        wire: &GobValue,
        desc: &MessageDescriptor,
    ) -> Result<DynamicMessage> {
        let fields = if results {
            &m.returns_fields
        } else {
            &m.args_fields
        };
        let envelope = self.envelope(m, results);
        let path = Path::root(desc.name());
        let GobValue::Struct(s) = wire else {
            return Err(path.err(format!(
                "expected the {} struct, got a gob {}",
                m.name,
                wire.kind_name()
            )));
        };
        for (name, _) in &s.fields {
            if !fields.iter().any(|f| &f.name == name) {
                note_unknown_field(&format!("plugin.{}", desc.name()), name);
            }
        }
        let mut msg = DynamicMessage::new(desc.clone());
        for (f, (number, go)) in fields.iter().zip(envelope.iter()) {
            let Some(v) = s.get(&f.name) else { continue };
            // Broker stream ids are the caller's business (it dials them); they have no
            // proto field.
            if f.role.as_deref() == Some("stream") {
                continue;
            }
            let Some(number) = number else {
                return Err(path.err(format!(
                    "field {} of {} is not a plain parameter or result",
                    f.name, m.name
                )));
            };
            let fd = desc.get_field(*number).ok_or_else(|| {
                path.err(format!("no field number {number} for Go field {}", f.name))
            })?;
            let go = go.as_ref().map_err(|e| path.err(e.clone()))?;
            let pv = self.gob_to_field(go, v, &fd, &path.with(fd.name()))?;
            msg.set_field(&fd, pv);
        }
        Ok(msg)
    }

    // ===== proto → gob =====

    /// Translates one proto field into the gob value of Go type `go`; `None` when the field is
    /// unset (Go's nil pointer / omitted zero value).
    fn field_to_gob(
        &self,
        go: &GoType,
        msg: &DynamicMessage,
        fd: &FieldDescriptor,
        path: &Path,
        hint: Hint<'_>,
    ) -> Result<Option<GobValue>> {
        // An unset field (proto3: a default scalar, an empty list or map, an absent message)
        // is Go's zero value or nil pointer, which gob omits from structs anyway.
        if !msg.has_field(fd) {
            return Ok(None);
        }
        let v = msg.get_field(fd);
        self.to_gob(go, &v, fd, path, hint).map(Some)
    }

    fn to_gob(
        &self,
        go: &GoType,
        v: &PbValue,
        fd: &FieldDescriptor,
        path: &Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        grow_stack(|| self.to_gob_here(go, v, fd, path, hint))
    }

    fn to_gob_here(
        &self,
        go: &GoType,
        v: &PbValue,
        fd: &FieldDescriptor,
        path: &Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        let go = self.underlying(go.pointee());
        if fd.is_list() && !matches!(go, GoType::Slice(_) | GoType::Array(..)) || go.is_byte_slice()
        {
            // Repeated fields only map to Go slices/arrays; []byte is a bytes scalar.
            if go.is_byte_slice() {
                return match v {
                    PbValue::Bytes(b) => Ok(GobValue::Bytes(b.to_vec())),
                    other => Err(path.err(format!("expected bytes for {go}, got {other:?}"))),
                };
            }
            return Err(path.err(format!("repeated proto field for non-slice Go type {go}")));
        }
        match (&go, v) {
            (GoType::Slice(elem) | GoType::Array(_, elem), PbValue::List(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.elem_to_gob(elem, item, &path.index(i), hint_index(hint, i))?);
                }
                if let GoType::Array(n, _) = &go {
                    if out.len() as u64 != *n {
                        return Err(path.err(format!(
                            "Go array {go} needs {n} elements, got {}",
                            out.len()
                        )));
                    }
                    return Ok(GobValue::Array(out));
                }
                Ok(GobValue::Slice(out))
            }
            (GoType::Map(kt, vt), PbValue::Map(entries)) => {
                let mut keys: Vec<&MapKey> = entries.keys().collect();
                keys.sort_by_cached_key(|k| format!("{k:?}"));
                let mut out = Vec::with_capacity(entries.len());
                for k in keys {
                    let key = self.map_key_to_gob(kt, k, path)?;
                    let val =
                        self.elem_to_gob(vt, &entries[k], &path.key(k), hint_key(hint, &key))?;
                    out.push((key, val));
                }
                Ok(GobValue::Map(out))
            }
            _ => self.scalar_to_gob(go, v, path, hint),
        }
    }

    /// A list element or map value.
    fn elem_to_gob(
        &self,
        go: &GoType,
        v: &PbValue,
        path: &Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        let go = self.underlying(go.pointee());
        match (&go, v) {
            // Nested slices and maps travel as wrapper messages `{ values = 1 }`.
            (GoType::Slice(_) | GoType::Array(..) | GoType::Map(..), PbValue::Message(m))
                if !go.is_byte_slice() =>
            {
                let inner = m
                    .descriptor()
                    .get_field(1)
                    .ok_or_else(|| path.err("wrapper message without field 1"))?;
                self.to_gob(go, &m.get_field(&inner), &inner, path, hint)
            }
            _ => self.scalar_to_gob(go, v, path, hint),
        }
    }

    fn map_key_to_gob(&self, go: &GoType, k: &MapKey, path: &Path) -> Result<GobValue> {
        let go = self.underlying(go.pointee());
        let v = match k {
            MapKey::Bool(b) => PbValue::Bool(*b),
            MapKey::I32(i) => PbValue::I32(*i),
            MapKey::I64(i) => PbValue::I64(*i),
            MapKey::U32(i) => PbValue::U32(*i),
            MapKey::U64(i) => PbValue::U64(*i),
            MapKey::String(s) => PbValue::String(s.clone()),
        };
        self.scalar_to_gob(go, &v, path, None)
    }

    fn scalar_to_gob(
        &self,
        go: &GoType,
        v: &PbValue,
        path: &Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        let mismatch = || path.err(format!("proto value {v:?} does not fit Go type {go}"));
        Ok(match (go, v) {
            (GoType::Basic(Basic::Bool), PbValue::Bool(b)) => GobValue::Bool(*b),
            (GoType::Basic(Basic::String), PbValue::String(s)) => restore_string(s, hint),
            (GoType::Basic(b), v) if b.is_signed() => {
                let i = match v {
                    PbValue::I64(i) => *i,
                    PbValue::I32(i) => i64::from(*i),
                    PbValue::EnumNumber(i) => i64::from(*i),
                    _ => return Err(mismatch()),
                };
                let (lo, hi) = b.signed_range();
                if i < lo || i > hi {
                    return Err(path.err(format!("{i} overflows Go {}", b.name())));
                }
                GobValue::Int(i)
            }
            (GoType::Basic(b), v) if b.is_unsigned() => {
                let u = match v {
                    PbValue::U64(u) => *u,
                    PbValue::U32(u) => u64::from(*u),
                    _ => return Err(mismatch()),
                };
                if u > b.unsigned_max() {
                    return Err(path.err(format!("{u} overflows Go {}", b.name())));
                }
                GobValue::Uint(u)
            }
            (GoType::Basic(Basic::Float32 | Basic::Float64), PbValue::F64(f)) => {
                GobValue::Float(*f)
            }
            (GoType::Basic(Basic::Float32 | Basic::Float64), PbValue::F32(f)) => {
                GobValue::Float(f64::from(*f))
            }
            // `google.protobuf.Value` and `Struct` arrive encoded (crate::pbvalue).
            (GoType::Interface, PbValue::Bytes(b)) => {
                self.value_bytes_to_interface(b, path, hint)?
            }
            (GoType::Map(kt, vt), PbValue::Bytes(b)) => {
                if !matches!(**kt, GoType::Basic(Basic::String)) || **vt != GoType::Interface {
                    return Err(path.err(format!("google.protobuf.Struct for Go type {go}")));
                }
                self.struct_bytes_to_gob_map(b, path, hint)?
            }
            (GoType::Error, PbValue::Message(m)) => self.app_error_to_gob(m, true, path)?,
            (GoType::Named(n), PbValue::Message(m)) if n == "model.AppError" => {
                self.app_error_to_gob(m, false, path)?
            }
            (GoType::Named(n), v) if n == "time.Time" => {
                let PbValue::Message(m) = v else {
                    return Err(mismatch());
                };
                let secs = m
                    .get_field_by_number(1)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                let nanos = m
                    .get_field_by_number(2)
                    .and_then(|v| v.as_i32())
                    .unwrap_or(0);
                let nanos =
                    u32::try_from(nanos).map_err(|_| path.err("negative nanos in Timestamp"))?;
                let t = gob::time::GoTime::utc(secs, nanos);
                GobValue::Encoded(t.encode().map_err(|e| path.err(format!("time: {e:?}")))?)
            }
            (GoType::Named(n), PbValue::String(s)) if n == "url.URL" => {
                GobValue::Encoded(s.as_bytes().to_vec())
            }
            (GoType::Named(n), PbValue::Bytes(b)) if self.is_encoded(n) => {
                GobValue::Encoded(b.to_vec())
            }
            (GoType::Named(n), PbValue::Message(m)) => {
                let fields = self
                    .fields_of(n)
                    .ok_or_else(|| path.err(format!("{n} is not a struct in the schema")))?;
                let mut out = Vec::new();
                for (i, (fname, fty)) in fields.iter().enumerate() {
                    let number = i as u32 + 1;
                    let fd = m.descriptor().get_field(number).ok_or_else(|| {
                        path.err(format!(
                            "message {} has no field {number} for Go {n}.{fname}",
                            m.descriptor().full_name()
                        ))
                    })?;
                    if let Some(v) = self.field_to_gob(
                        fty,
                        m,
                        &fd,
                        &path.with(fd.name()),
                        hint_field(hint, fname),
                    )? {
                        out.push((fname.clone(), v));
                    }
                }
                GobValue::Struct(gob::Struct::new(out))
            }
            (GoType::EmptyStruct, _) => GobValue::Struct(gob::Struct::default()),
            _ => return Err(mismatch()),
        })
    }

    fn is_encoded(&self, name: &str) -> bool {
        self.schema.types.get(name).is_some_and(|d| d.gob.is_some())
    }

    /// Our `AppError` message → `*model.AppError` (or, inside an `error` interface, whichever
    /// Go error type its `kind` names). An empty AppError (no id, no message) is no error.
    fn app_error_to_gob(
        &self,
        m: &DynamicMessage,
        as_interface: bool,
        path: &Path,
    ) -> Result<GobValue> {
        let s = |n: u32| {
            m.get_field_by_number(n)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let i = |n: u32| {
            m.get_field_by_number(n)
                .and_then(|v| v.as_i64())
                .unwrap_or(0)
        };
        let kind = m
            .get_field_by_number(16)
            .and_then(|v| v.as_enum_number())
            .unwrap_or(0);
        let app_error = || {
            let mut f = vec![
                ("Id", GobValue::String(s(1))),
                ("Message", GobValue::String(s(2))),
                ("DetailedError", GobValue::String(s(3))),
                ("RequestId", GobValue::String(s(4))),
                ("StatusCode", GobValue::Int(i(5))),
                ("Where", GobValue::String(s(6))),
                (
                    "SkipTranslation",
                    GobValue::Bool(
                        m.get_field_by_number(7)
                            .and_then(|v| v.as_bool())
                            .unwrap_or(false),
                    ),
                ),
            ];
            f.retain(|(_, v)| !is_zero(v));
            GobValue::structure(f)
        };
        if !as_interface {
            if kind != 0 {
                return Err(path.err("a *model.AppError result cannot carry another error kind"));
            }
            return Ok(app_error());
        }
        Ok(match kind {
            // An `error` without an id is a plain Go error: send what go-plugin's
            // encodableError would, so err.Error() on the server is exactly the message.
            0 if s(1).is_empty() => GobValue::interface(
                ERROR_STRING_NAME,
                GobValue::structure([("Err", GobValue::String(s(2)))]),
            ),
            0 => GobValue::interface(APP_ERROR_NAME, app_error()),
            1 => {
                let mut f = vec![
                    ("Code", GobValue::Int(i(17))),
                    ("Err", GobValue::String(s(2))),
                ];
                f.retain(|(_, v)| !is_zero(v));
                GobValue::interface(ERROR_STRING_NAME, GobValue::structure(f))
            }
            2 => {
                let mut f = vec![
                    ("Code", GobValue::String(s(1))),
                    ("Message", GobValue::String(s(2))),
                    ("Detail", GobValue::String(s(3))),
                ];
                f.retain(|(_, v)| !is_zero(v));
                GobValue::interface(PQ_ERROR_NAME, GobValue::structure(f))
            }
            k => return Err(path.err(format!("unknown ErrorKind {k}"))),
        })
    }

    // ===== gob → proto =====

    /// Translates a gob value of Go type `go` into the value for proto field `fd`.
    fn gob_to_field(
        &self,
        go: &GoType,
        v: &GobValue,
        fd: &FieldDescriptor,
        path: &Path,
    ) -> Result<PbValue> {
        grow_stack(|| self.gob_to_field_here(go, v, fd, path))
    }

    fn gob_to_field_here(
        &self,
        go: &GoType,
        v: &GobValue,
        fd: &FieldDescriptor,
        path: &Path,
    ) -> Result<PbValue> {
        let go = self.underlying(go.pointee());
        if go.is_byte_slice() {
            return match v {
                GobValue::Bytes(b) => Ok(PbValue::Bytes(b.clone().into())),
                other => Err(path.err(format!(
                    "expected bytes for {go}, got gob {}",
                    other.kind_name()
                ))),
            };
        }
        match (&go, v) {
            (
                GoType::Slice(elem) | GoType::Array(_, elem),
                GobValue::Slice(items) | GobValue::Array(items),
            ) if fd.is_list() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.gob_to_elem(elem, item, fd, &path.index(i))?);
                }
                Ok(PbValue::List(out))
            }
            (GoType::Map(kt, vt), GobValue::Map(entries)) if fd.is_map() => {
                let Kind::Message(entry) = fd.kind() else {
                    return Err(path.err("map field without entry message"));
                };
                let value_fd = entry.map_entry_value_field();
                let mut out = HashMap::with_capacity(entries.len());
                for (k, val) in entries {
                    let key = self.gob_to_map_key(kt, k, path)?;
                    let pv = self.gob_to_elem(vt, val, &value_fd, &path.key(&key))?;
                    out.insert(key, pv);
                }
                Ok(PbValue::Map(out))
            }
            _ => self.gob_to_single(go, v, fd.kind(), path),
        }
    }

    fn gob_to_elem(
        &self,
        go: &GoType,
        v: &GobValue,
        fd: &FieldDescriptor,
        path: &Path,
    ) -> Result<PbValue> {
        let go = self.underlying(go.pointee());
        match (&go, fd.kind()) {
            // A nested slice or map value: a wrapper message with field 1 holding it.
            (GoType::Slice(_) | GoType::Array(..) | GoType::Map(..), Kind::Message(wrapper))
                if !go.is_byte_slice() =>
            {
                let inner = wrapper
                    .get_field(1)
                    .ok_or_else(|| path.err("wrapper message without field 1"))?;
                let mut m = DynamicMessage::new(wrapper.clone());
                let pv = self.gob_to_field(go, v, &inner, path)?;
                m.set_field(&inner, pv);
                Ok(PbValue::Message(m))
            }
            _ => self.gob_to_single(go, v, fd.kind(), path),
        }
    }

    fn gob_to_map_key(&self, go: &GoType, v: &GobValue, path: &Path) -> Result<MapKey> {
        Ok(match v {
            GobValue::String(s) => MapKey::String(s.clone()),
            GobValue::NonUtf8String(b) => MapKey::String(lossy_text(b)),
            GobValue::Bool(b) => MapKey::Bool(*b),
            GobValue::Int(i) => MapKey::I64(*i),
            GobValue::Uint(u) => MapKey::U64(*u),
            other => {
                return Err(path.err(format!(
                    "map key of Go type {go} arrived as gob {}",
                    other.kind_name()
                )));
            }
        })
    }

    fn gob_to_single(&self, go: &GoType, v: &GobValue, kind: Kind, path: &Path) -> Result<PbValue> {
        let mismatch = || {
            path.err(format!(
                "gob {} does not fit Go type {go} / proto {kind:?}",
                v.kind_name()
            ))
        };
        Ok(match (go, v, &kind) {
            // `google.protobuf.Value` and `Struct` travel encoded (crate::pbvalue); first, so an
            // unwrapped []byte inside an interface becomes base64 text, not bytes.
            (GoType::Interface, v, Kind::Bytes) => {
                PbValue::Bytes(self.interface_to_value_bytes(v, path)?.into())
            }
            (GoType::Map(..), GobValue::Map(entries), Kind::Bytes) => {
                PbValue::Bytes(self.gob_map_to_struct_bytes(entries, path)?.into())
            }
            (_, GobValue::Bool(b), Kind::Bool) => PbValue::Bool(*b),
            (_, GobValue::String(s), Kind::String) => PbValue::String(s.clone()),
            (_, GobValue::NonUtf8String(b), Kind::String) => PbValue::String(lossy_text(b)),
            (_, GobValue::Int(i), Kind::Int64 | Kind::Sint64 | Kind::Sfixed64) => PbValue::I64(*i),
            (_, GobValue::Int(i), Kind::Int32 | Kind::Sint32 | Kind::Sfixed32) => PbValue::I32(
                i32::try_from(*i).map_err(|_| path.err(format!("{i} overflows int32")))?,
            ),
            (_, GobValue::Int(i), Kind::Enum(_)) => PbValue::EnumNumber(
                i32::try_from(*i).map_err(|_| path.err(format!("{i} overflows enum")))?,
            ),
            (_, GobValue::Uint(u), Kind::Uint64 | Kind::Fixed64) => PbValue::U64(*u),
            (_, GobValue::Uint(u), Kind::Uint32 | Kind::Fixed32) => PbValue::U32(
                u32::try_from(*u).map_err(|_| path.err(format!("{u} overflows uint32")))?,
            ),
            (_, GobValue::Float(f), Kind::Double) => PbValue::F64(*f),
            (_, GobValue::Float(f), Kind::Float) => PbValue::F32(*f as f32),
            (_, GobValue::Bytes(b), Kind::Bytes) => PbValue::Bytes(b.clone().into()),
            (GoType::Named(n), GobValue::Encoded(b), Kind::Message(md))
                if n == "time.Time" && md.full_name() == "google.protobuf.Timestamp" =>
            {
                let t = gob::time::GoTime::decode(b)
                    .map_err(|e| path.err(format!("time.Time: {e:?}")))?;
                let mut m = DynamicMessage::new(md.clone());
                m.set_field_by_number(1, PbValue::I64(t.unix_secs));
                m.set_field_by_number(2, PbValue::I32(t.nanos as i32));
                PbValue::Message(m)
            }
            (GoType::Named(n), GobValue::Encoded(b), Kind::String) if n == "url.URL" => {
                PbValue::String(
                    String::from_utf8(b.clone()).map_err(|_| path.err("url.URL is not UTF-8"))?,
                )
            }
            (GoType::Named(_), GobValue::Encoded(b), Kind::Bytes) => {
                PbValue::Bytes(b.clone().into())
            }
            (GoType::Error, GobValue::Interface(i), Kind::Message(md)) => {
                let Some(i) = i else {
                    return Ok(PbValue::Message(DynamicMessage::new(md.clone())));
                };
                PbValue::Message(self.gob_error_to_app_error(&i.name, &i.value, md, path)?)
            }
            (GoType::Named(n), v, Kind::Message(md)) if n == "model.AppError" => {
                PbValue::Message(self.gob_error_to_app_error(APP_ERROR_NAME, v, md, path)?)
            }
            (GoType::Named(n), GobValue::Struct(s), Kind::Message(md)) => {
                let fields = self
                    .fields_of(n)
                    .ok_or_else(|| path.err(format!("{n} is not a struct in the schema")))?;
                let mut m = DynamicMessage::new(md.clone());
                for (fname, fv) in &s.fields {
                    let Some(i) = fields.iter().position(|(f, _)| f == fname) else {
                        note_unknown_field(n, fname);
                        continue;
                    };
                    let number = i as u32 + 1;
                    let fd = md.get_field(number).ok_or_else(|| {
                        path.err(format!(
                            "message {} has no field {number} for Go {n}.{fname}",
                            md.full_name()
                        ))
                    })?;
                    let pv = self.gob_to_field(&fields[i].1, fv, &fd, &path.with(fd.name()))?;
                    m.set_field(&fd, pv);
                }
                PbValue::Message(m)
            }
            (GoType::EmptyStruct, GobValue::Struct(_), Kind::Message(md)) => {
                PbValue::Message(DynamicMessage::new(md.clone()))
            }
            _ => return Err(mismatch()),
        })
    }

    /// A struct inside an interface, as `(json name, value)` pairs using the schema's json tags.
    pub(crate) fn struct_to_json_map(
        &self,
        type_name: Option<&str>,
        s: &gob::Struct,
    ) -> Vec<(GobValue, GobValue)> {
        let def = type_name.and_then(|n| self.schema.types.get(n));
        s.fields
            .iter()
            .map(|(f, v)| {
                let json = def
                    .and_then(|d| d.fields.iter().find(|x| &x.name == f))
                    .map(|x| x.json.clone())
                    .filter(|j| !j.is_empty() && j != "-")
                    .unwrap_or_else(|| f.clone());
                (GobValue::String(json), v.clone())
            })
            .collect()
    }

    fn gob_error_to_app_error(
        &self,
        name: &str,
        v: &GobValue,
        md: &MessageDescriptor,
        path: &Path,
    ) -> Result<DynamicMessage> {
        let GobValue::Struct(s) = v else {
            return Err(path.err(format!("{name} arrived as gob {}", v.kind_name())));
        };
        let str_of = |f: &str| match s.get(f) {
            Some(GobValue::String(x)) => x.clone(),
            _ => String::new(),
        };
        let int_of = |f: &str| match s.get(f) {
            Some(GobValue::Int(x)) => *x,
            _ => 0,
        };
        let mut m = DynamicMessage::new(md.clone());
        match name {
            APP_ERROR_NAME => {
                m.set_field_by_number(1, PbValue::String(str_of("Id")));
                m.set_field_by_number(2, PbValue::String(str_of("Message")));
                m.set_field_by_number(3, PbValue::String(str_of("DetailedError")));
                m.set_field_by_number(4, PbValue::String(str_of("RequestId")));
                m.set_field_by_number(5, PbValue::I64(int_of("StatusCode")));
                m.set_field_by_number(6, PbValue::String(str_of("Where")));
                m.set_field_by_number(
                    7,
                    PbValue::Bool(matches!(
                        s.get("SkipTranslation"),
                        Some(GobValue::Bool(true))
                    )),
                );
            }
            ERROR_STRING_NAME => {
                m.set_field_by_number(2, PbValue::String(str_of("Err")));
                m.set_field_by_number(16, PbValue::EnumNumber(1));
                m.set_field_by_number(17, PbValue::I64(int_of("Code")));
            }
            PQ_ERROR_NAME => {
                m.set_field_by_number(1, PbValue::String(str_of("Code")));
                m.set_field_by_number(2, PbValue::String(str_of("Message")));
                m.set_field_by_number(3, PbValue::String(str_of("Detail")));
                m.set_field_by_number(16, PbValue::EnumNumber(2));
            }
            other => {
                return Err(path.err(format!("unknown error type {other} in an error interface")));
            }
        }
        Ok(m)
    }
}

/// Go zero values, which gob omits from structs anyway; dropping them keeps values minimal.
/// Runs `f` with at least 64 KiB of stack left, on a new 1 MiB heap segment when the current
/// one is nearly used: translation recurses once per level of a value's nesting, and props
/// nest as deep as the server's JSON decoder allows (10,000 levels).
pub(crate) fn grow_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

/// The text Python sees for a Go string that is not UTF-8 (protobuf strings must be): each
/// maximal invalid sequence becomes U+FFFD, as Python's `errors="replace"` does. The
/// convention is stated in docs/internals.md ("Strings that are not UTF-8").
pub(crate) fn lossy_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A string coming back from Python: when it is exactly the replaced form of the non-UTF-8
/// string the server sent in the same place (the hint), the server gets its original bytes
/// back, so a value Python passed through unchanged is not altered on the way.
pub(crate) fn restore_string(s: &str, hint: Hint<'_>) -> GobValue {
    match hint {
        Some(GobValue::NonUtf8String(original)) if lossy_text(original) == s => {
            GobValue::NonUtf8String(original.clone())
        }
        _ => GobValue::String(s.to_owned()),
    }
}

fn is_zero(v: &GobValue) -> bool {
    match v {
        GobValue::Bool(b) => !b,
        GobValue::Int(i) => *i == 0,
        GobValue::Uint(u) => *u == 0,
        GobValue::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The encoded descriptor set of the contract, compiled from `proto/` by build.rs.
pub static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// The contract's descriptors as compiled; [`Translator::verify`] checks the schema against them.
pub fn contract_descriptors() -> prost_reflect::DescriptorPool {
    // The set was produced and checked by protox at build time, so decoding cannot fail
    // unless the binary is corrupt.
    prost_reflect::DescriptorPool::decode(DESCRIPTOR_SET).expect("embedded descriptor set is valid")
}

/// The descriptors the bridge encodes and decodes with: the contract's, with `Value` and
/// `Struct` fields carried as their encoded bytes (see [`crate::pbvalue`]).
pub fn descriptors() -> prost_reflect::DescriptorPool {
    crate::pbvalue::wire_pool(DESCRIPTOR_SET)
}

/// `[]byte` as `encoding/json` renders it: standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Translator {
    /// Walks every regular method and hook, and every type reachable from them, checking that
    /// the proto descriptors have a compatible field for every Go field. Returns the problems
    /// found (empty when the schema and the protos agree). Run by the tests, so a generator
    /// change that would make the bridge drop or mistype a field fails the build.
    pub fn verify(&self, pool: &prost_reflect::DescriptorPool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (service, methods, suffix) in [
            ("PluginAPI", &self.schema.api, ""),
            ("PluginHooks", &self.schema.hooks, "Hook"),
        ] {
            for m in methods.iter() {
                if !m.regular {
                    continue;
                }
                for (results, kind) in [(false, "Request"), (true, "Response")] {
                    let full = format!("{}.{}{suffix}{kind}", crate::grpc::PACKAGE, m.name);
                    let Some(desc) = pool.get_message_by_name(&full) else {
                        problems.push(format!("{service}.{}: no message {full}", m.name));
                        continue;
                    };
                    let fields = if results {
                        &m.returns_fields
                    } else {
                        &m.args_fields
                    };
                    for (f, number) in fields.iter().zip(Self::envelope_numbers(m, results)) {
                        let Some(number) = number else {
                            problems.push(format!(
                                "{service}.{}: field {} has no envelope number",
                                m.name, f.name
                            ));
                            continue;
                        };
                        match (desc.get_field(number), GoType::parse(&f.ty)) {
                            (Some(fd), Ok(go)) => self.verify_field(
                                &go,
                                &fd,
                                &format!("{full}.{}", fd.name()),
                                &mut seen,
                                &mut problems,
                            ),
                            (None, _) => problems
                                .push(format!("{full}: no field {number} for Go {}", f.name)),
                            (_, Err(e)) => problems.push(e.to_string()),
                        }
                    }
                }
            }
        }
        problems
    }

    fn verify_field(
        &self,
        go: &GoType,
        fd: &FieldDescriptor,
        at: &str,
        seen: &mut std::collections::HashSet<String>,
        problems: &mut Vec<String>,
    ) {
        let go = self.underlying(go.pointee());
        if go.is_byte_slice() {
            if fd.kind() != Kind::Bytes || fd.is_list() {
                problems.push(format!("{at}: Go {go} needs bytes"));
            }
            return;
        }
        match &go {
            GoType::Slice(elem) | GoType::Array(_, elem) => {
                if !fd.is_list() {
                    problems.push(format!("{at}: Go {go} needs a repeated field"));
                    return;
                }
                self.verify_elem(elem, fd, &format!("{at}[]"), seen, problems);
            }
            GoType::Map(k, v)
                if !(matches!(**k, GoType::Basic(Basic::String)) && **v == GoType::Interface) =>
            {
                if !fd.is_map() {
                    problems.push(format!("{at}: Go {go} needs a map field"));
                    return;
                }
                let Kind::Message(entry) = fd.kind() else {
                    return;
                };
                self.verify_elem(
                    v,
                    &entry.map_entry_value_field(),
                    &format!("{at}{{}}"),
                    seen,
                    problems,
                );
            }
            _ => self.verify_single(go, fd.kind(), at, seen, problems),
        }
    }

    fn verify_elem(
        &self,
        go: &GoType,
        fd: &FieldDescriptor,
        at: &str,
        seen: &mut std::collections::HashSet<String>,
        problems: &mut Vec<String>,
    ) {
        let go = self.underlying(go.pointee());
        match (&go, fd.kind()) {
            (GoType::Slice(_) | GoType::Array(..) | GoType::Map(..), Kind::Message(w))
                if !go.is_byte_slice() && w.full_name() != "google.protobuf.Struct" =>
            {
                match w.get_field(1) {
                    Some(inner) => {
                        self.verify_field(go, &inner, &format!("{at}.values"), seen, problems)
                    }
                    None => {
                        problems.push(format!("{at}: wrapper {} has no field 1", w.full_name()))
                    }
                }
            }
            _ if go.is_byte_slice() => {
                if fd.kind() != Kind::Bytes {
                    problems.push(format!("{at}: Go {go} needs bytes"));
                }
            }
            _ => self.verify_single(go, fd.kind(), at, seen, problems),
        }
    }

    fn verify_single(
        &self,
        go: &GoType,
        kind: Kind,
        at: &str,
        seen: &mut std::collections::HashSet<String>,
        problems: &mut Vec<String>,
    ) {
        let ok = match (go, &kind) {
            (GoType::Basic(Basic::Bool), Kind::Bool)
            | (GoType::Basic(Basic::String), Kind::String) => true,
            (GoType::Basic(b), Kind::Int64 | Kind::Int32 | Kind::Enum(_)) if b.is_signed() => true,
            (GoType::Basic(b), Kind::Uint64 | Kind::Uint32) if b.is_unsigned() => true,
            (GoType::Basic(Basic::Float32 | Basic::Float64), Kind::Double | Kind::Float) => true,
            (GoType::Interface, Kind::Message(m)) => m.full_name() == "google.protobuf.Value",
            (GoType::Map(..), Kind::Message(m)) => m.full_name() == "google.protobuf.Struct",
            (GoType::Error, Kind::Message(m)) => m.full_name() == "mattermost.plugin.v1.AppError",
            (GoType::EmptyStruct, Kind::Message(_)) => true,
            (GoType::Named(n), k) => {
                let def = self.schema.types.get(n);
                if n == "model.AppError" {
                    matches!(k, Kind::Message(m) if m.full_name() == "mattermost.plugin.v1.AppError")
                } else if n == "time.Time" {
                    matches!(k, Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp")
                } else if n == "url.URL" {
                    *k == Kind::String
                } else if def.is_some_and(|d| d.gob.is_some()) {
                    *k == Kind::Bytes
                } else if let (Some(fields), Kind::Message(md)) = (self.fields_of(n), k) {
                    if seen.insert(n.clone()) {
                        for (i, (fname, fty)) in fields.iter().enumerate() {
                            match md.get_field(i as u32 + 1) {
                                Some(fd) => self.verify_field(
                                    fty,
                                    &fd,
                                    &format!("{}.{}", md.full_name(), fd.name()),
                                    seen,
                                    problems,
                                ),
                                None => problems.push(format!(
                                    "{}: no field {} for Go {n}.{fname}",
                                    md.full_name(),
                                    i + 1
                                )),
                            }
                        }
                        if md.fields().count() != fields.len() {
                            problems.push(format!(
                                "{}: {} proto fields for {} Go fields of {n}",
                                md.full_name(),
                                md.fields().count(),
                                fields.len()
                            ));
                        }
                    }
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if !ok {
            problems.push(format!("{at}: Go {go} does not fit proto {kind:?}"));
        }
    }
}

impl Translator {
    /// The returns of a hook that "changed nothing": each result gets the argument of the same
    /// Go type it replaces (MessageWillBeUpdated's new post, MessagesWillBeConsumed's posts,
    /// ...), every other result its zero value.
    pub fn unchanged_returns(&self, m: &Method, args: &GobValue) -> GobValue {
        let mut out = Vec::new();
        for f in &m.returns_fields {
            if f.role.as_deref() == Some("result")
                && let Some(v) = hint_for_result(m, f, args)
            {
                out.push((f.name.clone(), v.clone()));
            }
        }
        GobValue::Struct(gob::Struct::new(out))
    }
}

/// The `error` field (number 1) of a response envelope, when set and not empty (an AppError
/// with neither id nor message means success, docs/internals.md).
pub fn response_error(msg: &DynamicMessage) -> Option<DynamicMessage> {
    let fd = msg.descriptor().get_field(1)?;
    if !msg.has_field(&fd) {
        return None;
    }
    let PbValue::Message(err) = &*msg.get_field(&fd) else {
        return None;
    };
    let text = |n: u32| {
        err.get_field_by_number(n)
            .and_then(|v| v.as_str().map(|s| !s.is_empty()))
            .unwrap_or(false)
    };
    (text(1) || text(2)).then(|| err.clone())
}

/// One line describing an AppError message, for the server log.
pub fn describe_error(err: &DynamicMessage) -> String {
    let s = |n: u32| {
        err.get_field_by_number(n)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let (id, message, detail, place) = (s(1), s(2), s(3), s(6));
    let mut out = String::new();
    if !place.is_empty() {
        out.push_str(&place);
        out.push_str(": ");
    }
    out.push_str(&message);
    if !id.is_empty() {
        out.push_str(&format!(" [{id}]"));
    }
    if !detail.is_empty() {
        out.push_str(", ");
        out.push_str(&detail);
    }
    out
}

impl Translator {
    /// An AppError message as the value of a Go `error` field (what go-plugin's
    /// `encodableError` would put there).
    pub fn error_to_gob(&self, err: &DynamicMessage) -> Result<GobValue> {
        self.app_error_to_gob(err, true, &Path::default())
    }

    /// A gob value of Go type `go` (an `interface{}`, a struct, ...) as the proto value of
    /// field `fd`: for hand-built messages such as the ServeHTTP init.
    pub fn gob_to_proto(&self, go: &str, v: &GobValue, fd: &FieldDescriptor) -> Result<PbValue> {
        let go = GoType::parse(go).map_err(|e| Path::default().err(e.to_string()))?;
        self.gob_to_field(&go, v, fd, &Path::root(fd.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translator() -> Translator {
        Translator::new(crate::schema::embedded().unwrap()).unwrap()
    }

    #[test]
    fn methods_are_found_by_name_as_the_schema_finds_them() {
        let t = translator();
        let schema = t.schema();
        for m in &schema.api {
            let found = t.api_method(&m.name).expect("every API method is found");
            assert!(std::ptr::eq(found, schema.api_method(&m.name).unwrap()));
        }
        for m in &schema.hooks {
            let found = t.hook(&m.name).expect("every hook is found");
            assert!(std::ptr::eq(found, schema.hook(&m.name).unwrap()));
        }
        assert!(t.api_method("NoSuchMethod").is_none());
        assert!(t.hook("").is_none());
        // A hook's name is not an API method's, and the other way round.
        assert!(t.api_method("MessageWillBePosted").is_none());
        assert!(t.hook("GetUser").is_none());
    }

    #[test]
    fn error_paths_name_fields_indexes_and_keys() {
        let post = Path::root("Post");
        let embeds = post.with("metadata");
        let embeds = embeds.with("embeds");
        let first = embeds.index(0);
        let key = String::from("url");
        let err = first.key(&key).err("not a string");
        assert_eq!(err.path, "Post.metadata.embeds.[0].[\"url\"]");
        assert_eq!(err.message, "not a string");
        assert_eq!(Path::default().err("x").path, "(top)");
    }

    #[test]
    fn verify_reports_what_the_descriptors_lack() {
        let problems = translator().verify(&prost_reflect::DescriptorPool::new());
        assert!(
            problems
                .iter()
                .any(|p| p.contains("no message mattermost.plugin.v1.KVGetRequest")),
            "{problems:?}"
        );
    }

    /// Props in sorted key order: Go maps have none, and translation emits keys sorted.
    fn props() -> GobValue {
        GobValue::Map(vec![
            (
                GobValue::String("count".into()),
                GobValue::interface("int64", GobValue::Int(42)),
            ),
            (
                GobValue::String("nested".into()),
                GobValue::interface(
                    "map[string]interface {}",
                    GobValue::Map(vec![(
                        GobValue::String("list".into()),
                        GobValue::interface(
                            "[]interface {}",
                            GobValue::Slice(vec![
                                GobValue::interface("string", GobValue::String("x".into())),
                                GobValue::interface("int", GobValue::Int(2)),
                                GobValue::Interface(None),
                            ]),
                        ),
                    )]),
                ),
            ),
            (
                GobValue::String("ratio".into()),
                GobValue::interface("float64", GobValue::Float(1.5)),
            ),
        ])
    }

    #[test]
    fn hook_args_and_returns_round_trip_with_go_kinds_kept() {
        let t = translator();
        let pool = descriptors();
        let m = t.schema().hook("MessageWillBePosted").unwrap();
        let post = GobValue::structure([
            ("Id", GobValue::String("p1".into())),
            ("CreateAt", GobValue::Int(1_700_000_000_000)),
            ("Message", GobValue::String("hi".into())),
            ("Props", props()),
        ]);
        let args = GobValue::structure([
            (
                "A",
                GobValue::structure([("SessionId", GobValue::String("s".into()))]),
            ),
            ("B", post.clone()),
        ]);
        let req_desc = pool
            .get_message_by_name("mattermost.plugin.v1.MessageWillBePostedHookRequest")
            .unwrap();
        let req = t.wire_to_message(m, false, &args, &req_desc).unwrap();
        let back = t.message_to_wire(m, false, &req, Some(&args), &[]).unwrap();
        // The args are not replaced by a reply, so hints come from themselves: everything,
        // including int64 and int in props, comes back as Go sent it.
        assert_eq!(back, args);

        // A reply carrying the same post, as Python would send it back.
        let resp_desc = pool
            .get_message_by_name("mattermost.plugin.v1.MessageWillBePostedHookResponse")
            .unwrap();
        let mut resp = DynamicMessage::new(resp_desc);
        resp.set_field_by_number(2, req.get_field_by_number(3).unwrap().into_owned());
        let returns = t.message_to_wire(m, true, &resp, Some(&args), &[]).unwrap();
        assert_eq!(returns, GobValue::structure([("A", post)]));
        // Without a hint, numbers are float64, as encoding/json would decode them.
        let plain = t.message_to_wire(m, true, &resp, None, &[]).unwrap();
        let GobValue::Struct(s) = &plain else {
            panic!()
        };
        let GobValue::Struct(p) = s.get("A").unwrap() else {
            panic!()
        };
        let GobValue::Map(props) = p.get("Props").unwrap() else {
            panic!()
        };
        let count = &props
            .iter()
            .find(|(k, _)| *k == GobValue::String("count".into()))
            .unwrap()
            .1;
        assert_eq!(
            *count,
            GobValue::interface("float64", GobValue::Float(42.0))
        );
    }

    #[test]
    fn unchanged_returns_echo_what_each_result_replaces() {
        let t = translator();
        let posts = GobValue::Slice(vec![GobValue::structure([(
            "Id",
            GobValue::String("p1".into()),
        )])]);
        let m = t.schema().hook("MessagesWillBeConsumed").unwrap();
        let args = GobValue::structure([("A", posts.clone())]);
        assert_eq!(
            t.unchanged_returns(m, &args),
            GobValue::structure([("A", posts)])
        );
        let m = t.schema().hook("MessageWillBeUpdated").unwrap();
        let new = GobValue::structure([("Message", GobValue::String("new".into()))]);
        let old = GobValue::structure([("Message", GobValue::String("old".into()))]);
        let args = GobValue::structure([("B", new.clone()), ("C", old)]);
        assert_eq!(
            t.unchanged_returns(m, &args),
            GobValue::structure([("A", new)])
        );
    }

    #[test]
    fn strings_that_are_not_utf8_come_back_as_they_went() {
        let original = GobValue::NonUtf8String(b"caf\xe9".to_vec());
        // What Python sees, and hands back unchanged: the server gets its bytes.
        assert_eq!(lossy_text(b"caf\xe9"), "caf\u{fffd}");
        assert_eq!(restore_string("caf\u{fffd}", Some(&original)), original);
        // Text Python changed is its own.
        assert_eq!(
            restore_string("cafe", Some(&original)),
            GobValue::String("cafe".into())
        );
        assert_eq!(
            restore_string("caf\u{fffd}", None),
            GobValue::String("caf\u{fffd}".into())
        );
    }

    #[test]
    fn errors_keep_every_app_error_field() {
        let t = translator();
        let pool = descriptors();
        let m = t.schema().api_method("KVGet").unwrap();
        let returns = GobValue::structure([(
            "B",
            GobValue::structure([
                ("Id", GobValue::String("app.kv.fail".into())),
                ("Message", GobValue::String("boom".into())),
                ("DetailedError", GobValue::String("detail".into())),
                ("RequestId", GobValue::String("r".into())),
                ("StatusCode", GobValue::Int(503)),
                ("Where", GobValue::String("KVGet".into())),
                ("SkipTranslation", GobValue::Bool(true)),
            ]),
        )]);
        let desc = pool
            .get_message_by_name("mattermost.plugin.v1.KVGetResponse")
            .unwrap();
        let resp = t.wire_to_message(m, true, &returns, &desc).unwrap();
        let err = response_error(&resp).expect("error field set");
        assert_eq!(describe_error(&err), "KVGet: boom [app.kv.fail], detail");
        assert_eq!(
            t.message_to_wire(m, true, &resp, None, &[]).unwrap(),
            returns
        );
    }

    #[test]
    fn fields_of_other_server_releases_are_ignored_as_gob_does() {
        let t = translator();
        let m = t.schema().api_method("GetUser").unwrap();
        let desc = descriptors()
            .get_message_by_name("mattermost.plugin.v1.GetUserResponse")
            .unwrap();
        // An older server's User with a field v0.4.4 does not have, and an extra Z_ field.
        let returns = GobValue::structure([
            (
                "A",
                GobValue::structure([
                    ("Id", GobValue::String("u1".into())),
                    ("RemovedLongAgo", GobValue::Int(1)),
                ]),
            ),
            ("Z", GobValue::Int(1)),
        ]);
        let msg = t.wire_to_message(m, true, &returns, &desc).unwrap();
        let back = t.message_to_wire(m, true, &msg, None, &[]).unwrap();
        assert_eq!(
            back,
            GobValue::structure([(
                "A",
                GobValue::structure([("Id", GobValue::String("u1".into()))])
            )])
        );
    }

    #[test]
    fn schema_and_protos_agree_on_every_regular_method_and_type() {
        let t = translator();
        let problems = t.verify(&contract_descriptors());
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}
