//! Go type expressions as the schema writes them (`*model.Post`, `[]string`,
//! `map[string]interface {}`, `[4]uint8`, `model.PropertyOptions[*model.PluginPropertyOption]`),
//! parsed into a tree and printed back in the same spelling.

use std::fmt;

/// A parsed Go type expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GoType {
    /// A predeclared basic type: `bool`, `string`, `int64`, `uint8`, `float64`, ...
    Basic(Basic),
    /// A named type from a package, e.g. `model.Post`, `time.Time` (short package name). A
    /// generic instance keeps its type arguments verbatim in the name:
    /// `model.PropertyOptions[*model.PluginPropertyOption]`.
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
    /// An unnamed interface with methods, `interface { String() string }`: the text between
    /// the braces, verbatim.
    UnnamedInterface(String),
    /// An unnamed struct with fields, `struct { X int }`: the text between the braces, verbatim.
    UnnamedStruct(String),
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
    /// The whole expression.
    pub expr: String,
    /// Byte offset where parsing stopped.
    pub at: usize,
    pub message: String,
}

impl GoType {
    /// Parses a whole expression.
    ///
    /// Accepted beyond the schema's own spelling: `any`, `byte`, `rune` (the extractor resolves
    /// these aliases) and `interface{}`/`struct{}` without the space. Rejected: unqualified
    /// names other than the basic types and `error`, `chan` and `func` types (gob never sends
    /// them), and anything left over after the expression.
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

/// The canonical spelling: what the schema writes, so `parse(s).to_string() == s`.
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
            GoType::UnnamedInterface(body) => write!(f, "interface {{{body}}}"),
            GoType::UnnamedStruct(body) => write!(f, "struct {{{body}}}"),
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
            let digits = &self.rest()[..end];
            let n: u64 = Some(digits)
                .filter(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| self.err("array length is not a number"))?;
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
        if self.eat("interface {") || self.eat("interface{") {
            let body = self.braced_body()?;
            return Ok(if body.trim().is_empty() {
                GoType::Interface
            } else {
                GoType::UnnamedInterface(body)
            });
        }
        if self.eat("struct {") || self.eat("struct{") {
            let body = self.braced_body()?;
            return Ok(if body.trim().is_empty() {
                GoType::EmptyStruct
            } else {
                GoType::UnnamedStruct(body)
            });
        }
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '/' || c == '-'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.err("expected a type"));
        }
        let mut word = self.rest()[..len].to_string();
        if word == "chan" || word == "func" {
            return Err(self.err("chan and func types are not sent by gob"));
        }
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

    /// The text up to the `}` closing an unnamed interface or struct body (already past
    /// `{`); consumes the `}`.
    fn braced_body(&mut self) -> Result<String, ParseError> {
        let mut depth = 1usize;
        for (i, c) in self.rest().char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let body = self.rest()[..i].to_string();
                        self.pos += i + 1;
                        return Ok(body);
                    }
                }
                _ => {}
            }
        }
        Err(self.err("unbalanced braces"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> GoType {
        GoType::Named(s.into())
    }

    fn parse(s: &str) -> Result<GoType, ParseError> {
        GoType::parse(s)
    }

    #[test]
    fn parses_the_schema_shapes() {
        assert_eq!(
            parse("*model.Post").unwrap(),
            GoType::Ptr(Box::new(named("model.Post")))
        );
        assert_eq!(
            parse("map[string][]string").unwrap(),
            GoType::Map(
                Box::new(GoType::Basic(Basic::String)),
                Box::new(GoType::Slice(Box::new(GoType::Basic(Basic::String))))
            )
        );
        assert_eq!(
            parse("[4]uint8").unwrap(),
            GoType::Array(4, Box::new(GoType::Basic(Basic::Uint8)))
        );
        assert_eq!(
            parse("map[string]interface {}").unwrap(),
            GoType::Map(
                Box::new(GoType::Basic(Basic::String)),
                Box::new(GoType::Interface)
            )
        );
        assert_eq!(
            parse("[]model.PropertyOptions[*model.PluginPropertyOption]").unwrap(),
            GoType::Slice(Box::new(named(
                "model.PropertyOptions[*model.PluginPropertyOption]"
            )))
        );
        assert_eq!(parse("error").unwrap(), GoType::Error);
        assert_eq!(parse("struct {}").unwrap(), GoType::EmptyStruct);
    }

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
            "interface { String() string }",
            "[]struct { X int; Y struct {} }",
        ] {
            assert_eq!(GoType::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(GoType::parse("any").unwrap(), GoType::Interface);
        assert_eq!(GoType::parse("interface{}").unwrap(), GoType::Interface);
        assert_eq!(GoType::parse("struct{}").unwrap(), GoType::EmptyStruct);
        assert!(GoType::parse("[]byte").unwrap().is_byte_slice());
    }

    #[test]
    fn unnamed_interfaces_and_structs_with_bodies() {
        assert_eq!(
            parse("interface { String() string }").unwrap(),
            GoType::UnnamedInterface(" String() string ".into())
        );
        assert_eq!(
            parse("map[string]struct { A struct { B int } }").unwrap(),
            GoType::Map(
                Box::new(GoType::Basic(Basic::String)),
                Box::new(GoType::UnnamedStruct(" A struct { B int } ".into()))
            )
        );
        assert!(parse("interface { M()").is_err());
    }

    #[test]
    fn rejects_malformed_expressions() {
        for bad in [
            "",
            "*",
            "map[string",
            "[x]int",
            "func()",
            "model.X[",
            "int)",
            "chan int",
            "[]",
            "[+4]uint8",
            "[4",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn rejects_garbage_with_position() {
        let e = GoType::parse("map[string").unwrap_err();
        assert!(e.message.contains("expected ]"), "{e}");
        let e = GoType::parse("frob").unwrap_err();
        assert!(e.message.contains("unknown type name"), "{e}");
        let e = GoType::parse("string extra").unwrap_err();
        assert_eq!(e.at, 6, "{e}");
        assert!(GoType::parse("[x]int").is_err());
        let e = GoType::parse("[]chan int").unwrap_err();
        assert!(e.message.contains("not sent by gob"), "{e}");
        assert_eq!(e.at, 2, "{e}");
    }

    #[test]
    fn pointee_strips_every_pointer() {
        let t = GoType::parse("**model.Post").unwrap();
        assert_eq!(t.pointee(), &named("model.Post"));
        assert!(!GoType::parse("[4]uint8").unwrap().is_byte_slice());
    }

    #[test]
    fn basic_kinds() {
        let b = |s: &str| match GoType::parse(s).unwrap() {
            GoType::Basic(b) => b,
            t => panic!("{s} parsed as {t:?}"),
        };
        assert_eq!(b("rune"), Basic::Int32);
        assert_eq!(b("byte").name(), "uint8");
        assert!(b("int8").is_signed() && !b("int8").is_unsigned());
        assert!(b("uintptr").is_unsigned() && !b("uintptr").is_signed());
        assert!(!b("float64").is_signed() && !b("float64").is_unsigned());
        assert_eq!(b("int16").signed_range(), (-32768, 32767));
        assert_eq!(b("int").signed_range(), (i64::MIN, i64::MAX));
        assert_eq!(b("uint32").unsigned_max(), u64::from(u32::MAX));
        assert_eq!(b("uint").unsigned_max(), u64::MAX);
    }
}
