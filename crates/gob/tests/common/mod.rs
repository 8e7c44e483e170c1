//! Shared test support: runs the Go golden program and reads its JSON description of each case
//! into a `Types` arena and `Value`s (form documented in conformance/gobgolden/main.go).

#![allow(dead_code)]

pub mod heap_cap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gob::{TypeId, Types, Value};
use serde_json::Value as J;

/// The repository root (the Go module lives there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `go run ./conformance/gobgolden ARGS` from the repository root.
pub fn go_gobgolden(args: &[&str]) -> std::process::Output {
    Command::new("go")
        .arg("run")
        .arg("./conformance/gobgolden")
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("Go is the judge of this crate: `go` must be on PATH")
}

/// One golden case written by Go.
pub struct Case {
    pub name: String,
    pub stream: Vec<u8>,
    pub doc: J,
}

impl Case {
    /// The case's value messages cut short, with Go's verdict on each (the "cuts" of the
    /// case's JSON, conformance/gobgolden type `cut`).
    pub fn cuts(&self) -> Vec<Cut> {
        let field = |c: &J, name: &str| c[name].as_u64().expect(name) as usize;
        self.doc["cuts"]
            .as_array()
            .expect("cuts array")
            .iter()
            .map(|c| Cut {
                at: field(c, "at"),
                keep: field(c, "keep"),
                values_before: field(c, "values_before"),
                go_accepted: c["go_accepted"].as_bool().expect("go_accepted"),
                go_error: c["go_error"].as_str().expect("go_error").to_owned(),
            })
            .collect()
    }
}

/// A golden stream up to one of its value messages, that message cut to its first `keep`
/// payload bytes with its length prefix rewritten to match, and what Go's decoder made of it.
pub struct Cut {
    /// Stream offset of the message's length prefix.
    pub at: usize,
    pub keep: usize,
    /// Values complete before the message.
    pub values_before: usize,
    /// Go returned a (partial) value out of the cut message.
    pub go_accepted: bool,
    /// The error Go's decoder stopped at, "" if none.
    pub go_error: String,
}

impl Cut {
    /// The cut stream, built from the golden `stream`.
    pub fn apply(&self, stream: &[u8]) -> Vec<u8> {
        let gob::wire::UintRead::Ok(len, prefix) = gob::wire::read_uint(&stream[self.at..]) else {
            panic!("no message length at byte {}", self.at);
        };
        let payload = &stream[self.at + prefix..][..len as usize];
        let mut out = stream[..self.at].to_vec();
        gob::wire::put_message(&mut out, &payload[..self.keep]);
        out
    }

    /// Go's verdict, for failure messages.
    pub fn go_verdict(&self) -> String {
        if self.go_accepted {
            "Go returns a partial value".to_owned()
        } else {
            format!("Go refuses it: {}", self.go_error)
        }
    }
}

/// Go's goldens, generated once per test binary into a temporary directory.
pub fn goldens() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_str().expect("utf-8 temp path");
        let out = go_gobgolden(&["write", path]);
        assert!(
            out.status.success(),
            "gobgolden write failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cases = Vec::new();
        for entry in std::fs::read_dir(dir.path()).expect("read goldens") {
            let p = entry.expect("dir entry").path();
            if p.extension().and_then(|e| e.to_str()) != Some("gob") {
                continue;
            }
            let name = p.file_stem().unwrap().to_str().unwrap().to_owned();
            let stream = std::fs::read(&p).expect("read .gob");
            let doc: J = serde_json::from_slice(
                &std::fs::read(p.with_extension("json")).expect("read .json"),
            )
            .expect("parse .json");
            cases.push(Case { name, stream, doc });
        }
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(cases.len() >= 30, "too few golden cases: {}", cases.len());
        cases
    })
}

/// A `Types` arena built from a case's type descriptions, and the handle for each key.
pub struct Schema {
    pub types: Types,
    pub by_key: HashMap<String, TypeId>,
}

impl Schema {
    pub fn from_doc(doc: &J) -> Schema {
        let mut s = Schema {
            types: Types::new(),
            by_key: HashMap::new(),
        };
        let defs = doc["types"].as_object().expect("types object");
        for (key, def) in defs {
            if def["kind"] == "struct" {
                let id = s.types.declare_struct(def["name"].as_str().unwrap());
                s.by_key.insert(key.clone(), id);
            }
        }
        for key in defs.keys() {
            s.resolve(doc, key);
        }
        for (key, def) in defs {
            if def["kind"] == "struct" {
                let fields = def["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        let ty = s.resolve(doc, f[1].as_str().unwrap());
                        (f[0].as_str().unwrap().to_owned(), ty)
                    })
                    .collect();
                s.types.define_struct(s.by_key[key], fields).unwrap();
            }
        }
        for (name, key) in doc["registered"].as_object().unwrap() {
            let ty = s.resolve(doc, key.as_str().unwrap());
            s.types.register(name, ty);
        }
        s
    }

    pub fn resolve(&mut self, doc: &J, key: &str) -> TypeId {
        let t = &self.types;
        match key {
            "bool" => return t.bool(),
            "int" => return t.int(),
            "uint" => return t.uint(),
            "float" => return t.float(),
            "complex" => return t.complex(),
            "string" => return t.string(),
            "bytes" => return t.bytes(),
            "interface" => return t.interface(),
            _ => {}
        }
        if let Some(&id) = self.by_key.get(key) {
            return id;
        }
        let def = &doc["types"][key];
        let name = def["name"].as_str().unwrap_or("");
        let anon = match def["kind"].as_str().unwrap() {
            "slice" => {
                let e = self.resolve(doc, def["elem"].as_str().unwrap());
                self.types.slice(e)
            }
            "array" => {
                let e = self.resolve(doc, def["elem"].as_str().unwrap());
                self.types.array(def["len"].as_u64().unwrap(), e)
            }
            "map" => {
                let k = self.resolve(doc, def["key"].as_str().unwrap());
                let e = self.resolve(doc, def["elem"].as_str().unwrap());
                self.types.map(k, e)
            }
            "gob" => self.types.gob_encoder(name),
            "binary" => self.types.binary_marshaler(name),
            other => panic!("unknown kind {other}"),
        };
        let id = match def["kind"].as_str().unwrap() {
            "slice" | "array" | "map" if !name.is_empty() => self.types.named(name, anon).unwrap(),
            _ => anon,
        };
        self.by_key.insert(key.to_owned(), id);
        id
    }

    /// `(type, value)` of each top-level value of the case.
    pub fn values(&mut self, doc: &J) -> Vec<(TypeId, Value)> {
        doc["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let ty = self.resolve(doc, v["type"].as_str().unwrap());
                (ty, json_value(&v["value"]))
            })
            .collect()
    }
}

fn float(j: &J) -> f64 {
    f64::from_bits(u64::from_str_radix(j.as_str().unwrap(), 16).unwrap())
}

fn hex(j: &J) -> Vec<u8> {
    let s = j.as_str().unwrap();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The JSON value form → `Value`.
pub fn json_value(j: &J) -> Value {
    let (k, v) = j.as_object().unwrap().iter().next().unwrap();
    let list = |v: &J| v.as_array().unwrap().iter().map(json_value).collect();
    match k.as_str() {
        "bool" => Value::Bool(v.as_bool().unwrap()),
        "int" => Value::Int(v.as_str().unwrap().parse().unwrap()),
        "uint" => Value::Uint(v.as_str().unwrap().parse().unwrap()),
        "float" => Value::Float(float(v)),
        "complex" => Value::Complex(float(&v[0]), float(&v[1])),
        "string" => Value::String(v.as_str().unwrap().to_owned()),
        "string_hex" => Value::NonUtf8String(hex(v)),
        "bytes" => Value::Bytes(hex(v)),
        "encoded" => Value::Encoded(hex(v)),
        "array" => Value::Array(list(v)),
        "slice" => Value::Slice(list(v)),
        "map" => Value::Map(
            v.as_array()
                .unwrap()
                .iter()
                .map(|e| (json_value(&e[0]), json_value(&e[1])))
                .collect(),
        ),
        "struct" => Value::structure(
            v.as_array()
                .unwrap()
                .iter()
                .map(|f| (f[0].as_str().unwrap().to_owned(), json_value(&f[1]))),
        ),
        "interface" => {
            if v.is_null() {
                Value::Interface(None)
            } else {
                Value::interface(v["name"].as_str().unwrap(), json_value(&v["value"]))
            }
        }
        other => panic!("unknown value kind {other}"),
    }
}

/// A canonical text form: floats by bits (so NaN and -0.0 compare exactly), maps sorted.
pub fn canon(v: &Value) -> String {
    match v {
        Value::Float(f) => format!("F{:016x}", f.to_bits()),
        Value::Complex(a, b) => format!("C{:016x},{:016x}", a.to_bits(), b.to_bits()),
        Value::Array(items) => format!(
            "A[{}]",
            items.iter().map(canon).collect::<Vec<_>>().join(",")
        ),
        Value::Slice(items) => format!(
            "S[{}]",
            items.iter().map(canon).collect::<Vec<_>>().join(",")
        ),
        Value::Map(entries) => {
            let mut e: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", canon(k), canon(v)))
                .collect();
            e.sort();
            format!("M{{{}}}", e.join(","))
        }
        Value::Struct(s) => format!(
            "T{{{}}}",
            s.fields
                .iter()
                .map(|(n, v)| format!("{n}={}", canon(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Interface(None) => "I(nil)".into(),
        Value::Interface(Some(i)) => format!("I({}:{})", i.name, canon(&i.value)),
        other => format!("{other:?}"),
    }
}

/// Decodes a whole stream, failing on error or leftover bytes.
pub fn decode_all(stream: &[u8]) -> Result<Vec<Value>, gob::DecodeError> {
    let mut d = gob::Decoder::new(gob::Limits::default());
    d.feed(stream);
    let mut out = Vec::new();
    while let Some(v) = d.next_value()? {
        out.push(v);
    }
    assert_eq!(d.buffered(), 0, "bytes left after the last value");
    Ok(out)
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
