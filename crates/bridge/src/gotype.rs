//! Go type expressions as the schema writes them (`*model.Post`, `[]string`,
//! `map[string]interface {}`, `[4]uint8`), parsed into a tree.

use std::fmt;

/// A parsed Go type expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GoType {
    /// A predeclared basic type: `bool`, `string`, `int64`, `uint8`, `float64`, ...
    Basic(Basic),
    /// A named type from a package, e.g. `model.Post`, `time.Time` (short package name).
    Named(String),
    /// `*T`
    Ptr(Box<GoType>),
    /// `[]T`
    Slice(Box<GoType>),
    /// `[N]T`
    Array(u64, Box<GoType>),
    /// `map[K]V`
    Map(Box<GoType>, Box<GoType>),
    /// `interface {}` / `any`
    Interface,
    /// The `error` interface.
    Error,
    /// `struct {}` (the only anonymous struct that appears on the wire).
    EmptyStruct,
}

/// Go's predeclared basic types, as far as gob can carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basic {
    Bool,
    String,
    Int,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Uintptr,
    Float32,
    Float64,
    Complex64,
    Complex128,
}

impl Basic {
    fn parse(s: &str) -> Option<Basic> {
        Some(match s {
            "bool" => Basic::Bool,
            "string" => Basic::String,
            "int" => Basic::Int,
            "int8" => Basic::Int8,
            "int16" => Basic::Int16,
            "int32" | "rune" => Basic::Int32,
            "int64" => Basic::Int64,
            "uint" => Basic::Uint,
            "uint8" | "byte" => Basic::Uint8,
            "uint16" => Basic::Uint16,
            "uint32" => Basic::Uint32,
            "uint64" => Basic::Uint64,
            "uintptr" => Basic::Uintptr,
            "float32" => Basic::Float32,
            "float64" => Basic::Float64,
            "complex64" => Basic::Complex64,
            "complex128" => Basic::Complex128,
            _ => return None,
        })
    }

    /// The Go spelling.
    pub fn name(self) -> &'static str {
        match self {
            Basic::Bool => "bool",
            Basic::String => "string",
            Basic::Int => "int",
            Basic::Int8 => "int8",
            Basic::Int16 => "int16",
            Basic::Int32 => "int32",
            Basic::Int64 => "int64",
            Basic::Uint => "uint",
            Basic::Uint8 => "uint8",
            Basic::Uint16 => "uint16",
            Basic::Uint32 => "uint32",
            Basic::Uint64 => "uint64",
            Basic::Uintptr => "uintptr",
            Basic::Float32 => "float32",
            Basic::Float64 => "float64",
            Basic::Complex64 => "complex64",
            Basic::Complex128 => "complex128",
        }
    }

    /// Signed integer kinds (gob wire type int).
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            Basic::Int | Basic::Int8 | Basic::Int16 | Basic::Int32 | Basic::Int64
        )
    }

    /// Unsigned integer kinds (gob wire type uint).
    pub fn is_unsigned(self) -> bool {
        matches!(
            self,
            Basic::Uint
                | Basic::Uint8
                | Basic::Uint16
                | Basic::Uint32
                | Basic::Uint64
                | Basic::Uintptr
        )
    }

    /// The inclusive range a signed kind can hold.
    pub fn signed_range(self) -> (i64, i64) {
        match self {
            Basic::Int8 => (i8::MIN.into(), i8::MAX.into()),
            Basic::Int16 => (i16::MIN.into(), i16::MAX.into()),
            Basic::Int32 => (i32::MIN.into(), i32::MAX.into()),
            _ => (i64::MIN, i64::MAX),
        }
    }

    /// The largest value an unsigned kind can hold.
    pub fn unsigned_max(self) -> u64 {
        match self {
            Basic::Uint8 => u8::MAX.into(),
            Basic::Uint16 => u16::MAX.into(),
            Basic::Uint32 => u32::MAX.into(),
            _ => u64::MAX,
        }
    }
}

/// A type expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad Go type expression {expr:?} at byte {at}: {message}")]
pub struct ParseError {
    pub expr: String,
    pub at: usize,
    pub message: String,
}

impl GoType {
    /// Parses a whole expression.
    pub fn parse(expr: &str) -> Result<GoType, ParseError> {
        let mut p = Parser { s: expr, pos: 0 };
        let t = p.ty()?;
        if p.pos != expr.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(t)
    }

    /// Strips pointers: gob flattens them.
    pub fn pointee(&self) -> &GoType {
        match self {
            GoType::Ptr(inner) => inner.pointee(),
            t => t,
        }
    }

    /// `[]byte` / `[]uint8`: gob's bytes type.
    pub fn is_byte_slice(&self) -> bool {
        matches!(self, GoType::Slice(e) if **e == GoType::Basic(Basic::Uint8))
    }
}

impl fmt::Display for GoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoType::Basic(b) => f.write_str(b.name()),
            GoType::Named(n) => f.write_str(n),
            GoType::Ptr(t) => write!(f, "*{t}"),
            GoType::Slice(t) => write!(f, "[]{t}"),
            GoType::Array(n, t) => write!(f, "[{n}]{t}"),
            GoType::Map(k, v) => write!(f, "map[{k}]{v}"),
            GoType::Interface => f.write_str("interface {}"),
            GoType::Error => f.write_str("error"),
            GoType::EmptyStruct => f.write_str("struct {}"),
        }
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> ParseError {
        ParseError {
            expr: self.s.to_string(),
            at: self.pos,
            message: message.to_string(),
        }
    }

    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    fn ty(&mut self) -> Result<GoType, ParseError> {
        if self.eat("*") {
            return Ok(GoType::Ptr(Box::new(self.ty()?)));
        }
        if self.eat("[]") {
            return Ok(GoType::Slice(Box::new(self.ty()?)));
        }
        if self.eat("[") {
            let end = self
                .rest()
                .find(']')
                .ok_or_else(|| self.err("unclosed array length"))?;
            let n: u64 = self.rest()[..end]
                .parse()
                .map_err(|_| self.err("array length is not a number"))?;
            self.pos += end + 1;
            return Ok(GoType::Array(n, Box::new(self.ty()?)));
        }
        if self.eat("map[") {
            let k = self.ty()?;
            if !self.eat("]") {
                return Err(self.err("expected ] after map key"));
            }
            let v = self.ty()?;
            return Ok(GoType::Map(Box::new(k), Box::new(v)));
        }
        if self.eat("interface {}") || self.eat("interface{}") {
            return Ok(GoType::Interface);
        }
        if self.eat("struct {}") || self.eat("struct{}") {
            return Ok(GoType::EmptyStruct);
        }
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '/' || c == '-'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.err("expected a type"));
        }
        let mut word = self.rest()[..len].to_string();
        self.pos += len;
        // Instantiated generics keep their type arguments in the name:
        // `model.PropertyOptions[*model.PluginPropertyOption]`.
        if word.contains('.') && self.rest().starts_with('[') {
            let mut depth = 0usize;
            let mut end = None;
            for (i, c) in self.rest().char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| self.err("unclosed type argument list"))?;
            word.push_str(&self.rest()[..end]);
            self.pos += end;
        }
        let word = word.as_str();
        Ok(match word {
            "any" => GoType::Interface,
            "error" => GoType::Error,
            w => match Basic::parse(w) {
                Some(b) => GoType::Basic(b),
                None if w.contains('.') => GoType::Named(w.to_string()),
                None => return Err(self.err(&format!("unknown type name {w:?}"))),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        for s in [
            "string",
            "*model.Post",
            "[]*model.Post",
            "map[string]interface {}",
            "map[string][]string",
            "[4]uint8",
            "error",
            "struct {}",
            "[][]string",
            "*url.URL",
            "map[string]*model.PostImage",
            "model.PropertyOptions[*model.PluginPropertyOption]",
        ] {
            assert_eq!(GoType::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(GoType::parse("any").unwrap(), GoType::Interface);
        assert!(GoType::parse("[]byte").unwrap().is_byte_slice());
    }

    #[test]
    fn rejects_garbage_with_position() {
        let e = GoType::parse("map[string").unwrap_err();
        assert!(e.message.contains("expected ]"), "{e}");
        let e = GoType::parse("frob").unwrap_err();
        assert!(e.message.contains("unknown type name"), "{e}");
        assert!(GoType::parse("string extra").is_err());
        assert!(GoType::parse("[x]int").is_err());
    }
}
