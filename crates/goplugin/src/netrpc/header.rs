//! net/rpc's `Request`/`Response` headers as gob values, and the gob types the transport
//! needs in the caller's [`Types`] arena.
//!
//! Facts (Go `src/net/rpc/server.go`): `Request{ServiceMethod string; Seq uint64}`,
//! `Response{ServiceMethod string; Seq uint64; Error string}`; each message is a header
//! value followed by a body value on the same gob stream; an error response carries the
//! body `struct{}{}`. Go omits zero fields, so we do too (byte-identical headers).

use gob::{Struct, TypeId, Types, Value};

/// The gob types the transport encodes with, added to the caller's arena so the caller's
/// reply types and ours share one [`Types`] (an encoder works against a single arena).
#[derive(Debug, Clone)]
pub struct RpcTypes {
    types: Types,
    request: TypeId,
    response: TypeId,
    empty: TypeId,
}

impl RpcTypes {
    /// Adds `Request`, `Response` and `struct {}` to `types`.
    pub fn new(mut types: Types) -> Result<RpcTypes, gob::SchemaError> {
        let request = types.struct_type(
            "Request",
            vec![
                ("ServiceMethod".into(), types.string()),
                ("Seq".into(), types.uint()),
            ],
        )?;
        let response = types.struct_type(
            "Response",
            vec![
                ("ServiceMethod".into(), types.string()),
                ("Seq".into(), types.uint()),
                ("Error".into(), types.string()),
            ],
        )?;
        // Go names the anonymous empty struct "" on the wire.
        let empty = types.struct_type("", Vec::new())?;
        Ok(RpcTypes {
            types,
            request,
            response,
            empty,
        })
    }

    /// The arena (the caller's types plus ours).
    pub fn types(&self) -> &Types {
        &self.types
    }

    /// `struct {}`: the reply of `Control.Ping`/`Quit` and the body of error responses.
    pub fn empty_struct(&self) -> TypeId {
        self.empty
    }

    pub(crate) fn request(&self) -> TypeId {
        self.request
    }

    pub(crate) fn response(&self) -> TypeId {
        self.response
    }
}

/// A net/rpc request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `Service.Method`.
    pub service_method: String,
    /// Matches the response to the call.
    pub seq: u64,
}

/// A net/rpc response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Echo of the request's `Service.Method`.
    pub service_method: String,
    /// The request's `Seq`.
    pub seq: u64,
    /// Empty on success; otherwise the error text (and the body is `struct {}`).
    pub error: String,
}

fn push_nonzero(fields: &mut Vec<(String, Value)>, name: &str, v: Value) {
    let zero = match &v {
        Value::String(s) => s.is_empty(),
        Value::Uint(u) => *u == 0,
        _ => false,
    };
    if !zero {
        fields.push((name.into(), v));
    }
}

impl Request {
    /// As a gob struct value, zero fields omitted like Go.
    pub fn to_value(&self) -> Value {
        let mut f = Vec::new();
        push_nonzero(
            &mut f,
            "ServiceMethod",
            Value::String(self.service_method.clone()),
        );
        push_nonzero(&mut f, "Seq", Value::Uint(self.seq));
        Value::Struct(Struct::new(f))
    }

    /// From a decoded gob value; absent fields are Go zero values.
    pub fn from_value(v: &Value) -> Result<Request, String> {
        let s = as_struct(v, "request")?;
        Ok(Request {
            service_method: string_field(s, "ServiceMethod")?,
            seq: uint_field(s, "Seq")?,
        })
    }
}

impl Response {
    /// As a gob struct value, zero fields omitted like Go.
    pub fn to_value(&self) -> Value {
        let mut f = Vec::new();
        push_nonzero(
            &mut f,
            "ServiceMethod",
            Value::String(self.service_method.clone()),
        );
        push_nonzero(&mut f, "Seq", Value::Uint(self.seq));
        push_nonzero(&mut f, "Error", Value::String(self.error.clone()));
        Value::Struct(Struct::new(f))
    }

    /// From a decoded gob value; absent fields are Go zero values.
    pub fn from_value(v: &Value) -> Result<Response, String> {
        let s = as_struct(v, "response")?;
        Ok(Response {
            service_method: string_field(s, "ServiceMethod")?,
            seq: uint_field(s, "Seq")?,
            error: string_field(s, "Error")?,
        })
    }
}

fn as_struct<'a>(v: &'a Value, what: &str) -> Result<&'a Struct, String> {
    match v {
        Value::Struct(s) => Ok(s),
        other => Err(format!(
            "rpc: {what} header is a {}, want a struct",
            other.kind_name()
        )),
    }
}

fn string_field(s: &Struct, name: &str) -> Result<String, String> {
    match s.get(name) {
        None => Ok(String::new()),
        Some(Value::String(v)) => Ok(v.clone()),
        Some(other) => Err(format!(
            "rpc: header field {name} is a {}, want string",
            other.kind_name()
        )),
    }
}

fn uint_field(s: &Struct, name: &str) -> Result<u64, String> {
    match s.get(name) {
        None => Ok(0),
        Some(Value::Uint(v)) => Ok(*v),
        Some(other) => Err(format!(
            "rpc: header field {name} is a {}, want uint",
            other.kind_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // From `go run ./conformance/goplugin-host -golden` (Go's own net/rpc types and gob).
    const GO_REQUEST_STREAM: &str = "2e7f030101075265717565737401ff80000102010d536572766963654d6574686f64010c000103536571010600000010ff80010b506c7567696e2e4563686f0013ff80010c436f6e74726f6c2e50696e67010100";
    const GO_RESPONSE_STREAM: &str = "3aff8103010108526573706f6e736501ff82000103010d536572766963654d6574686f64010c00010353657101060001054572726f72010c00000018ff82010b506c7567696e2e4661696c01020104626f6f6d000aff83030102ff8400000003ff84001bff82011244697370656e7365722e44697370656e736501fe012c0003060001";

    fn decode_all(bytes: &[u8]) -> Vec<Value> {
        let mut d = gob::Decoder::new(gob::Limits::default());
        d.feed(bytes);
        let mut out = Vec::new();
        while let Some(v) = d.next_value().unwrap() {
            out.push(v);
        }
        out
    }

    #[test]
    fn decodes_go_request_headers() {
        let v = decode_all(&unhex(GO_REQUEST_STREAM));
        assert_eq!(v.len(), 2);
        assert_eq!(
            Request::from_value(&v[0]).unwrap(),
            Request {
                service_method: "Plugin.Echo".into(),
                seq: 0
            }
        );
        assert_eq!(
            Request::from_value(&v[1]).unwrap(),
            Request {
                service_method: "Control.Ping".into(),
                seq: 1
            }
        );
    }

    #[test]
    fn decodes_go_response_headers_and_bodies() {
        let v = decode_all(&unhex(GO_RESPONSE_STREAM));
        assert_eq!(v.len(), 4);
        assert_eq!(
            Response::from_value(&v[0]).unwrap(),
            Response {
                service_method: "Plugin.Fail".into(),
                seq: 2,
                error: "boom".into()
            }
        );
        assert_eq!(
            v[1],
            Value::Struct(Struct::default()),
            "error body is struct{{}}{{}}"
        );
        assert_eq!(
            Response::from_value(&v[2]).unwrap(),
            Response {
                service_method: "Dispenser.Dispense".into(),
                seq: 300,
                error: String::new()
            }
        );
        assert_eq!(v[3], Value::Uint(1));
    }

    #[test]
    fn encodes_request_headers_byte_identical_to_go() {
        let t = RpcTypes::new(Types::new()).unwrap();
        let mut enc = gob::Encoder::new();
        let mut out = Vec::new();
        for r in [
            Request {
                service_method: "Plugin.Echo".into(),
                seq: 0,
            },
            Request {
                service_method: "Control.Ping".into(),
                seq: 1,
            },
        ] {
            enc.encode(t.types(), t.request(), &r.to_value(), &mut out)
                .unwrap();
        }
        assert_eq!(out, unhex(GO_REQUEST_STREAM));
    }

    #[test]
    fn bad_header_shapes_are_errors() {
        assert!(
            Request::from_value(&Value::Bool(true))
                .unwrap_err()
                .contains("want a struct")
        );
        let bad = Value::structure([("Seq", Value::Int(1))]);
        assert!(Request::from_value(&bad).unwrap_err().contains("want uint"));
    }
}
