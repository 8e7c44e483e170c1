//! Arbitrary bytes as the dynamic values a user controls (a post's props, its message, the
//! User-Agent in every hook's plugin.Context), through everything the bridge does with them on
//! a hook's way to Python and back: gob value → protobuf message (translate, props written
//! as bytes by pbvalue), protobuf bytes, decoding, protobuf → gob with the original as the
//! hint. prost-reflect, with the contract's descriptors, checks the bytes are a valid message.
//!
//! The bytes are a small program building the value (see `Gen`): strings of any bytes (so
//! Go strings that are not UTF-8), every Go kind props carry after encoding/json, maps and
//! slices, and chains nested up to 12,000 levels (past the server's 10,000). Beyond "no panic,
//! hang or unbounded allocation": every value translates, encodes to bytes an independent
//! parser reads, decodes, and comes back as it went, as Go would see it (Go kinds, the bytes of non-UTF-8
//! strings; zero fields are no fields either way), except
//! where docs/internals.md §10 says it cannot: a non-UTF-8 map key comes back as the text
//! Python saw, and NaN is compared by its bits.
#![no_main]

use std::sync::OnceLock;

use gob::{Struct, Value};
use libfuzzer_sys::fuzz_target;
use mmplug_bridge::translate::{Translator, contract_descriptors, descriptors};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

/// Deepest chain an input may ask for: past the server's JSON limit of 10,000 levels.
const MAX_CHAIN: usize = 12_000;
/// The bridge's translator and descriptors, and the contract's as compiled (an independent
/// reading of the bytes, where props are messages, not bytes).
fn world() -> &'static (Translator, DescriptorPool, DescriptorPool) {
    static WORLD: OnceLock<(Translator, DescriptorPool, DescriptorPool)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let schema = mmplug_bridge::schema::embedded().expect("embedded schema");
        (
            Translator::new(schema).expect("translator"),
            descriptors(),
            contract_descriptors(),
        )
    })
}

/// Reads the input as a program.
struct Gen<'a> {
    data: &'a [u8],
    /// Whether a map key that is not UTF-8 was made (it comes back replaced, by design).
    lossy_key: bool,
}

impl Gen<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self
            .data
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.data = rest;
        b
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_le_bytes(b)
    }

    /// A Go string: any bytes, as a server passes them on.
    fn string(&mut self) -> Value {
        let n = usize::from(self.byte() % 24);
        let raw = self.bytes(n);
        match String::from_utf8(raw) {
            Ok(s) => Value::String(s),
            Err(e) => Value::NonUtf8String(e.into_bytes()),
        }
    }

    fn key(&mut self) -> Value {
        let k = self.string();
        if matches!(k, Value::NonUtf8String(_)) {
            self.lossy_key = true;
        }
        k
    }

    /// `n` map entries with distinct keys, as a Go map has them.
    fn entries(&mut self, n: u8, depth: usize) -> Vec<(Value, Value)> {
        let mut out: Vec<(Value, Value)> = Vec::new();
        for _ in 0..n {
            let (k, v) = (self.key(), self.any(depth));
            if !out.iter().any(|(seen, _)| *seen == k) {
                out.push((k, v));
            }
        }
        out
    }

    /// One `interface{}` value of props, as encoding/json and plugins make them.
    fn any(&mut self, depth: usize) -> Value {
        if self.data.is_empty() || depth >= MAX_CHAIN {
            return Value::Interface(None);
        }
        match self.byte() % 9 {
            0 => Value::Interface(None),
            1 => Value::interface("string", self.string()),
            2 => Value::interface("int64", Value::Int(self.u64() as i64)),
            3 => Value::interface("int", Value::Int(i64::from(self.byte() as i8))),
            4 => Value::interface("float64", Value::Float(f64::from_bits(self.u64()))),
            5 => Value::interface("bool", Value::Bool(self.byte() % 2 == 1)),
            6 => {
                let n = self.byte() % 5;
                let entries = self.entries(n, depth + 1);
                Value::interface("map[string]interface {}", Value::Map(entries))
            }
            7 => {
                let n = self.byte() % 5;
                let items = (0..n).map(|_| self.any(depth + 1)).collect();
                Value::interface("[]interface {}", Value::Slice(items))
            }
            _ => {
                // A chain: alternately lists and maps per the bits of one byte, `levels` deep.
                let levels = usize::from(u16::from_le_bytes([self.byte(), self.byte()]))
                    % (MAX_CHAIN - depth + 1);
                let pattern = self.byte();
                let mut v = self.any(depth + levels + 1);
                for i in 0..levels {
                    v = if pattern >> (i % 8) & 1 == 1 {
                        Value::interface("[]interface {}", Value::Slice(vec![v]))
                    } else {
                        Value::interface(
                            "map[string]interface {}",
                            Value::Map(vec![(Value::String("k".into()), v)]),
                        )
                    };
                }
                v
            }
        }
    }
}

/// `a == b`, with floats compared by their bits (NaN equal to itself) and map entries in any
/// order: unlike `gob_fuzz::same_value`, which holds a re-encoding to the wire order, a map
/// that went through protobuf comes back in the order of its hash map, as Go's maps have none.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Interface(Some(x)), Value::Interface(Some(y))) => {
            x.name == y.name && same(&x.value, &y.value)
        }
        (Value::Slice(x), Value::Slice(y)) | (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && same(v, v2)))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .all(|(n, v)| y.get(n).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    // protobuf's decoder and dropping deep values recurse per level: the bridge runs them on
    // a thread with a 512 MiB stack reservation (run::STACK_SIZE), and so does this target.
    let data = data.to_vec();
    let run = std::thread::Builder::new()
        .stack_size(mmplug_bridge::run::STACK_SIZE)
        .spawn(move || check(&data))
        .expect("a thread");
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
});

fn check(data: &[u8]) {
    let (t, pool, contract) = world();
    let m = t.schema().hook("MessageWillBePosted").expect("hook");
    const REQUEST: &str = "mattermost.plugin.v1.MessageWillBePostedHookRequest";
    let desc = pool.get_message_by_name(REQUEST).expect("request message");
    let contract_desc = contract
        .get_message_by_name(REQUEST)
        .expect("request message");
    let mut g = Gen {
        data,
        lossy_key: false,
    };
    let user_agent = g.string();
    let message = g.string();
    let n = g.byte() % 4;
    let props = g.entries(n, 0);
    let mut post = vec![("Message".to_string(), message)];
    if !props.is_empty() {
        post.push(("Props".to_string(), Value::Map(props)));
    }
    let args = Value::Struct(Struct::new(vec![
        (
            "A".to_string(),
            Value::Struct(Struct::new(vec![("UserAgent".to_string(), user_agent)])),
        ),
        ("B".to_string(), Value::Struct(Struct::new(post))),
    ]));

    let req = t
        .wire_to_message(m, false, &args, &desc)
        .unwrap_or_else(|e| panic!("a value the server can send did not translate: {e}"));
    let bytes = req.encode_to_vec();
    // prost-reflect reads the props as messages; only its limit of 100 levels may stop it.
    if let Err(e) = DynamicMessage::decode(contract_desc, bytes.as_slice()) {
        assert!(
            e.to_string().contains("recursion limit"),
            "the bytes are not a valid {}: {e}",
            desc.full_name()
        );
    }
    let decoded = DynamicMessage::decode(desc, bytes.as_slice())
        .unwrap_or_else(|e| panic!("our own bytes did not decode: {e}"));
    let back = t
        .message_to_wire(m, false, &decoded, Some(&args), &[])
        .unwrap_or_else(|e| panic!("the value did not translate back: {e}"));
    // Compared as Go sees them: a zero field travels as no field (gob's omission).
    if !g.lossy_key {
        let (got, want) = (gob_fuzz::go_view(&back), gob_fuzz::go_view(&args));
        assert!(
            same(&got, &want),
            "the value came back changed:\n{:.2000}\nwant\n{:.2000}",
            format!("{got:?}"),
            format!("{want:?}")
        );
    }
}
