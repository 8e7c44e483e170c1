//! `google.protobuf.Value` and `Struct` (Go's `interface{}` and `map[string]interface{}`)
//! straight between gob values and protobuf bytes, without a `DynamicMessage` per level.
//!
//! Props are JSON of any shape and nest up to the server's 10,000 levels. Built as
//! prost-reflect messages, every level of a value cost a message with its own field map, and
//! translating a post whose props were lists nested 40 deep took the bridge about 4 × the CPU
//! a Go plugin spends on the same hook (issue 16, make bench's
//! `hook_deep_post_cpu_bridge_per_call`). Here a value is written and read as bytes in one pass.
//!
//! The bridge's descriptor pool ([`wire_pool`]) is the contract with every field of type
//! `Value`, `Struct` or `ListValue` retyped as `bytes`: the same field number and wire type
//! (length-delimited), so the bytes on the wire are the same, and such a field's value is the
//! encoded message, which [`Translator`] writes and reads with the functions here. A singular
//! field keeps its presence (an empty `Struct` is still sent) by becoming a proto3 `optional`.
//!
//! Decoding follows protobuf's rules as the generated parsers do: the last member of the
//! `kind` oneof wins, a message field that occurs again merges (a struct's entries add up,
//! a list's values append), a later map entry replaces an earlier one with the same key,
//! unknown fields are skipped, strings must be UTF-8.

use std::collections::BTreeMap;

use gob::Value as GobValue;
use prost::Message as _;
use prost_reflect::prost_types::{
    DescriptorProto, FileDescriptorSet, OneofDescriptorProto, field_descriptor_proto::Type,
};

use crate::translate::{
    Hint, Result, Translator, grow_stack, hint_index, hint_key, hint_unwrap, lossy_text,
    number_like_hint, restore_string,
};

/// The message types that travel as bytes in the bridge's pool.
const RETYPED: &[&str] = &[
    ".google.protobuf.Value",
    ".google.protobuf.Struct",
    ".google.protobuf.ListValue",
];

/// The contract's descriptor set (as compiled) with every `Value`/`Struct`/`ListValue` field
/// of our own messages retyped as `bytes`; see the module comment.
pub fn wire_pool(contract: &[u8]) -> prost_reflect::DescriptorPool {
    // The set was produced and checked by protox at build time, and the rewrite keeps it
    // valid, so neither step can fail unless the binary is corrupt.
    let mut set = FileDescriptorSet::decode(contract).expect("embedded descriptor set is valid");
    for file in &mut set.file {
        if file.package() == "google.protobuf" {
            continue;
        }
        for msg in &mut file.message_type {
            retype_fields(msg);
        }
    }
    prost_reflect::DescriptorPool::from_file_descriptor_set(set)
        .expect("retyped descriptor set is valid")
}

fn retype_fields(msg: &mut DescriptorProto) {
    for nested in &mut msg.nested_type {
        retype_fields(nested);
    }
    let is_map_entry = msg.options.as_ref().is_some_and(|o| o.map_entry());
    for i in 0..msg.field.len() {
        let field = &mut msg.field[i];
        if !RETYPED.contains(&field.type_name()) {
            continue;
        }
        field.set_type(Type::Bytes);
        field.type_name = None;
        // A message field has presence; a plain proto3 bytes field would drop an empty value
        // (an empty Struct), so a singular one becomes `optional` with its synthetic oneof,
        // which must come after the real oneofs. Map entries write both fields regardless.
        let singular =
            field.label() != prost_reflect::prost_types::field_descriptor_proto::Label::Repeated;
        if singular && !is_map_entry && field.oneof_index.is_none() {
            field.proto3_optional = Some(true);
            field.oneof_index = Some(msg.oneof_decl.len() as i32);
            let name = format!("_{}", field.name());
            msg.oneof_decl.push(OneofDescriptorProto {
                name: Some(name),
                options: None,
            });
        }
    }
}

// ---- encoding ------------------------------------------------------------------------------

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

/// A protobuf writer that works backwards: a message's body is written before its length
/// prefix, so every length is known when it is needed and each byte is written once, however
/// deep the nesting. The bytes are kept reversed and turned around at the end.
#[derive(Debug, Default)]
struct Backwards {
    reversed: Vec<u8>,
}

impl Backwards {
    fn len(&self) -> usize {
        self.reversed.len()
    }

    fn bytes(&mut self, b: &[u8]) {
        self.reversed.extend(b.iter().rev());
    }

    fn varint(&mut self, mut v: u64) {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                tmp[n] = byte;
                n += 1;
                break;
            }
            tmp[n] = byte | 0x80;
            n += 1;
        }
        self.bytes(&tmp[..n]);
    }

    fn key(&mut self, field: u32, wire_type: u64) {
        self.varint((u64::from(field) << 3) | wire_type);
    }

    /// Ends a length-delimited field whose body was written since `body_start` (a [`len`]).
    fn close(&mut self, field: u32, body_start: usize) {
        self.varint((self.len() - body_start) as u64);
        self.key(field, LEN);
    }

    fn string_field(&mut self, field: u32, s: &[u8]) {
        let start = self.len();
        self.bytes(s);
        self.close(field, start);
    }

    fn finish(mut self) -> Vec<u8> {
        self.reversed.reverse();
        self.reversed
    }
}

impl Translator {
    /// A Go `interface{}` value → an encoded `google.protobuf.Value`, the way `encoding/json`
    /// would render it.
    pub(crate) fn interface_to_value_bytes(
        &self,
        v: &GobValue,
        path: &crate::translate::Path,
    ) -> Result<Vec<u8>> {
        let mut w = Backwards::default();
        self.write_interface(v, &mut w, path)?;
        Ok(w.finish())
    }

    /// `map[string]interface {}` → an encoded `google.protobuf.Struct`.
    pub(crate) fn gob_map_to_struct_bytes(
        &self,
        entries: &[(GobValue, GobValue)],
        path: &crate::translate::Path,
    ) -> Result<Vec<u8>> {
        let mut w = Backwards::default();
        self.write_struct(entries, &mut w, path)?;
        Ok(w.finish())
    }

    fn write_interface(
        &self,
        v: &GobValue,
        w: &mut Backwards,
        path: &crate::translate::Path,
    ) -> Result<()> {
        grow_stack(|| match v {
            GobValue::Interface(None) => {
                w.varint(0);
                w.key(1, VARINT);
                Ok(())
            }
            GobValue::Interface(Some(i)) => self.write_concrete(Some(&i.name), &i.value, w, path),
            // A value already unwrapped (an element of a registered []interface{}).
            other => self.write_concrete(None, other, w, path),
        })
    }

    fn write_concrete(
        &self,
        name: Option<&str>,
        v: &GobValue,
        w: &mut Backwards,
        path: &crate::translate::Path,
    ) -> Result<()> {
        match v {
            GobValue::Bool(b) => {
                w.varint(u64::from(*b));
                w.key(4, VARINT);
            }
            GobValue::String(s) => w.string_field(3, s.as_bytes()),
            GobValue::NonUtf8String(b) => w.string_field(3, lossy_text(b).as_bytes()),
            GobValue::Int(i) => write_number(w, *i as f64),
            GobValue::Uint(u) => write_number(w, *u as f64),
            GobValue::Float(f) => write_number(w, *f),
            GobValue::Interface(_) => return self.write_interface(v, w, path),
            GobValue::Slice(items) | GobValue::Array(items) => {
                let list_start = w.len();
                for (i, item) in items.iter().enumerate().rev() {
                    let start = w.len();
                    self.write_interface(item, w, &path.index(i))?;
                    w.close(1, start);
                }
                w.close(6, list_start);
            }
            GobValue::Map(entries) => {
                let start = w.len();
                self.write_struct(entries, w, path)?;
                w.close(5, start);
            }
            GobValue::Struct(s) => {
                // A registered struct type (e.g. `[]*model.SlackAttachment` elements): render it
                // with its JSON field names, as the server's JSON API would.
                let type_name = name.map(|n| n.trim_start_matches("[]").trim_start_matches('*'));
                let json = self.struct_to_json_map(type_name, s);
                let start = w.len();
                self.write_struct(&json, w, path)?;
                w.close(5, start);
            }
            // encoding/json renders []byte as base64.
            GobValue::Bytes(b) => w.string_field(3, crate::translate::base64(b).as_bytes()),
            other => {
                return Err(path.err(format!(
                    "cannot represent gob {} in a google.protobuf.Value",
                    other.kind_name()
                )));
            }
        }
        Ok(())
    }

    /// The body of a `Struct`: one `fields` map entry per Go map entry, in the Go map's order.
    fn write_struct(
        &self,
        entries: &[(GobValue, GobValue)],
        w: &mut Backwards,
        path: &crate::translate::Path,
    ) -> Result<()> {
        for (k, v) in entries.iter().rev() {
            let key = match k {
                GobValue::String(k) => std::borrow::Cow::Borrowed(k.as_str()),
                GobValue::NonUtf8String(b) => std::borrow::Cow::Owned(lossy_text(b)),
                _ => {
                    return Err(path.err(format!("map key is gob {}, not a string", k.kind_name())));
                }
            };
            let entry_start = w.len();
            let value_start = w.len();
            self.write_interface(v, w, &path.with(&key))?;
            w.close(2, value_start);
            w.string_field(1, key.as_bytes());
            w.close(1, entry_start);
        }
        Ok(())
    }
}

fn write_number(w: &mut Backwards, f: f64) {
    w.bytes(&f.to_le_bytes());
    w.key(2, FIXED64);
}

// ---- decoding ------------------------------------------------------------------------------

/// Reads one message's fields from a byte slice.
struct Fields<'a> {
    buf: &'a [u8],
}

/// One field as read: its number and what it held.
enum Field<'a> {
    Varint(u32, u64),
    Fixed64(u32, [u8; 8]),
    Len(u32, &'a [u8]),
    /// A 32-bit value or a group, already skipped: Value and Struct have no such fields.
    Other(u32),
}

impl Field<'_> {
    fn number(&self) -> u32 {
        match *self {
            Field::Varint(n, _) | Field::Fixed64(n, _) | Field::Len(n, _) | Field::Other(n) => n,
        }
    }
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    fn varint(&mut self) -> std::result::Result<u64, &'static str> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == 9 && byte > 1 {
                    return Err("varint overflows 64 bits");
                }
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    fn take(&mut self, n: u64) -> std::result::Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| "length out of range")?;
        if n > self.buf.len() {
            return Err("length past the end of the message");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field, or `None` at the end of the message.
    fn next_field(&mut self) -> std::result::Result<Option<Field<'a>>, &'static str> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "field number out of range")?;
        if number == 0 {
            return Err("field number 0");
        }
        Ok(Some(match key & 7 {
            VARINT => Field::Varint(number, self.varint()?),
            FIXED64 => Field::Fixed64(number, self.take(8)?.try_into().expect("8 bytes")),
            LEN => {
                let n = self.varint()?;
                Field::Len(number, self.take(n)?)
            }
            FIXED32 => {
                self.take(4)?;
                Field::Other(number)
            }
            START_GROUP => {
                self.skip_group(number)?;
                Field::Other(number)
            }
            END_GROUP => return Err("end of a group that was not started"),
            _ => return Err("invalid wire type"),
        }))
    }

    /// Skips a group's fields up to its end marker. Groups nest; the depth is counted rather
    /// than recursed, so hostile nesting cannot exhaust the stack.
    fn skip_group(&mut self, number: u32) -> std::result::Result<(), &'static str> {
        let mut open = vec![number];
        while let Some(&innermost) = open.last() {
            let key = self.varint()?;
            let n = u32::try_from(key >> 3).map_err(|_| "field number out of range")?;
            match key & 7 {
                VARINT => drop(self.varint()?),
                FIXED64 => drop(self.take(8)?),
                LEN => {
                    let len = self.varint()?;
                    self.take(len)?;
                }
                FIXED32 => drop(self.take(4)?),
                START_GROUP => open.push(n),
                END_GROUP if n == innermost => drop(open.pop()),
                END_GROUP => return Err("group ends with another field number"),
                _ => return Err("invalid wire type"),
            }
        }
        Ok(())
    }
}

/// What a `Value`'s `kind` oneof holds after all its occurrences are read. Message members
/// keep every occurrence, which protobuf merges: read in turn, they are the merged message.
enum ValueKind<'a> {
    Null,
    Number(f64),
    String(&'a [u8]),
    Bool(bool),
    Struct(Vec<&'a [u8]>),
    List(Vec<&'a [u8]>),
}

impl Translator {
    /// An encoded `google.protobuf.Value` → a Go `interface{}` holding what JSON decoding would
    /// give: numbers are `float64` unless the hint was the same number (docs/internals.md §10,
    /// numbers inside `interface{}` values).
    pub(crate) fn value_bytes_to_interface(
        &self,
        bytes: &[u8],
        path: &crate::translate::Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        self.value_parts_to_interface(&[bytes], path, hint)
    }

    /// An encoded `google.protobuf.Struct` → `map[string]interface {}`.
    pub(crate) fn struct_bytes_to_gob_map(
        &self,
        bytes: &[u8],
        path: &crate::translate::Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        self.struct_parts_to_gob_map(&[bytes], path, hint)
    }

    /// `parts` are the occurrences of one `Value`, merged in order.
    fn value_parts_to_interface(
        &self,
        parts: &[&[u8]],
        path: &crate::translate::Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        grow_stack(|| {
            let bad = |what: &str| path.err(format!("google.protobuf.Value: {what}"));
            let mut kind = None;
            for part in parts {
                let mut fields = Fields::new(part);
                while let Some(field) = fields.next_field().map_err(bad)? {
                    kind = match field {
                        Field::Varint(1, _) => Some(ValueKind::Null),
                        Field::Fixed64(2, b) => Some(ValueKind::Number(f64::from_le_bytes(b))),
                        Field::Len(3, s) => Some(ValueKind::String(s)),
                        Field::Varint(4, b) => Some(ValueKind::Bool(b != 0)),
                        Field::Len(5, s) => match kind {
                            Some(ValueKind::Struct(mut all)) => {
                                all.push(s);
                                Some(ValueKind::Struct(all))
                            }
                            _ => Some(ValueKind::Struct(vec![s])),
                        },
                        Field::Len(6, l) => match kind {
                            Some(ValueKind::List(mut all)) => {
                                all.push(l);
                                Some(ValueKind::List(all))
                            }
                            _ => Some(ValueKind::List(vec![l])),
                        },
                        f if (1..=6).contains(&f.number()) => {
                            return Err(bad(&format!(
                                "field {} has the wrong wire type",
                                f.number()
                            )));
                        }
                        _ => kind,
                    };
                }
            }
            Ok(match kind {
                None | Some(ValueKind::Null) => GobValue::Interface(None),
                Some(ValueKind::Number(f)) => number_like_hint(f, hint),
                Some(ValueKind::String(s)) => {
                    let s = std::str::from_utf8(s).map_err(|_| bad("string_value is not UTF-8"))?;
                    GobValue::interface("string", restore_string(s, hint_unwrap(hint)))
                }
                Some(ValueKind::Bool(b)) => GobValue::interface("bool", GobValue::Bool(b)),
                Some(ValueKind::Struct(parts)) => GobValue::interface(
                    "map[string]interface {}",
                    self.struct_parts_to_gob_map(&parts, path, hint_unwrap(hint))?,
                ),
                Some(ValueKind::List(parts)) => {
                    let hint = hint_unwrap(hint);
                    let mut items = Vec::new();
                    for part in parts {
                        let mut fields = Fields::new(part);
                        while let Some(field) = fields.next_field().map_err(bad)? {
                            match field {
                                Field::Len(1, item) => {
                                    let i = items.len();
                                    items.push(self.value_parts_to_interface(
                                        &[item],
                                        &path.index(i),
                                        hint_index(hint, i),
                                    )?);
                                }
                                f if f.number() == 1 => {
                                    return Err(bad("ListValue.values has the wrong wire type"));
                                }
                                _ => {}
                            }
                        }
                    }
                    GobValue::interface("[]interface {}", GobValue::Slice(items))
                }
            })
        })
    }

    /// `parts` are the occurrences of one `Struct`, merged in order: their entries add up, and
    /// a later entry replaces an earlier one with the same key. The map comes out sorted by key.
    fn struct_parts_to_gob_map(
        &self,
        parts: &[&[u8]],
        path: &crate::translate::Path,
        hint: Hint<'_>,
    ) -> Result<GobValue> {
        let bad = |what: &str| path.err(format!("google.protobuf.Struct: {what}"));
        let mut entries: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
        for part in parts {
            let mut fields = Fields::new(part);
            while let Some(field) = fields.next_field().map_err(bad)? {
                let entry = match field {
                    Field::Len(1, entry) => entry,
                    f if f.number() == 1 => return Err(bad("fields has the wrong wire type")),
                    _ => continue,
                };
                let (mut key, mut value) = (&b""[..], Vec::new());
                let mut entry_fields = Fields::new(entry);
                while let Some(field) = entry_fields.next_field().map_err(bad)? {
                    match field {
                        Field::Len(1, k) => key = k,
                        Field::Len(2, v) => value.push(v),
                        f if matches!(f.number(), 1 | 2) => {
                            return Err(bad("a fields entry has the wrong wire type"));
                        }
                        _ => {}
                    }
                }
                let key = std::str::from_utf8(key).map_err(|_| bad("a key is not UTF-8"))?;
                entries.insert(key, value);
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            let key = GobValue::String(name.to_owned());
            let v =
                self.value_parts_to_interface(&value, &path.with(name), hint_key(hint, &key))?;
            out.push((key, v));
        }
        Ok(GobValue::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{Path, contract_descriptors};
    use prost_reflect::{DynamicMessage, Value as PbValue};

    fn translator() -> Translator {
        Translator::new(crate::schema::embedded().expect("schema")).expect("translator")
    }

    fn iface(name: &str, v: GobValue) -> GobValue {
        GobValue::interface(name, v)
    }

    /// Props of every kind a Go `interface{}` holds in them, as the server sends them.
    fn sample() -> GobValue {
        iface(
            "map[string]interface {}",
            GobValue::Map(vec![
                (
                    GobValue::String("b".into()),
                    iface("bool", GobValue::Bool(true)),
                ),
                (
                    GobValue::String("f".into()),
                    iface("float64", GobValue::Float(1.5)),
                ),
                (GobValue::String("n".into()), GobValue::Interface(None)),
                (
                    GobValue::String("s".into()),
                    iface("string", GobValue::String("hé".into())),
                ),
                (
                    GobValue::String("l".into()),
                    iface(
                        "[]interface {}",
                        GobValue::Slice(vec![
                            iface("string", GobValue::String(String::new())),
                            iface("float64", GobValue::Float(0.0)),
                            iface("map[string]interface {}", GobValue::Map(vec![])),
                            iface("[]interface {}", GobValue::Slice(vec![])),
                        ]),
                    ),
                ),
            ]),
        )
    }

    /// What JSON decoding on the server would give back for [`sample`]: the same, its map
    /// entries sorted by key.
    fn sample_sorted() -> GobValue {
        let GobValue::Interface(Some(i)) = sample() else {
            unreachable!()
        };
        let GobValue::Map(mut entries) = i.value else {
            unreachable!()
        };
        entries.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
        iface("map[string]interface {}", GobValue::Map(entries))
    }

    fn decode(t: &Translator, bytes: &[u8]) -> Result<GobValue> {
        t.value_bytes_to_interface(bytes, &Path::root("v"), None)
    }

    #[test]
    fn values_round_trip_and_are_what_a_protobuf_parser_reads() {
        let t = translator();
        let bytes = t
            .interface_to_value_bytes(&sample(), &Path::root("v"))
            .unwrap();
        assert_eq!(decode(&t, &bytes).unwrap(), sample_sorted());
        // prost-reflect, an independent parser, reads the same message and writes bytes that
        // we read back to the same value.
        let value = contract_descriptors()
            .get_message_by_name("google.protobuf.Value")
            .unwrap();
        let parsed = DynamicMessage::decode(value, &bytes[..]).expect("valid Value bytes");
        let fields = parsed.get_field_by_number(5).unwrap();
        let PbValue::Message(s) = &*fields else {
            panic!("not a struct: {parsed:?}")
        };
        let PbValue::Map(m) = &*s.get_field_by_number(1).unwrap() else {
            panic!()
        };
        assert_eq!(m.len(), 5);
        assert_eq!(
            decode(&t, &parsed.encode_to_vec()).unwrap(),
            sample_sorted()
        );
    }

    #[test]
    fn go_values_render_as_encoding_json_would() {
        let t = translator();
        let cases = [
            (GobValue::Int(-3), iface("float64", GobValue::Float(-3.0))),
            (GobValue::Uint(7), iface("float64", GobValue::Float(7.0))),
            (
                GobValue::Bytes(b"hi!?".to_vec()),
                iface("string", GobValue::String("aGkhPw==".into())),
            ),
            (
                GobValue::NonUtf8String(b"caf\xe9".to_vec()),
                iface("string", GobValue::String("caf\u{fffd}".into())),
            ),
        ];
        for (go, json) in cases {
            let bytes = t.interface_to_value_bytes(&go, &Path::root("v")).unwrap();
            assert_eq!(decode(&t, &bytes).unwrap(), json, "{go:?}");
        }
        let err = t
            .interface_to_value_bytes(&GobValue::Encoded(vec![1]), &Path::root("v"))
            .unwrap_err();
        assert!(err.to_string().contains("cannot represent"), "{err}");
    }

    #[test]
    fn hints_keep_go_numbers_and_original_bytes() {
        let t = translator();
        let hint = iface(
            "[]interface {}",
            GobValue::Slice(vec![
                iface("int64", GobValue::Int(1 << 60)),
                iface("string", GobValue::NonUtf8String(b"caf\xe9".to_vec())),
            ]),
        );
        let bytes = t.interface_to_value_bytes(&hint, &Path::root("v")).unwrap();
        let back = t
            .value_bytes_to_interface(&bytes, &Path::root("v"), Some(&hint))
            .unwrap();
        assert_eq!(back, hint);
    }

    #[test]
    fn repeated_occurrences_merge_as_protobuf_says() {
        let t = translator();
        let one = |k: &str, v: GobValue| {
            t.interface_to_value_bytes(
                &iface(
                    "map[string]interface {}",
                    GobValue::Map(vec![(GobValue::String(k.into()), v)]),
                ),
                &Path::root("v"),
            )
            .unwrap()
        };
        // Two struct_values: their entries add up, the later one wins a shared key.
        let mut both = one("a", iface("bool", GobValue::Bool(true)));
        both.extend(one("b", iface("bool", GobValue::Bool(false))));
        both.extend(one("a", iface("string", GobValue::String("later".into()))));
        let want = iface(
            "map[string]interface {}",
            GobValue::Map(vec![
                (
                    GobValue::String("a".into()),
                    iface("string", GobValue::String("later".into())),
                ),
                (
                    GobValue::String("b".into()),
                    iface("bool", GobValue::Bool(false)),
                ),
            ]),
        );
        assert_eq!(decode(&t, &both).unwrap(), want);
        // Another member of the oneof after them replaces the struct.
        let mut replaced = both.clone();
        replaced.extend(
            t.interface_to_value_bytes(&GobValue::Bool(true), &Path::root("v"))
                .unwrap(),
        );
        assert_eq!(
            decode(&t, &replaced).unwrap(),
            iface("bool", GobValue::Bool(true))
        );
        // Unknown fields are skipped: field 9 (varint), field 10 (a group with a field inside).
        let mut unknown = both;
        unknown.extend([0x48, 0x01, 0x53, 0x08, 0x01, 0x54]);
        assert_eq!(decode(&t, &unknown).unwrap(), want);
    }

    #[test]
    fn malformed_values_are_errors_that_say_where() {
        let t = translator();
        let good = t
            .interface_to_value_bytes(&sample(), &Path::root("v"))
            .unwrap();
        for cut in 1..good.len() {
            // Cutting inside a nested message leaves a length past its end somewhere.
            if let Ok(v) = decode(&t, &good[..cut]) {
                assert_ne!(v, sample_sorted(), "cut at {cut} read as the whole value");
            }
        }
        let cases: [(&[u8], &str); 6] = [
            (&[0x1a, 0x02, 0xff, 0xfe], "not UTF-8"), // string_value
            (&[0x10, 0x01], "wrong wire type"),       // number_value as a varint
            (&[0x2a, 0x05], "past the end"),          // struct_value longer than the rest
            (&[0x0c], "not started"),                 // an end group alone
            (&[0x0f], "invalid wire type"),           // wire type 7
            (&[0x2a, 0x04, 0x0a, 0x02, 0x0a, 0x05], "past the end"), // a key cut short
        ];
        for (bytes, want) in cases {
            let err = t
                .value_bytes_to_interface(bytes, &Path::root("post").with("props"), None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want) && err.starts_with("post.props"),
                "{bytes:?}: {err}"
            );
        }
    }

    #[test]
    fn values_nested_ten_thousand_deep_translate_both_ways() {
        // Comparing and dropping 10,000 nested values recurses (derived PartialEq and Drop):
        // give them the stack the bridge's runtime thread has.
        let deep = std::thread::Builder::new()
            .stack_size(crate::run::STACK_SIZE)
            .spawn(|| {
                let t = translator();
                let mut v = iface("string", GobValue::String("bottom".into()));
                for _ in 0..10_000 {
                    v = iface("[]interface {}", GobValue::Slice(vec![v]));
                }
                let bytes = t.interface_to_value_bytes(&v, &Path::root("v")).unwrap();
                assert!(decode(&t, &bytes).unwrap() == v);
            });
        deep.unwrap().join().unwrap();
    }

    #[test]
    fn the_wire_pool_carries_values_as_bytes_and_keeps_presence() {
        let contract = contract_descriptors();
        let wire = wire_pool(crate::translate::DESCRIPTOR_SET);
        let mut retyped = 0;
        for msg in contract.all_messages() {
            if msg.package_name() == "google.protobuf" {
                continue;
            }
            let ours = wire.get_message_by_name(msg.full_name()).unwrap();
            for fd in msg.fields() {
                let w = ours.get_field(fd.number()).unwrap();
                assert_eq!(
                    (w.name(), w.is_list(), w.is_map()),
                    (fd.name(), fd.is_list(), fd.is_map())
                );
                let is_value = matches!(fd.kind(), prost_reflect::Kind::Message(m)
                    if RETYPED.contains(&format!(".{}", m.full_name()).as_str()));
                if is_value {
                    retyped += 1;
                    assert_eq!(w.kind(), prost_reflect::Kind::Bytes, "{}", fd.full_name());
                    // Map entries write both fields whatever they hold.
                    if !msg.is_map_entry() {
                        let presence = (w.supports_presence(), fd.supports_presence());
                        assert_eq!(presence.0, presence.1, "{}", fd.full_name());
                    }
                } else {
                    // Kinds of two pools compare by name.
                    let name = |k: prost_reflect::Kind| format!("{k:?}");
                    assert_eq!(name(w.kind()), name(fd.kind()), "{}", fd.full_name());
                }
            }
        }
        assert!(
            retyped > 20,
            "only {retyped} Value/Struct fields in the contract"
        );
        // An empty Struct set on a field is still sent, as a message field would be.
        let post = wire
            .get_message_by_name("mattermost.plugin.v1.Post")
            .unwrap();
        let props = post.get_field_by_name("props").unwrap();
        let mut m = DynamicMessage::new(post);
        m.set_field(&props, PbValue::Bytes(Vec::new().into()));
        assert_eq!(m.encode_to_vec(), [(props.number() << 3 | 2) as u8, 0]);
    }
}
