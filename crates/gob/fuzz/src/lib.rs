//! Support shared by the fuzz targets of this crate and of crates/goplugin/fuzz.
//!
//! - [`CappedAllocator`]: makes "no unbounded allocation" a checked property. Without a
//!   sanitizer libFuzzer cannot see single allocations (its `-malloc_limit_mb` needs the
//!   sanitizer's malloc hooks), so every target installs this allocator, which aborts (a
//!   crash libFuzzer records) on any allocation larger than [`MAX_ALLOCATION`].
//! - [`arena_for`], [`go_view`], [`same_value`]: what the gob `roundtrip` target needs to
//!   re-encode a decoded value as the Go type the stream described and to compare the result
//!   with what Go itself would see.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::io::Write as _;

use gob::{Decoder, TypeId, Types, Value, WireKind};

/// The largest single allocation any fuzz input may cause. Inputs are at most a few hundred
/// KiB and every buffer the decoders size from the peer is bounded by the bytes that arrived
/// (gob) or by the receive window (yamux, 256 KiB), so anything near this is a length taken
/// from hostile bytes and trusted.
pub const MAX_ALLOCATION: usize = 64 << 20;

/// The system allocator, refusing (by aborting) allocations above [`MAX_ALLOCATION`].
pub struct CappedAllocator;

#[cold]
fn too_large(size: usize) -> ! {
    // No formatting into a String here: allocating inside the allocator would recurse.
    let _ = std::io::stderr().write_fmt(format_args!(
        "fuzz: allocation of {size} bytes exceeds the {MAX_ALLOCATION}-byte cap\n"
    ));
    std::process::abort()
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the cap
// only adds an abort before forwarding.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            too_large(layout.size());
        }
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            too_large(layout.size());
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            too_large(new_size);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Deepest chain of type references [`arena_for`] follows; deeper descriptions are skipped
/// (they cannot describe a value the decoder accepts, whose nesting is capped at 200).
const MAX_TYPE_DEPTH: usize = 256;

/// Builds a [`Types`] arena holding the Go type the stream in `dec` described for wire id
/// `root`, so the decoded value can be encoded again as that type. `None` when the wire
/// types cannot be a Go type: a struct with an empty or repeated field name, a field of an
/// undefined id, a negative array length, or an array/slice/map that contains itself
/// without a struct in between (Go allows `type T []T`; [`Types`] cannot express it).
pub fn arena_for(dec: &Decoder, root: i64) -> Option<(Types, TypeId)> {
    let mut conv = Conversion {
        dec,
        types: Types::new(),
        done: HashMap::new(),
        open: HashSet::new(),
        undefined: Vec::new(),
    };
    let ty = conv.convert(root, 0)?;
    // Struct fields last: every struct is declared by then, so a field may refer back to a
    // slice or map still being built when the struct was first reached.
    while let Some((wire_id, ty)) = conv.undefined.pop() {
        let Some(WireKind::Struct { fields }) = dec.wire_type(wire_id).map(|w| &w.kind) else {
            return None;
        };
        let mut converted = Vec::with_capacity(fields.len());
        for (name, field) in fields {
            converted.push((name.clone(), conv.convert(*field, 0)?));
        }
        conv.types.define_struct(ty, converted).ok()?;
    }
    Some((conv.types, ty))
}

struct Conversion<'a> {
    dec: &'a Decoder,
    types: Types,
    /// Wire id to arena type.
    done: HashMap<i64, TypeId>,
    /// Arrays, slices and maps being converted: meeting one again is a cycle Types lacks.
    open: HashSet<i64>,
    /// Structs declared but not yet given their fields.
    undefined: Vec<(i64, TypeId)>,
}

impl Conversion<'_> {
    fn convert(&mut self, id: i64, depth: usize) -> Option<TypeId> {
        if let Some(&ty) = self.done.get(&id) {
            return Some(ty);
        }
        if depth > MAX_TYPE_DEPTH {
            return None;
        }
        let dec = self.dec;
        let wire = dec.wire_type(id)?;
        let ty = match &wire.kind {
            WireKind::Bool => self.types.bool(),
            WireKind::Int => self.types.int(),
            WireKind::Uint => self.types.uint(),
            WireKind::Float => self.types.float(),
            WireKind::Complex => self.types.complex(),
            WireKind::String => self.types.string(),
            WireKind::Bytes => self.types.bytes(),
            WireKind::Interface => self.types.interface(),
            // The encoder has no TextMarshaler kind; the payload travels the same way.
            WireKind::GobEncoder | WireKind::TextMarshaler => self.types.gob_encoder(&wire.name),
            WireKind::BinaryMarshaler => self.types.binary_marshaler(&wire.name),
            WireKind::Struct { .. } => {
                let ty = self.types.declare_struct(&wire.name);
                self.undefined.push((id, ty));
                ty
            }
            &WireKind::Array { elem, len } => {
                let len = u64::try_from(len).ok()?;
                self.enter(id)?;
                let elem = self.convert(elem, depth + 1)?;
                self.open.remove(&id);
                self.types.array(len, elem)
            }
            &WireKind::Slice { elem } => {
                self.enter(id)?;
                let elem = self.convert(elem, depth + 1)?;
                self.open.remove(&id);
                self.types.slice(elem)
            }
            &WireKind::Map { key, elem } => {
                self.enter(id)?;
                let key = self.convert(key, depth + 1)?;
                let elem = self.convert(elem, depth + 1)?;
                self.open.remove(&id);
                self.types.map(key, elem)
            }
        };
        self.done.insert(id, ty);
        Some(ty)
    }

    /// Marks array, slice or map `id` as being built; `None` if it already is (a cycle).
    fn enter(&mut self, id: i64) -> Option<()> {
        self.open.insert(id).then_some(())
    }
}

/// Whether Go leaves this struct field value out of the stream (gob's zero omission, as the
/// crate documentation states it): Go's decoder then sees the field's zero value.
pub fn go_omits(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::Complex(re, im) => *re == 0.0 && *im == 0.0,
        Value::String(s) => s.is_empty(),
        Value::NonUtf8String(b) | Value::Bytes(b) => b.is_empty(),
        Value::Slice(items) => items.is_empty(),
        Value::Interface(i) => i.is_none(),
        Value::Map(_) | Value::Array(_) | Value::Struct(_) | Value::Encoded(_) => false,
    }
}

/// `v` as a Go peer would transmit it: struct fields Go omits are dropped, everywhere. A
/// hostile stream may send an explicit zero field; a faithful re-encoding leaves it out.
pub fn go_view(v: &Value) -> Value {
    match v {
        Value::Struct(s) => Value::Struct(gob::Struct::new(
            s.fields
                .iter()
                .filter(|(_, f)| !go_omits(f))
                .map(|(n, f)| (n.clone(), go_view(f)))
                .collect(),
        )),
        Value::Array(items) => Value::Array(items.iter().map(go_view).collect()),
        Value::Slice(items) => Value::Slice(items.iter().map(go_view).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, e)| (go_view(k), go_view(e)))
                .collect(),
        ),
        Value::Interface(Some(i)) => Value::interface(i.name.clone(), go_view(&i.value)),
        other => other.clone(),
    }
}

/// Value equality with floats compared bit for bit (NaN payloads and -0.0 travel exactly,
/// and `==` would call NaN unequal to itself).
pub fn same_value(a: &Value, b: &Value) -> bool {
    fn all(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
    }
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Complex(xr, xi), Value::Complex(yr, yi)) => {
            xr.to_bits() == yr.to_bits() && xi.to_bits() == yi.to_bits()
        }
        (Value::Array(x), Value::Array(y)) | (Value::Slice(x), Value::Slice(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((xk, xv), (yk, yv))| same_value(xk, yk) && same_value(xv, yv))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|((xn, xv), (yn, yv))| xn == yn && same_value(xv, yv))
        }
        (Value::Interface(Some(x)), Value::Interface(Some(y))) => {
            x.name == y.name && same_value(&x.value, &y.value)
        }
        _ => a == b,
    }
}
