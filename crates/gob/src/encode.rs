//! The encoder: a per-stream object that sends each type definition once, then values, laid
//! out exactly as Go's `encoding/gob` Encoder lays them out.

use std::collections::{HashMap, HashSet};

use crate::error::EncodeError;
use crate::types::{Kind, TypeId, Types, builtin_wire_id};
use crate::value::{Interface, Struct, Value};
use crate::wire::{float_to_uint, put_bytes, put_int, put_message, put_uint};

/// Default maximum nesting depth of a value the encoder accepts: the decoder's
/// ([`crate::DEFAULT_MAX_DEPTH`]), so what one side reads the other can write back.
pub const DEFAULT_MAX_ENCODE_DEPTH: usize = crate::decode::DEFAULT_MAX_DEPTH;

/// A gob encoder for one stream (one direction of one connection).
///
/// It remembers which types it already defined on the stream and which wire ids it gave them.
#[derive(Debug, Clone)]
pub struct Encoder {
    ids: HashMap<TypeId, i64>,
    next_id: i64,
    sent: HashSet<TypeId>,
    /// Undo logs so a failed `encode` leaves the stream state untouched.
    id_log: Vec<TypeId>,
    sent_log: Vec<TypeId>,
    max_depth: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Where we are in the value, for error messages.
#[derive(Clone, Copy)]
enum PathPart<'a> {
    Field(&'a str),
    Index(usize),
    MapKey(usize),
    MapValue(usize),
    Iface(&'a str),
}

struct Ctx<'a> {
    types: &'a Types,
    path: Vec<PathPart<'a>>,
}

impl<'a> Ctx<'a> {
    fn err(&self, message: impl Into<String>) -> EncodeError {
        let mut p = String::new();
        for part in &self.path {
            match part {
                PathPart::Field(n) => {
                    if !p.is_empty() {
                        p.push('.');
                    }
                    p.push_str(n);
                }
                PathPart::Index(i) => p.push_str(&format!("[{i}]")),
                PathPart::MapKey(i) => p.push_str(&format!("<key {i}>")),
                PathPart::MapValue(i) => p.push_str(&format!("<value {i}>")),
                PathPart::Iface(n) => p.push_str(&format!("({n})")),
            }
        }
        EncodeError::new(&p, message)
    }

    fn kind(&self, ty: TypeId) -> Result<&'a Kind, EncodeError> {
        let types: &'a Types = self.types;
        types.kind_checked(ty).map_err(|e| self.err(e.0))
    }
}

impl Encoder {
    /// A fresh encoder; its first user type gets wire id 64, like the first type a fresh Go
    /// process encodes.
    pub fn new() -> Self {
        Self::with_max_depth(DEFAULT_MAX_ENCODE_DEPTH)
    }

    /// A fresh encoder refusing values nested deeper than `max_depth`.
    pub fn with_max_depth(max_depth: usize) -> Self {
        Encoder {
            ids: HashMap::new(),
            next_id: crate::types::FIRST_USER_ID,
            sent: HashSet::new(),
            id_log: Vec::new(),
            sent_log: Vec::new(),
            max_depth,
        }
    }

    /// Appends to `out` the messages Go would write for `value` of type `ty`: definitions of
    /// the types not yet sent on this stream, then the value. On error nothing is appended and
    /// the encoder state is unchanged.
    pub fn encode(
        &mut self,
        types: &Types,
        ty: TypeId,
        value: &Value,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        let next_id = self.next_id;
        self.id_log.clear();
        self.sent_log.clear();
        let mut ctx = Ctx {
            types,
            path: Vec::new(),
        };
        let result = self.encode_top(&mut ctx, ty, value, out);
        if result.is_err() {
            out.truncate(start);
            self.next_id = next_id;
            for t in self.id_log.drain(..) {
                self.ids.remove(&t);
            }
            for t in self.sent_log.drain(..) {
                self.sent.remove(&t);
            }
        }
        result
    }

    /// The wire id this encoder uses (or will use) for `ty`, assigning ids the way a fresh Go
    /// process does if needed.
    pub fn wire_id(&mut self, types: &Types, ty: TypeId) -> Result<i64, EncodeError> {
        let ctx = Ctx {
            types,
            path: Vec::new(),
        };
        self.assign(&ctx, ty)
    }

    fn encode_top<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        ty: TypeId,
        value: &'a Value,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        // Go's EncodeValue: definitions go straight to the stream as their own messages (the
        // value buffer is still empty), then the id and the value form the last message.
        let mut b = Vec::new();
        self.send_type(ctx, ty, &mut b, out)?;
        let id = self.assign(ctx, ty)?;
        put_int(&mut b, id);
        self.encode_as_top(ctx, ty, value, &mut b, out, 0)?;
        put_message(out, &b);
        Ok(())
    }

    /// Go's `enc.encode`: a struct as itself, anything else as a singleton (delta 0 + value,
    /// zero values included).
    fn encode_as_top<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        ty: TypeId,
        value: &'a Value,
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), EncodeError> {
        if matches!(ctx.kind(ty)?, Kind::Struct { .. }) {
            self.encode_value(ctx, ty, value, b, w, depth)
        } else {
            put_uint(b, 0);
            self.encode_value(ctx, ty, value, b, w, depth)
        }
    }

    // ---- type ids and definitions -------------------------------------------------------

    fn set_id(&mut self, ty: TypeId) {
        if !self.ids.contains_key(&ty) {
            self.ids.insert(ty, self.next_id);
            self.id_log.push(ty);
            self.next_id += 1;
        }
    }

    /// Assigns wire ids in the order Go's `newTypeObject` creates type objects: a struct gets
    /// its id before its fields; an array, slice or map after its element types (Go keeps that
    /// order for compatibility); a composite still under construction that a struct field
    /// reaches gets its id there.
    fn assign(&mut self, ctx: &Ctx<'_>, ty: TypeId) -> Result<i64, EncodeError> {
        if let Some(id) = builtin_wire_id(ctx.kind(ty)?) {
            return Ok(id);
        }
        if let Some(&id) = self.ids.get(&ty) {
            return Ok(id);
        }
        let mut in_progress = HashSet::new();
        self.create(ctx, ty, &mut in_progress)?;
        self.ids
            .get(&ty)
            .copied()
            .ok_or_else(|| ctx.err("internal: type id was not assigned"))
    }

    fn create(
        &mut self,
        ctx: &Ctx<'_>,
        ty: TypeId,
        in_progress: &mut HashSet<TypeId>,
    ) -> Result<(), EncodeError> {
        let kind = ctx.kind(ty)?;
        if builtin_wire_id(kind).is_some()
            || self.ids.contains_key(&ty)
            || in_progress.contains(&ty)
        {
            return Ok(());
        }
        match kind {
            Kind::GobEncoder | Kind::BinaryMarshaler => self.set_id(ty),
            Kind::Struct { fields, defined } => {
                if !defined {
                    return Err(ctx.err(format!(
                        "struct type {:?} was declared but never defined",
                        ctx.types.name(ty).unwrap_or("")
                    )));
                }
                self.set_id(ty);
                for (_, f) in fields {
                    self.create(ctx, *f, in_progress)?;
                    if builtin_wire_id(ctx.kind(*f)?).is_none() {
                        self.set_id(*f);
                    }
                }
            }
            Kind::Array { elem, .. } | Kind::Slice { elem } => {
                in_progress.insert(ty);
                self.create(ctx, *elem, in_progress)?;
                in_progress.remove(&ty);
                self.set_id(ty);
            }
            Kind::Map { key, elem } => {
                in_progress.insert(ty);
                self.create(ctx, *key, in_progress)?;
                self.create(ctx, *elem, in_progress)?;
                in_progress.remove(&ty);
                self.set_id(ty);
            }
            _ => {}
        }
        Ok(())
    }

    /// Go's `sendType`/`sendActualType`: define `ty` if it needs a definition and was not sent,
    /// then its component types. Each definition is appended to the partial message `b`, and
    /// `b` is flushed into `w` as one message (this is how a value comes to span messages).
    fn send_type(
        &mut self,
        ctx: &Ctx<'_>,
        ty: TypeId,
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let kind = ctx.kind(ty)?;
        if builtin_wire_id(kind).is_some() || self.sent.contains(&ty) {
            return Ok(());
        }
        let id = self.assign(ctx, ty)?;
        put_int(b, -id);
        self.put_wire_type(ctx, ty, id, b)?;
        put_message(w, b);
        b.clear();
        self.sent.insert(ty);
        self.sent_log.push(ty);
        match kind {
            Kind::Struct { fields, .. } => {
                for (_, f) in fields {
                    self.send_type(ctx, *f, b, w)?;
                }
            }
            Kind::Array { elem, .. } | Kind::Slice { elem } => self.send_type(ctx, *elem, b, w)?,
            Kind::Map { key, elem } => {
                self.send_type(ctx, *key, b, w)?;
                self.send_type(ctx, *elem, b, w)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Encodes Go's `wireType` struct for `ty` (fields: ArrayT 0, SliceT 1, StructT 2, MapT 3,
    /// GobEncoderT 4, BinaryMarshalerT 5), with gob's usual zero omission.
    fn put_wire_type(
        &mut self,
        ctx: &Ctx<'_>,
        ty: TypeId,
        id: i64,
        b: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let name = ctx.types.name(ty).unwrap_or("");
        let common = |b: &mut Vec<u8>| {
            // CommonType is an embedded struct: always sent as field 0 of its parent.
            put_uint(b, 1);
            let mut last = -1i64;
            if !name.is_empty() {
                put_uint(b, 1);
                put_bytes(b, name.as_bytes());
                last = 0;
            }
            put_uint(b, (1 - last) as u64);
            put_int(b, id);
            put_uint(b, 0);
        };
        let kind = ctx.kind(ty)?;
        match kind {
            Kind::Array { len, elem } => {
                put_uint(b, 1);
                common(b);
                let e = self.assign(ctx, *elem)?;
                put_uint(b, 1);
                put_int(b, e);
                if *len != 0 {
                    let len = i64::try_from(*len)
                        .map_err(|_| ctx.err("array length does not fit a Go int"))?;
                    put_uint(b, 1);
                    put_int(b, len);
                }
                put_uint(b, 0);
            }
            Kind::Slice { elem } => {
                put_uint(b, 2);
                common(b);
                let e = self.assign(ctx, *elem)?;
                put_uint(b, 1);
                put_int(b, e);
                put_uint(b, 0);
            }
            Kind::Struct { fields, .. } => {
                put_uint(b, 3);
                common(b);
                if !fields.is_empty() {
                    put_uint(b, 1);
                    put_uint(b, fields.len() as u64);
                    for (fname, fty) in fields {
                        let fid = self.assign(ctx, *fty)?;
                        put_uint(b, 1);
                        put_bytes(b, fname.as_bytes());
                        put_uint(b, 1);
                        put_int(b, fid);
                        put_uint(b, 0);
                    }
                }
                put_uint(b, 0);
            }
            Kind::Map { key, elem } => {
                put_uint(b, 4);
                common(b);
                let k = self.assign(ctx, *key)?;
                let e = self.assign(ctx, *elem)?;
                put_uint(b, 1);
                put_int(b, k);
                put_uint(b, 1);
                put_int(b, e);
                put_uint(b, 0);
            }
            Kind::GobEncoder => {
                put_uint(b, 5);
                common(b);
                put_uint(b, 0);
            }
            Kind::BinaryMarshaler => {
                put_uint(b, 6);
                common(b);
                put_uint(b, 0);
            }
            _ => return Err(ctx.err("internal: builtin types have no definition")),
        }
        put_uint(b, 0);
        Ok(())
    }

    // ---- values -------------------------------------------------------------------------

    fn mismatch(ctx: &Ctx<'_>, ty: TypeId, value: &Value) -> EncodeError {
        let want = match ctx.types.kind(ty) {
            Some(Kind::Struct { .. }) => format!("struct {}", ctx.types.name(ty).unwrap_or("")),
            Some(k) => format!("{k:?}"),
            None => "?".into(),
        };
        ctx.err(format!(
            "a {} value cannot be encoded as Go type {want}",
            value.kind_name()
        ))
    }

    fn encode_value<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        ty: TypeId,
        value: &'a Value,
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), EncodeError> {
        crate::decode::grow_stack(|| self.encode_value_here(ctx, ty, value, b, w, depth))
    }

    fn encode_value_here<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        ty: TypeId,
        value: &'a Value,
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), EncodeError> {
        if depth > self.max_depth {
            return Err(ctx.err(format!(
                "value nested deeper than the limit of {} levels",
                self.max_depth
            )));
        }
        let kind = ctx.kind(ty)?;
        match (kind, value) {
            (Kind::Bool, Value::Bool(v)) => put_uint(b, u64::from(*v)),
            (Kind::Int, Value::Int(v)) => put_int(b, *v),
            (Kind::Uint, Value::Uint(v)) => put_uint(b, *v),
            (Kind::Float, Value::Float(v)) => put_uint(b, float_to_uint(*v)),
            (Kind::Complex, Value::Complex(re, im)) => {
                put_uint(b, float_to_uint(*re));
                put_uint(b, float_to_uint(*im));
            }
            (Kind::String, Value::String(s)) => put_bytes(b, s.as_bytes()),
            (Kind::String, Value::NonUtf8String(s)) => put_bytes(b, s),
            (Kind::Bytes, Value::Bytes(v)) => put_bytes(b, v),
            (Kind::GobEncoder | Kind::BinaryMarshaler, Value::Encoded(v)) => put_bytes(b, v),
            (Kind::Array { len, elem }, Value::Array(items)) => {
                if items.len() as u64 != *len {
                    return Err(ctx.err(format!(
                        "array type has length {len} but the value has {} elements",
                        items.len()
                    )));
                }
                self.encode_items(ctx, *elem, items, b, w, depth)?;
            }
            (Kind::Slice { elem }, Value::Slice(items)) => {
                self.encode_items(ctx, *elem, items, b, w, depth)?;
            }
            (Kind::Map { key, elem }, Value::Map(entries)) => {
                put_uint(b, entries.len() as u64);
                for (i, (k, v)) in entries.iter().enumerate() {
                    ctx.path.push(PathPart::MapKey(i));
                    self.encode_value(ctx, *key, k, b, w, depth + 1)?;
                    ctx.path.pop();
                    ctx.path.push(PathPart::MapValue(i));
                    self.encode_value(ctx, *elem, v, b, w, depth + 1)?;
                    ctx.path.pop();
                }
            }
            (Kind::Struct { fields, .. }, Value::Struct(s)) => {
                self.encode_struct(ctx, ty, fields, s, b, w, depth)?;
            }
            (Kind::Interface, Value::Interface(iv)) => {
                self.encode_interface(ctx, iv.as_deref(), b, w, depth)?;
            }
            _ => return Err(Self::mismatch(ctx, ty, value)),
        }
        Ok(())
    }

    fn encode_items<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        elem: TypeId,
        items: &'a [Value],
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), EncodeError> {
        // Arrays and slices send every element, zeros included.
        put_uint(b, items.len() as u64);
        for (i, item) in items.iter().enumerate() {
            ctx.path.push(PathPart::Index(i));
            self.encode_value(ctx, elem, item, b, w, depth + 1)?;
            ctx.path.pop();
        }
        Ok(())
    }

    /// Whether Go omits this struct field value (see the crate docs, "Zero omission").
    fn omitted(value: &Value) -> bool {
        match value {
            Value::Bool(v) => !v,
            Value::Int(v) => *v == 0,
            Value::Uint(v) => *v == 0,
            Value::Float(v) => *v == 0.0,
            Value::Complex(re, im) => *re == 0.0 && *im == 0.0,
            Value::String(v) => v.is_empty(),
            Value::NonUtf8String(v) | Value::Bytes(v) => v.is_empty(),
            Value::Slice(v) => v.is_empty(),
            Value::Interface(v) => v.is_none(),
            // A present map is non-nil (sent even if empty); arrays and structs are always
            // sent; an Encoded value present is sent (absent = Go zero value).
            Value::Map(_) | Value::Array(_) | Value::Struct(_) | Value::Encoded(_) => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn encode_struct<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        ty: TypeId,
        fields: &'a [(String, TypeId)],
        s: &'a Struct,
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), EncodeError> {
        let mut present: Vec<(usize, &'a Value)> = Vec::with_capacity(s.fields.len());
        for (name, v) in &s.fields {
            let Some(idx) = fields.iter().position(|(n, _)| n == name) else {
                return Err(ctx.err(format!(
                    "struct type {:?} has no field {name:?}",
                    ctx.types.name(ty).unwrap_or("")
                )));
            };
            if present.iter().any(|(i, _)| *i == idx) {
                return Err(ctx.err(format!("field {name:?} is given twice")));
            }
            present.push((idx, v));
        }
        present.sort_by_key(|(i, _)| *i);
        let mut last: i64 = -1;
        for (idx, v) in present {
            if Self::omitted(v) {
                continue;
            }
            let (fname, fty) = &fields[idx];
            put_uint(b, (idx as i64 - last) as u64);
            last = idx as i64;
            ctx.path.push(PathPart::Field(fname));
            self.encode_value(ctx, *fty, v, b, w, depth + 1)?;
            ctx.path.pop();
        }
        put_uint(b, 0);
        Ok(())
    }

    /// Go's `encodeInterface`: name, definitions of new types (each flushes the partial
    /// message `b` into the writer `w`), concrete id, then the value as a top-level value in
    /// its own length-prefixed buffer, whose own nested definitions go into `b`.
    fn encode_interface<'a>(
        &mut self,
        ctx: &mut Ctx<'a>,
        iv: Option<&'a Interface>,
        b: &mut Vec<u8>,
        w: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), EncodeError> {
        let Some(iv) = iv else {
            put_uint(b, 0);
            return Ok(());
        };
        let Some(cty) = ctx.types.registered(&iv.name) else {
            return Err(ctx.err(format!(
                "interface type name {:?} is not registered",
                iv.name
            )));
        };
        if iv.name.is_empty() {
            return Err(ctx.err("an interface value needs a non-empty type name"));
        }
        put_bytes(b, iv.name.as_bytes());
        self.send_type(ctx, cty, b, w)?;
        let id = self.assign(ctx, cty)?;
        put_int(b, id);
        let mut data = Vec::new();
        ctx.path.push(PathPart::Iface(&iv.name));
        self.encode_as_top(ctx, cty, &iv.value, &mut data, b, depth + 1)?;
        ctx.path.pop();
        put_message(b, &data);
        Ok(())
    }
}
