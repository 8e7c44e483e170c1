//! Protobuf encoding of a [`DynamicMessage`] in time linear in its size.
//!
//! prost-reflect encodes a nested message through prost's `message::encode`, which asks the
//! message for its length, which walks the message; each enclosing level asks again. A value
//! nested `d` deep is therefore measured `d` times: a post whose props nest 10,000 JSON levels
//! (30,000 messages as `google.protobuf.Value`) took a minute to encode, one of lists nested
//! 40 deep and 1 MiB wide over a second (issue 16). Here every message is measured once, in a
//! first pass that records the lengths in the order the second pass writes them.
//!
//! The bytes are prost-reflect's, field for field (a unit test compares them): fields in number
//! order, values a field without presence holds at their default left out, repeated scalars
//! packed where the descriptor says so, map entries with both key and value, and unknown fields
//! (from a decoded message) after the known ones. Extensions do not occur in our contract and
//! are not written.

use bytes::BufMut;
use prost::encoding::{self as pe, WireType};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, Value};

/// Encodes `msg` into a new buffer.
pub fn encode_to_vec(msg: &DynamicMessage) -> Vec<u8> {
    let mut lens = Vec::new();
    let len = measure(msg, &mut lens);
    let mut buf = Vec::with_capacity(len);
    write_message(msg, &lens, &mut 0, &mut buf);
    buf
}

/// Encodes `msg` into `buf`; returns the number of bytes written.
pub fn encode(msg: &DynamicMessage, buf: &mut impl BufMut) -> usize {
    let mut lens = Vec::new();
    let len = measure(msg, &mut lens);
    write_message(msg, &lens, &mut 0, buf);
    len
}

// ---- pass 1: lengths -----------------------------------------------------------------------

/// The body length of `msg`. Its slot in `lens` is taken before its children's, so the slots
/// are in the order pass 2 meets the messages.
fn measure(msg: &DynamicMessage, lens: &mut Vec<usize>) -> usize {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
        let slot = lens.len();
        lens.push(0);
        let mut len = 0;
        for (fd, v) in msg.fields() {
            len += field_len(&fd, v, lens);
        }
        for u in msg.unknown_fields() {
            len += u.encoded_len();
        }
        lens[slot] = len;
        len
    })
}

fn field_len(fd: &FieldDescriptor, v: &Value, lens: &mut Vec<usize>) -> usize {
    let n = fd.number();
    match v {
        Value::List(items) if fd.is_packed() => {
            let body: usize = items.iter().map(|x| packed_elem_len(fd.kind(), x)).sum();
            if items.is_empty() {
                0
            } else {
                pe::key_len(n) + pe::encoded_len_varint(body as u64) + body
            }
        }
        Value::List(items) => items.iter().map(|x| single_len(fd, x, lens)).sum(),
        Value::Map(entries) => {
            let Kind::Message(entry) = fd.kind() else {
                return 0;
            };
            let (key_fd, value_fd) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            entries
                .iter()
                .map(|(k, x)| {
                    let body = entry_field_len(&key_fd, &key_value(k), lens)
                        + entry_field_len(&value_fd, x, lens);
                    pe::key_len(n) + pe::encoded_len_varint(body as u64) + body
                })
                .sum()
        }
        _ => single_len(fd, v, lens),
    }
}

/// A map entry's key or value: left out at its default unless it is a message (as
/// prost-reflect writes them).
fn entry_field_len(fd: &FieldDescriptor, v: &Value, lens: &mut Vec<usize>) -> usize {
    if !fd.supports_presence() && v.is_default_for_field(fd) {
        return 0;
    }
    single_len(fd, v, lens)
}

fn single_len(fd: &FieldDescriptor, v: &Value, lens: &mut Vec<usize>) -> usize {
    let n = fd.number();
    match (v, fd.kind()) {
        (Value::Message(m), _) if fd.is_group() => 2 * pe::key_len(n) + measure(m, lens),
        (Value::Message(m), _) => {
            let body = measure(m, lens);
            pe::key_len(n) + pe::encoded_len_varint(body as u64) + body
        }
        (Value::Bool(x), _) => pe::bool::encoded_len(n, x),
        (Value::I32(x), Kind::Sint32) => pe::sint32::encoded_len(n, x),
        (Value::I32(x), Kind::Sfixed32) => pe::sfixed32::encoded_len(n, x),
        (Value::I32(x), _) => pe::int32::encoded_len(n, x),
        (Value::I64(x), Kind::Sint64) => pe::sint64::encoded_len(n, x),
        (Value::I64(x), Kind::Sfixed64) => pe::sfixed64::encoded_len(n, x),
        (Value::I64(x), _) => pe::int64::encoded_len(n, x),
        (Value::U32(x), Kind::Fixed32) => pe::fixed32::encoded_len(n, x),
        (Value::U32(x), _) => pe::uint32::encoded_len(n, x),
        (Value::U64(x), Kind::Fixed64) => pe::fixed64::encoded_len(n, x),
        (Value::U64(x), _) => pe::uint64::encoded_len(n, x),
        (Value::F32(x), _) => pe::float::encoded_len(n, x),
        (Value::F64(x), _) => pe::double::encoded_len(n, x),
        (Value::String(x), _) => pe::string::encoded_len(n, x),
        (Value::Bytes(x), _) => pe::bytes::encoded_len(n, x),
        (Value::EnumNumber(x), _) => pe::int32::encoded_len(n, x),
        // Lists and maps inside a single value do not occur (the descriptor forbids them).
        (Value::List(_) | Value::Map(_), _) => 0,
    }
}

fn packed_elem_len(kind: Kind, v: &Value) -> usize {
    match (v, kind) {
        (Value::Bool(_), _) => 1,
        (Value::I32(_) | Value::U32(_) | Value::F32(_), Kind::Sfixed32 | Kind::Fixed32)
        | (Value::F32(_), _) => 4,
        (Value::I64(_) | Value::U64(_) | Value::F64(_), Kind::Sfixed64 | Kind::Fixed64)
        | (Value::F64(_), _) => 8,
        (Value::I32(x), Kind::Sint32) => pe::encoded_len_varint(zigzag32(*x)),
        (Value::I64(x), Kind::Sint64) => pe::encoded_len_varint(zigzag64(*x)),
        (Value::I32(x) | Value::EnumNumber(x), _) => pe::encoded_len_varint(*x as i64 as u64),
        (Value::I64(x), _) => pe::encoded_len_varint(*x as u64),
        (Value::U32(x), _) => pe::encoded_len_varint(u64::from(*x)),
        (Value::U64(x), _) => pe::encoded_len_varint(*x),
        _ => 0,
    }
}

// ---- pass 2: bytes -------------------------------------------------------------------------

fn write_message(msg: &DynamicMessage, lens: &[usize], next: &mut usize, buf: &mut impl BufMut) {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
        *next += 1; // this message's own slot, read by whoever wrote its length
        for (fd, v) in msg.fields() {
            write_field(&fd, v, lens, next, buf);
        }
        for u in msg.unknown_fields() {
            u.encode(buf);
        }
    })
}

fn write_field(
    fd: &FieldDescriptor,
    v: &Value,
    lens: &[usize],
    next: &mut usize,
    buf: &mut impl BufMut,
) {
    let n = fd.number();
    match v {
        Value::List(items) if fd.is_packed() => {
            if items.is_empty() {
                return;
            }
            let body: usize = items.iter().map(|x| packed_elem_len(fd.kind(), x)).sum();
            pe::encode_key(n, WireType::LengthDelimited, buf);
            pe::encode_varint(body as u64, buf);
            for x in items {
                write_packed_elem(fd.kind(), x, buf);
            }
        }
        Value::List(items) => {
            for x in items {
                write_single(fd, x, lens, next, buf);
            }
        }
        Value::Map(entries) => {
            let Kind::Message(entry) = fd.kind() else {
                return;
            };
            let (key_fd, value_fd) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            for (k, x) in entries {
                let key = key_value(k);
                // The entry's length needs its value's, which pass 1 recorded at `next`.
                let body = entry_len_recorded(&key_fd, &key, lens, *next)
                    + entry_len_recorded(&value_fd, x, lens, *next);
                pe::encode_key(n, WireType::LengthDelimited, buf);
                pe::encode_varint(body as u64, buf);
                write_entry_field(&key_fd, &key, lens, next, buf);
                write_entry_field(&value_fd, x, lens, next, buf);
            }
        }
        _ => write_single(fd, v, lens, next, buf),
    }
}

/// A map entry field's length from pass 1's record (its message slot is `at` when it is one).
fn entry_len_recorded(fd: &FieldDescriptor, v: &Value, lens: &[usize], at: usize) -> usize {
    if !fd.supports_presence() && v.is_default_for_field(fd) {
        return 0;
    }
    match v {
        Value::Message(_) => {
            let body = lens[at];
            pe::key_len(fd.number()) + pe::encoded_len_varint(body as u64) + body
        }
        // Scalars need no record: measuring them again writes nothing to `lens`.
        _ => single_len(fd, v, &mut Vec::new()),
    }
}

fn write_entry_field(
    fd: &FieldDescriptor,
    v: &Value,
    lens: &[usize],
    next: &mut usize,
    buf: &mut impl BufMut,
) {
    if !fd.supports_presence() && v.is_default_for_field(fd) {
        return;
    }
    write_single(fd, v, lens, next, buf);
}

fn write_single(
    fd: &FieldDescriptor,
    v: &Value,
    lens: &[usize],
    next: &mut usize,
    buf: &mut impl BufMut,
) {
    let n = fd.number();
    match (v, fd.kind()) {
        (Value::Message(m), _) if fd.is_group() => {
            pe::encode_key(n, WireType::StartGroup, buf);
            write_message(m, lens, next, buf);
            pe::encode_key(n, WireType::EndGroup, buf);
        }
        (Value::Message(m), _) => {
            pe::encode_key(n, WireType::LengthDelimited, buf);
            pe::encode_varint(lens[*next] as u64, buf);
            write_message(m, lens, next, buf);
        }
        (Value::Bool(x), _) => pe::bool::encode(n, x, buf),
        (Value::I32(x), Kind::Sint32) => pe::sint32::encode(n, x, buf),
        (Value::I32(x), Kind::Sfixed32) => pe::sfixed32::encode(n, x, buf),
        (Value::I32(x), _) => pe::int32::encode(n, x, buf),
        (Value::I64(x), Kind::Sint64) => pe::sint64::encode(n, x, buf),
        (Value::I64(x), Kind::Sfixed64) => pe::sfixed64::encode(n, x, buf),
        (Value::I64(x), _) => pe::int64::encode(n, x, buf),
        (Value::U32(x), Kind::Fixed32) => pe::fixed32::encode(n, x, buf),
        (Value::U32(x), _) => pe::uint32::encode(n, x, buf),
        (Value::U64(x), Kind::Fixed64) => pe::fixed64::encode(n, x, buf),
        (Value::U64(x), _) => pe::uint64::encode(n, x, buf),
        (Value::F32(x), _) => pe::float::encode(n, x, buf),
        (Value::F64(x), _) => pe::double::encode(n, x, buf),
        (Value::String(x), _) => pe::string::encode(n, x, buf),
        (Value::Bytes(x), _) => pe::bytes::encode(n, x, buf),
        (Value::EnumNumber(x), _) => pe::int32::encode(n, x, buf),
        (Value::List(_) | Value::Map(_), _) => {}
    }
}

fn write_packed_elem(kind: Kind, v: &Value, buf: &mut impl BufMut) {
    match (v, kind) {
        (Value::Bool(x), _) => buf.put_u8(u8::from(*x)),
        (Value::I32(x), Kind::Sfixed32) => buf.put_i32_le(*x),
        (Value::U32(x), Kind::Fixed32) => buf.put_u32_le(*x),
        (Value::F32(x), _) => buf.put_f32_le(*x),
        (Value::I64(x), Kind::Sfixed64) => buf.put_i64_le(*x),
        (Value::U64(x), Kind::Fixed64) => buf.put_u64_le(*x),
        (Value::F64(x), _) => buf.put_f64_le(*x),
        (Value::I32(x), Kind::Sint32) => pe::encode_varint(zigzag32(*x), buf),
        (Value::I64(x), Kind::Sint64) => pe::encode_varint(zigzag64(*x), buf),
        (Value::I32(x) | Value::EnumNumber(x), _) => pe::encode_varint(*x as i64 as u64, buf),
        (Value::I64(x), _) => pe::encode_varint(*x as u64, buf),
        (Value::U32(x), _) => pe::encode_varint(u64::from(*x), buf),
        (Value::U64(x), _) => pe::encode_varint(*x, buf),
        _ => {}
    }
}

/// A map key as the value of its entry's field 1 (keys are scalars: they never take a slot in
/// the lengths, so measuring one twice is harmless).
fn key_value(k: &MapKey) -> Value {
    match k {
        MapKey::Bool(b) => Value::Bool(*b),
        MapKey::I32(i) => Value::I32(*i),
        MapKey::I64(i) => Value::I64(*i),
        MapKey::U32(i) => Value::U32(*i),
        MapKey::U64(i) => Value::U64(*i),
        MapKey::String(s) => Value::String(s.clone()),
    }
}

fn zigzag32(x: i32) -> u64 {
    u64::from(((x << 1) ^ (x >> 31)) as u32)
}

fn zigzag64(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_reflect::MessageDescriptor;

    /// A small deterministic generator (no seed file to keep).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn scalar(kind: &Kind, rng: &mut Rng) -> Value {
        // Defaults half the time, so leaving them out is exercised too.
        let zero = rng.below(3) == 0;
        let r = if zero { 0 } else { rng.next() };
        match kind {
            Kind::Bool => Value::Bool(r % 2 == 1),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(r as i32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(r as i64),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(r as u32),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(r),
            Kind::Float => Value::F32(if zero { 0.0 } else { -1.5 }),
            Kind::Double => Value::F64(if zero { 0.0 } else { r as f64 / 7.0 - 1e9 }),
            Kind::String => Value::String("é".repeat((r % 5) as usize)),
            Kind::Bytes => Value::Bytes(vec![0xff; (r % 4) as usize].into()),
            Kind::Enum(e) => Value::EnumNumber(e.values().last().map_or(0, |v| v.number())),
            Kind::Message(m) => Value::Message(DynamicMessage::new(m.clone())),
        }
    }

    fn fill(desc: &MessageDescriptor, depth: usize, rng: &mut Rng) -> DynamicMessage {
        let mut m = DynamicMessage::new(desc.clone());
        for fd in desc.fields() {
            if rng.below(4) == 0 {
                continue;
            }
            let one = |rng: &mut Rng| match fd.kind() {
                Kind::Message(md) if depth < 4 => Value::Message(fill(&md, depth + 1, rng)),
                Kind::Message(md) => Value::Message(DynamicMessage::new(md)),
                k => scalar(&k, rng),
            };
            let v = if fd.is_map() {
                let Kind::Message(entry) = fd.kind() else {
                    unreachable!()
                };
                let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
                let mut map = std::collections::HashMap::new();
                for _ in 0..rng.below(4) {
                    let key = match scalar(&kf.kind(), rng) {
                        Value::String(s) => MapKey::String(s),
                        Value::I32(i) => MapKey::I32(i),
                        Value::I64(i) => MapKey::I64(i),
                        Value::U32(i) => MapKey::U32(i),
                        Value::U64(i) => MapKey::U64(i),
                        Value::Bool(b) => MapKey::Bool(b),
                        _ => unreachable!(),
                    };
                    let value = match vf.kind() {
                        Kind::Message(md) if depth < 4 => Value::Message(fill(&md, depth + 1, rng)),
                        Kind::Message(md) => Value::Message(DynamicMessage::new(md)),
                        k => scalar(&k, rng),
                    };
                    map.insert(key, value);
                }
                Value::Map(map)
            } else if fd.is_list() {
                Value::List((0..rng.below(4)).map(|_| one(rng)).collect())
            } else {
                one(rng)
            };
            m.set_field(&fd, v);
        }
        m
    }

    #[test]
    fn bytes_are_prost_reflects_for_every_message_of_the_contract() {
        let pool = crate::translate::descriptors();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for desc in pool.all_messages() {
            for _ in 0..8 {
                let m = fill(&desc, 0, &mut rng);
                let ours = encode_to_vec(&m);
                assert!(
                    ours == m.encode_to_vec(),
                    "{} encodes differently",
                    desc.full_name()
                );
                assert_eq!(encode(&m, &mut Vec::new()), ours.len());
                checked += 1;
            }
        }
        assert!(checked > 1000, "only {checked} messages checked");
    }

    #[test]
    fn unknown_fields_are_kept() {
        let pool = crate::translate::descriptors();
        let value = pool.get_message_by_name("google.protobuf.Value").unwrap();
        // Field 7 (varint 150) and field 9 (bytes "hi"): unknown to Value (fields 1-6).
        let wire = [0x38, 0x96, 0x01, 0x4a, 0x02, b'h', b'i'];
        let m = DynamicMessage::decode(value, &wire[..]).unwrap();
        assert_eq!(encode_to_vec(&m), wire);
    }

    #[test]
    fn deep_values_encode_in_linear_time() {
        // google.protobuf.Value holding lists nested 20,000 deep: prost-reflect's encoder
        // measures each level once per enclosing level (minutes); this one measures once.
        let pool = crate::translate::descriptors();
        let value = pool.get_message_by_name("google.protobuf.Value").unwrap();
        let list = pool
            .get_message_by_name("google.protobuf.ListValue")
            .unwrap();
        let mut v = DynamicMessage::new(value.clone());
        v.set_field_by_number(3, Value::String("bottom".into()));
        for _ in 0..20_000 {
            let mut l = DynamicMessage::new(list.clone());
            l.set_field_by_number(1, Value::List(vec![Value::Message(v)]));
            v = DynamicMessage::new(value.clone());
            v.set_field_by_number(6, Value::Message(l));
        }
        let mut lens = Vec::new();
        let len = measure(&v, &mut lens);
        // One measurement per message: 40,001 of them, each once.
        assert_eq!(lens.len(), 40_001);
        let bytes = encode_to_vec(&v);
        assert_eq!(bytes.len(), len);
        std::mem::forget(v); // dropping 40,000 nested messages recurses on this small stack
    }
}
