//! The dynamic value a [`crate::Decoder`] produces and an [`crate::Encoder`] consumes.

/// A gob value, shaped by the wire rather than by a Go type.
///
/// Pointers do not appear: gob flattens them. A struct holds only the fields present on the
/// wire (Go omits zero fields), so "absent" means "Go zero value or nil pointer".
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go `bool`.
    Bool(bool),
    /// Any Go signed integer kind (wire type int).
    Int(i64),
    /// Any Go unsigned integer kind (wire type uint).
    Uint(u64),
    /// `float32` or `float64` (wire type float). NaN payloads and -0.0 are kept bit-exact.
    Float(f64),
    /// `complex64` or `complex128`: real part, imaginary part.
    Complex(f64, f64),
    /// Go `string` holding valid UTF-8 (every Go string the decoder reads that is UTF-8).
    String(String),
    /// Go `string` whose bytes are not valid UTF-8. Go strings may hold any bytes (a header
    /// value or a file name a client sent), so the decoder keeps them exactly as they came and
    /// the encoder writes them back unchanged; what a consumer shows in their place is its
    /// decision (the bridge's is in docs/internals.md).
    NonUtf8String(Vec<u8>),
    /// Go `[]byte` (wire type bytes).
    Bytes(Vec<u8>),
    /// Go array `[N]T` (every element is sent, zeros included).
    Array(Vec<Value>),
    /// Go slice `[]T`.
    Slice(Vec<Value>),
    /// Go map, entries in wire order (Go sends them in random order).
    Map(Vec<(Value, Value)>),
    /// Go struct: only the fields present on the wire / to send.
    Struct(Struct),
    /// An interface value; `None` is a nil interface.
    Interface(Option<Box<Interface>>),
    /// The payload of a `GobEncoder` or `BinaryMarshaler` (e.g. `time.Time`'s 15 bytes, or a
    /// `*url.URL`'s string bytes). See [`crate::time`].
    Encoded(Vec<u8>),
}

/// A struct value: `(field name, value)` pairs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct {
    /// Fields present on the wire (decode) or to send (encode), by Go field name.
    pub fields: Vec<(String, Value)>,
}

impl Struct {
    /// Builds a struct from `(name, value)` pairs.
    pub fn new(fields: Vec<(String, Value)>) -> Self {
        Struct { fields }
    }

    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A non-nil interface value: the `gob.Register` name of its concrete type and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// The registered name, e.g. `"*model.AppError"`, `"map[string]interface {}"`, `"int64"`.
    pub name: String,
    /// The concrete value.
    pub value: Value,
}

impl Value {
    /// Builds a non-nil interface value.
    pub fn interface(name: impl Into<String>, value: Value) -> Value {
        Value::Interface(Some(Box::new(Interface {
            name: name.into(),
            value,
        })))
    }

    /// Builds a struct value from `(name, value)` pairs.
    pub fn structure<S: Into<String>>(fields: impl IntoIterator<Item = (S, Value)>) -> Value {
        Value::Struct(Struct {
            fields: fields.into_iter().map(|(n, v)| (n.into(), v)).collect(),
        })
    }

    /// A short name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::String(_) | Value::NonUtf8String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Slice(_) => "slice",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
            Value::Interface(_) => "interface",
            Value::Encoded(_) => "encoded",
        }
    }
}
