//! A parser for the Go type expressions of the schema (`*model.Post`, `map[string][]string`,
//! `model.PropertyOptions[*model.PluginPropertyOption]`, `interface {}` ...).

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoType {
    /// A predeclared basic type (`string`, `int64`, `uint8` ...).
    Basic(String),
    /// A named type: `pkg.Name` or `pkg.Name[args]` (the text as written), or `error`.
    Named(String),
    Pointer(Box<GoType>),
    Slice(Box<GoType>),
    Array(u64, Box<GoType>),
    Map(Box<GoType>, Box<GoType>),
    /// `interface {}` (empty) or an unnamed interface with methods (`empty == false`).
    Interface {
        empty: bool,
    },
    /// An unnamed struct; only `struct {}` is representable.
    Struct {
        empty: bool,
    },
}

const BASICS: &[&str] = &[
    "bool",
    "string",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "uintptr",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "unsafe.Pointer",
];

pub fn parse(src: &str) -> Result<GoType, Error> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
    };
    let t = p.ty().map_err(|msg| Error::GoType {
        ty: src.to_string(),
        msg,
    })?;
    if p.i != p.s.len() {
        return Err(Error::GoType {
            ty: src.to_string(),
            msg: format!("trailing text at byte {}", p.i),
        });
    }
    Ok(t)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &[u8] {
        &self.s[self.i..]
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn ty(&mut self) -> Result<GoType, String> {
        if self.eat("*") {
            return Ok(GoType::Pointer(Box::new(self.ty()?)));
        }
        if self.eat("[]") {
            return Ok(GoType::Slice(Box::new(self.ty()?)));
        }
        if self.eat("[") {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let n: u64 = std::str::from_utf8(&self.s[start..self.i])
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or("bad array length")?;
            if !self.eat("]") {
                return Err("expected ] after array length".into());
            }
            return Ok(GoType::Array(n, Box::new(self.ty()?)));
        }
        if self.eat("map[") {
            let k = self.ty()?;
            if !self.eat("]") {
                return Err("expected ] after map key".into());
            }
            let v = self.ty()?;
            return Ok(GoType::Map(Box::new(k), Box::new(v)));
        }
        if self.eat("interface {}") {
            return Ok(GoType::Interface { empty: true });
        }
        if self.eat("interface {") {
            self.skip_braces()?;
            return Ok(GoType::Interface { empty: false });
        }
        if self.eat("struct {}") {
            return Ok(GoType::Struct { empty: true });
        }
        if self.eat("struct {") {
            self.skip_braces()?;
            return Ok(GoType::Struct { empty: false });
        }
        if self.rest().starts_with(b"chan") || self.rest().starts_with(b"func") {
            return Err("chan and func types are not sent by gob".into());
        }
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
                self.i += 1;
            } else {
                break;
            }
        }
        if start == self.i {
            return Err(format!("unexpected text at byte {}", self.i));
        }
        // Type arguments of a generic instance: kept verbatim as part of the name.
        if self.rest().first() == Some(&b'[') {
            let mut depth = 0usize;
            while self.i < self.s.len() {
                match self.s[self.i] {
                    b'[' => depth += 1,
                    b']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                self.i += 1;
            }
            if depth != 0 {
                return Err("unbalanced type arguments".into());
            }
        }
        let name = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        if BASICS.contains(&name) {
            Ok(GoType::Basic(name.to_string()))
        } else {
            Ok(GoType::Named(name.to_string()))
        }
    }

    /// Skips to the `}` closing an unnamed interface or struct body (already past `{`).
    fn skip_braces(&mut self) -> Result<(), String> {
        let mut depth = 1usize;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err("unbalanced braces".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> GoType {
        GoType::Named(s.into())
    }

    #[test]
    fn parses_the_schema_shapes() {
        assert_eq!(
            parse("*model.Post").unwrap(),
            GoType::Pointer(Box::new(named("model.Post")))
        );
        assert_eq!(
            parse("map[string][]string").unwrap(),
            GoType::Map(
                Box::new(GoType::Basic("string".into())),
                Box::new(GoType::Slice(Box::new(GoType::Basic("string".into()))))
            )
        );
        assert_eq!(
            parse("[4]uint8").unwrap(),
            GoType::Array(4, Box::new(GoType::Basic("uint8".into())))
        );
        assert_eq!(
            parse("map[string]interface {}").unwrap(),
            GoType::Map(
                Box::new(GoType::Basic("string".into())),
                Box::new(GoType::Interface { empty: true })
            )
        );
        assert_eq!(
            parse("[]model.PropertyOptions[*model.PluginPropertyOption]").unwrap(),
            GoType::Slice(Box::new(named(
                "model.PropertyOptions[*model.PluginPropertyOption]"
            )))
        );
        assert_eq!(parse("error").unwrap(), named("error"));
        assert_eq!(parse("struct {}").unwrap(), GoType::Struct { empty: true });
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
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
