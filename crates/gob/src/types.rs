//! Go type descriptions for encoding (the [`Types`] arena) and the wire type table a decoder
//! builds from the stream ([`WireType`]).

use std::collections::HashMap;

use crate::error::SchemaError;

/// A handle to a type in a [`Types`] arena. Only meaningful with the arena that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub(crate) u32);

/// The shape of a Go type as gob sees it (pointers flattened, all int kinds one kind, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `bool`
    Bool,
    /// every signed integer kind
    Int,
    /// every unsigned integer kind, including `uintptr`
    Uint,
    /// `float32`, `float64`
    Float,
    /// `complex64`, `complex128`
    Complex,
    /// `string`
    String,
    /// `[]byte`
    Bytes,
    /// any interface type (`interface {}`, `error`, ...)
    Interface,
    /// `[len]elem`
    Array {
        /// element count
        len: u64,
        /// element type
        elem: TypeId,
    },
    /// `[]elem` (elem not `uint8`)
    Slice {
        /// element type
        elem: TypeId,
    },
    /// `map[key]elem`
    Map {
        /// key type
        key: TypeId,
        /// element type
        elem: TypeId,
    },
    /// a struct: its sent fields (exported, not chan/func) in declaration order
    Struct {
        /// `(Go field name, type)`
        fields: Vec<(String, TypeId)>,
        /// false between [`Types::declare_struct`] and [`Types::define_struct`]
        defined: bool,
    },
    /// a type implementing `GobEncoder` (e.g. `time.Time`)
    GobEncoder,
    /// a type implementing `encoding.BinaryMarshaler` but not `GobEncoder` (e.g. `url.URL`)
    BinaryMarshaler,
}

#[derive(Debug, Clone)]
struct Def {
    name: String,
    kind: Kind,
}

/// The gob type id Go predefines for each builtin kind (Go `type.go`).
pub(crate) fn builtin_wire_id(kind: &Kind) -> Option<i64> {
    Some(match kind {
        Kind::Bool => 1,
        Kind::Int => 2,
        Kind::Uint => 3,
        Kind::Float => 4,
        Kind::Bytes => 5,
        Kind::String => 6,
        Kind::Complex => 7,
        Kind::Interface => 8,
        _ => return None,
    })
}

/// An arena of Go type descriptions used to drive encoding, plus the `gob.Register` name table.
///
/// Recursive types: [`Types::declare_struct`] returns a handle usable in other types at once;
/// [`Types::define_struct`] fills in the fields later.
#[derive(Debug, Clone)]
pub struct Types {
    defs: Vec<Def>,
    interned: HashMap<Kind, TypeId>,
    registered: HashMap<String, TypeId>,
}

const BOOL: TypeId = TypeId(0);
const INT: TypeId = TypeId(1);
const UINT: TypeId = TypeId(2);
const FLOAT: TypeId = TypeId(3);
const COMPLEX: TypeId = TypeId(4);
const STRING: TypeId = TypeId(5);
const BYTES: TypeId = TypeId(6);
const INTERFACE: TypeId = TypeId(7);

impl Default for Types {
    fn default() -> Self {
        Self::new()
    }
}

impl Types {
    /// An arena holding the builtin types, with the names Go's `registerBasics` registers, plus
    /// `"[]interface {}"` and `"map[string]interface {}"` (not Go builtins, but every
    /// Mattermost peer registers them in `plugin/client_rpc.go`).
    pub fn new() -> Self {
        let mut t = Types {
            defs: Vec::new(),
            interned: HashMap::new(),
            registered: HashMap::new(),
        };
        for kind in [
            Kind::Bool,
            Kind::Int,
            Kind::Uint,
            Kind::Float,
            Kind::Complex,
            Kind::String,
            Kind::Bytes,
            Kind::Interface,
        ] {
            let id = TypeId(t.defs.len() as u32);
            t.defs.push(Def {
                name: String::new(),
                kind: kind.clone(),
            });
            t.interned.insert(kind, id);
        }
        for n in ["int", "int8", "int16", "int32", "int64"] {
            t.register(n, INT);
        }
        for n in ["uint", "uint8", "uint16", "uint32", "uint64", "uintptr"] {
            t.register(n, UINT);
        }
        t.register("float32", FLOAT);
        t.register("float64", FLOAT);
        t.register("complex64", COMPLEX);
        t.register("complex128", COMPLEX);
        t.register("bool", BOOL);
        t.register("string", STRING);
        // Register([]byte(nil)) and Register([]uint8(nil)) are one Go type, named "[]uint8".
        t.register("[]uint8", BYTES);
        let slices = [
            ("[]int", INT),
            ("[]int8", INT),
            ("[]int16", INT),
            ("[]int32", INT),
            ("[]int64", INT),
            ("[]uint", UINT),
            ("[]uint16", UINT),
            ("[]uint32", UINT),
            ("[]uint64", UINT),
            ("[]uintptr", UINT),
            ("[]float32", FLOAT),
            ("[]float64", FLOAT),
            ("[]complex64", COMPLEX),
            ("[]complex128", COMPLEX),
            ("[]bool", BOOL),
            ("[]string", STRING),
            ("[]interface {}", INTERFACE),
        ];
        for (name, elem) in slices {
            let s = t.slice(elem);
            t.register(name, s);
        }
        let m = t.map(STRING, INTERFACE);
        t.register("map[string]interface {}", m);
        t
    }

    /// `bool`
    pub fn bool(&self) -> TypeId {
        BOOL
    }
    /// any signed integer type
    pub fn int(&self) -> TypeId {
        INT
    }
    /// any unsigned integer type
    pub fn uint(&self) -> TypeId {
        UINT
    }
    /// `float32` / `float64`
    pub fn float(&self) -> TypeId {
        FLOAT
    }
    /// `complex64` / `complex128`
    pub fn complex(&self) -> TypeId {
        COMPLEX
    }
    /// `string`
    pub fn string(&self) -> TypeId {
        STRING
    }
    /// `[]byte`
    pub fn bytes(&self) -> TypeId {
        BYTES
    }
    /// any interface type
    pub fn interface(&self) -> TypeId {
        INTERFACE
    }

    fn push(&mut self, name: &str, kind: Kind) -> TypeId {
        let id = TypeId(self.defs.len() as u32);
        self.defs.push(Def {
            name: name.to_owned(),
            kind,
        });
        id
    }

    /// Anonymous composite types are interned, as Go has one `reflect.Type` per `[]T`.
    fn intern(&mut self, kind: Kind) -> TypeId {
        if let Some(&id) = self.interned.get(&kind) {
            return id;
        }
        let id = self.push("", kind.clone());
        self.interned.insert(kind, id);
        id
    }

    /// The anonymous slice type `[]elem`. `slice(uint())` is `[]uint`, not `[]byte`: use
    /// [`Types::bytes`] for byte slices.
    pub fn slice(&mut self, elem: TypeId) -> TypeId {
        self.intern(Kind::Slice { elem })
    }

    /// The anonymous array type `[len]elem` (`[4]uint8` is `array(4, uint())`).
    pub fn array(&mut self, len: u64, elem: TypeId) -> TypeId {
        self.intern(Kind::Array { len, elem })
    }

    /// The anonymous map type `map[key]elem`.
    pub fn map(&mut self, key: TypeId, elem: TypeId) -> TypeId {
        self.intern(Kind::Map { key, elem })
    }

    /// A new named type with the shape of `like` (a slice, array or map type), e.g.
    /// `model.StringArray` is `named("StringArray", slice(string()))`. Go gives each named type
    /// its own id; builtin kinds need no such type (a named string is just `string()`).
    pub fn named(&mut self, name: &str, like: TypeId) -> Result<TypeId, SchemaError> {
        let kind = self.kind_checked(like)?.clone();
        match kind {
            Kind::Array { .. } | Kind::Slice { .. } | Kind::Map { .. } => Ok(self.push(name, kind)),
            other => Err(SchemaError(format!(
                "named() takes an array, slice or map type, not {other:?}"
            ))),
        }
    }

    /// A struct type with all its fields.
    pub fn struct_type(
        &mut self,
        name: &str,
        fields: Vec<(String, TypeId)>,
    ) -> Result<TypeId, SchemaError> {
        let id = self.declare_struct(name);
        self.define_struct(id, fields)?;
        Ok(id)
    }

    /// Declares a struct type whose fields come later ([`Types::define_struct`]), so types can
    /// refer to it (or to themselves) first.
    pub fn declare_struct(&mut self, name: &str) -> TypeId {
        self.push(
            name,
            Kind::Struct {
                fields: Vec::new(),
                defined: false,
            },
        )
    }

    /// Fills in the fields of a declared struct. Field names must be unique.
    pub fn define_struct(
        &mut self,
        id: TypeId,
        fields: Vec<(String, TypeId)>,
    ) -> Result<(), SchemaError> {
        for (i, (name, ty)) in fields.iter().enumerate() {
            self.kind_checked(*ty)?;
            if name.is_empty() {
                return Err(SchemaError("a struct field name is empty".into()));
            }
            if fields[..i].iter().any(|(n, _)| n == name) {
                return Err(SchemaError(format!("struct field {name:?} appears twice")));
            }
        }
        let def = self
            .defs
            .get_mut(id.0 as usize)
            .ok_or_else(|| SchemaError(format!("unknown type handle {}", id.0)))?;
        match &mut def.kind {
            Kind::Struct { defined: true, .. } => Err(SchemaError(format!(
                "struct {:?} is already defined",
                def.name
            ))),
            Kind::Struct {
                fields: f,
                defined: d,
            } => {
                *f = fields;
                *d = true;
                Ok(())
            }
            _ => Err(SchemaError(format!("type {:?} is not a struct", def.name))),
        }
    }

    /// A type implementing `GobEncoder`; `name` is the Go type name (`"Time"` for `time.Time`).
    pub fn gob_encoder(&mut self, name: &str) -> TypeId {
        self.push(name, Kind::GobEncoder)
    }

    /// A type implementing `BinaryMarshaler` only; `name` is the Go type name (`"URL"`).
    pub fn binary_marshaler(&mut self, name: &str) -> TypeId {
        self.push(name, Kind::BinaryMarshaler)
    }

    /// Sets the name sent in the type definition (Go's `CommonType.Name`). Decoders ignore it;
    /// it only matters for byte-identical output (see the crate docs).
    pub fn set_name(&mut self, ty: TypeId, name: &str) -> Result<(), SchemaError> {
        if builtin_wire_id(self.kind_checked(ty)?).is_some() {
            return Err(SchemaError("builtin types have no name on the wire".into()));
        }
        self.defs[ty.0 as usize].name = name.to_owned();
        Ok(())
    }

    /// Maps a `gob.Register` name (what travels in interface values) to a type. Registering a
    /// name again replaces the earlier type.
    pub fn register(&mut self, name: &str, ty: TypeId) {
        self.registered.insert(name.to_owned(), ty);
    }

    /// The type registered under `name`.
    pub fn registered(&self, name: &str) -> Option<TypeId> {
        self.registered.get(name).copied()
    }

    /// The kind of `ty`, or `None` for a handle from another arena.
    pub fn kind(&self, ty: TypeId) -> Option<&Kind> {
        self.defs.get(ty.0 as usize).map(|d| &d.kind)
    }

    /// The wire name of `ty` (`""` for anonymous and builtin types).
    pub fn name(&self, ty: TypeId) -> Option<&str> {
        self.defs.get(ty.0 as usize).map(|d| d.name.as_str())
    }

    pub(crate) fn kind_checked(&self, ty: TypeId) -> Result<&Kind, SchemaError> {
        self.kind(ty)
            .ok_or_else(|| SchemaError(format!("type handle {} is not from this Types", ty.0)))
    }
}

/// A type as defined on the wire (Go's `wireType`), or one of the builtin ids 1–8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireType {
    /// `CommonType.Name`: informational only (`"Point"`, `"Time"`, often `""`).
    pub name: String,
    /// The shape, referring to other types by wire id.
    pub kind: WireKind,
}

/// The shape of a [`WireType`]; ids are the stream's type ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireKind {
    /// id 1
    Bool,
    /// id 2
    Int,
    /// id 3
    Uint,
    /// id 4
    Float,
    /// id 5 (`[]byte`)
    Bytes,
    /// id 6
    String,
    /// id 7
    Complex,
    /// id 8
    Interface,
    /// `ArrayT`
    Array {
        /// element type id
        elem: i64,
        /// length
        len: i64,
    },
    /// `SliceT`
    Slice {
        /// element type id
        elem: i64,
    },
    /// `StructT`: `(field name, type id)` in wire field order
    Struct {
        /// the fields
        fields: Vec<(String, i64)>,
    },
    /// `MapT`
    Map {
        /// key type id
        key: i64,
        /// element type id
        elem: i64,
    },
    /// `GobEncoderT`
    GobEncoder,
    /// `BinaryMarshalerT`
    BinaryMarshaler,
    /// `TextMarshalerT` (Go never sends it; accepted for completeness)
    TextMarshaler,
}

/// The builtin wire types, by id.
pub(crate) fn builtin_wire_type(id: i64) -> Option<WireType> {
    let kind = match id {
        1 => WireKind::Bool,
        2 => WireKind::Int,
        3 => WireKind::Uint,
        4 => WireKind::Float,
        5 => WireKind::Bytes,
        6 => WireKind::String,
        7 => WireKind::Complex,
        8 => WireKind::Interface,
        _ => return None,
    };
    Some(WireType {
        name: String::new(),
        kind,
    })
}

/// Go reserves ids below this for its own types; a stream may not define them.
pub const FIRST_USER_ID: i64 = 64;
