//! The decoder: a per-stream object fed raw bytes, producing one top-level [`Value`] at a time.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::types::{FIRST_USER_ID, WireKind, WireType, builtin_wire_type};
use crate::value::{Interface, Struct, Value};
use crate::wire::{UintRead, read_uint, uint_to_float, uint_to_int};

/// Resource limits for a [`Decoder`]. Every limit breach is a [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message (Go's own limit is 8 GiB on 64-bit). Default 256 MiB.
    /// A value message over it is skipped ([`DecodeErrorKind::ValueSkipped`]); any other
    /// message over it (a type definition, a message continuing a value) is fatal.
    pub max_message_size: u64,
    /// Deepest accepted value nesting (structs, slices, maps, arrays, interfaces). Default
    /// [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
    /// Most type definitions one stream may make. Default 65536.
    pub max_types: usize,
}

/// Default nesting limit of either direction. A Mattermost server accepts JSON nested up to
/// 10,000 levels (Go's encoding/json) in a post's props, and each JSON level is an interface
/// and a map or slice in gob: 20,000 levels and the struct around them fit. Recursion grows
/// the stack on the heap as needed ([`grow_stack`]), so the limit only bounds the work.
pub const DEFAULT_MAX_DEPTH: usize = 25_000;

/// Runs `f` with at least 64 KiB of stack left, moving to a new 1 MiB segment on the heap
/// when the current one is nearly used: every recursive step over a value's nesting goes
/// through here, so no nesting the limits allow can overflow a thread's stack.
pub(crate) fn grow_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 256 << 20,
            max_depth: DEFAULT_MAX_DEPTH,
            max_types: 1 << 16,
        }
    }
}

/// Longest interface type name Go accepts (`decodeInterface`).
const MAX_NAME_LEN: u64 = 1024;

/// The smallest message Go's decoder refuses on 64-bit (`tooBig`, 8 GiB). No Go peer sends
/// one, so a length prefix this large is garbage and fatal, not a value to read past.
const GO_TOO_BIG: u64 = 1 << 33;

/// A gob decoder for one stream. Feed it bytes as they arrive; take values out.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    types: HashMap<i64, Arc<WireType>>,
    limits: Limits,
    failed: Option<DecodeError>,
    last_type: Option<i64>,
    /// The over-limit value message being read past, if any.
    skipping: Option<Skip>,
    /// The last value message skipped, until a message after it parses: an error in that
    /// next message says so, since a skipped value may have defined types mid-message.
    after_skip: Option<Skip>,
}

/// An over-limit value message the decoder reads past without keeping its bytes.
#[derive(Debug, Clone, Copy)]
struct Skip {
    /// Stream offset of its length prefix.
    offset: u64,
    len: u64,
    type_id: i64,
    /// Bytes of its body still to come.
    left: u64,
}

/// Why a parse attempt stopped.
enum Stop {
    /// The buffered bytes end before the value does: wait for more.
    NeedMore,
    Err(DecodeError),
}

type R<T> = Result<T, Stop>;

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        let mut types = HashMap::new();
        for id in 1..=8 {
            if let Some(t) = builtin_wire_type(id) {
                types.insert(id, Arc::new(t));
            }
        }
        Decoder {
            buf: Vec::new(),
            pos: 0,
            base: 0,
            types,
            limits,
            failed: None,
            last_type: None,
            skipping: None,
            after_skip: None,
        }
    }

    /// Appends raw stream bytes. While an over-limit value message is being skipped, its
    /// bytes are dropped here as they arrive and never buffered.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if let Some(skip) = &mut self.skipping {
            let from_buf = skip.left.min((self.buf.len() - self.pos) as u64) as usize;
            self.pos += from_buf;
            skip.left -= from_buf as u64;
            let from_input = skip.left.min(bytes.len() as u64) as usize;
            skip.left -= from_input as u64;
            self.release_consumed();
            self.base += from_input as u64;
            bytes = &bytes[from_input..];
        }
        // Drop consumed bytes before growing, so a long-lived stream does not accumulate.
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Empties the buffer (keeping its allocation) once everything in it is consumed.
    fn release_consumed(&mut self) {
        if self.pos == self.buf.len() {
            self.base += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Bytes fed but not yet consumed by a returned value or type definition (bytes of a
    /// skipped message count as consumed: they are dropped as they arrive).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether the decoder is inside a message: it holds bytes of one not yet complete, or
    /// is reading past an over-limit one. A stream that ends now ends mid-message.
    pub fn in_message(&self) -> bool {
        self.buffered() > 0 || self.skipping.is_some()
    }

    /// The memory the decoder holds for stream bytes (its buffer's capacity). It grows with
    /// the largest message decoded and the largest chunk fed, never with a skipped message.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Stream offset of the next unconsumed byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The wire type id of the last value returned by [`Decoder::next_value`].
    pub fn last_type_id(&self) -> Option<i64> {
        self.last_type
    }

    /// A type known on this stream (builtins 1–8 and every definition received so far).
    pub fn wire_type(&self, id: i64) -> Option<&WireType> {
        self.types.get(&id).map(|t| &**t)
    }

    /// The next complete top-level value, after processing any type definitions before it.
    /// `Ok(None)`: the buffered bytes end before the value does (nothing is consumed by a
    /// partial value, so feeding more and calling again is safe).
    ///
    /// A value message over [`Limits::max_message_size`] is read past as its bytes arrive
    /// (`Ok(None)` meanwhile), then reported once as a [`DecodeErrorKind::ValueSkipped`]
    /// error; the call after that goes on with the next message. After any other error the
    /// stream is out of sync and every later call returns the same error.
    pub fn next_value(&mut self) -> Result<Option<Value>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            if let Some(mut skip) = self.skipping.take() {
                let n = skip.left.min(self.buffered() as u64);
                skip.left -= n;
                self.pos += n as usize;
                self.release_consumed();
                if skip.left > 0 {
                    self.skipping = Some(skip);
                    return Ok(None);
                }
                self.after_skip = Some(skip);
                return Err(self.skipped_error(skip));
            }
            match self.over_limit_message() {
                Ok(OverLimit::No) => {}
                Ok(OverLimit::NeedMore) => return Ok(None),
                Ok(OverLimit::Value(skip, prefix_len)) => {
                    self.pos += prefix_len;
                    self.skipping = Some(skip);
                    continue;
                }
                Err(e) => return Err(self.fail(e)),
            }
            let mut p = Parser {
                data: &self.buf,
                base: self.base,
                pos: self.pos,
                end: self.pos,
                committed: &self.types,
                staged: HashMap::new(),
                limits: &self.limits,
            };
            let attempt = p.next_message().and_then(|()| {
                let at = p.pos;
                let id = p.int()?;
                if id < 0 {
                    p.type_definition(id, at)?;
                    p.expect_message_end("type definition")?;
                    Ok(None)
                } else {
                    let v = p.top_value(id, at, 0)?;
                    p.expect_message_end("value")?;
                    Ok(Some((id, v)))
                }
            });
            match attempt {
                Ok(found) => {
                    let (end, staged) = (p.pos, p.staged);
                    self.types.extend(staged);
                    self.pos = end;
                    self.after_skip = None;
                    if let Some((id, v)) = found {
                        self.last_type = Some(id);
                        return Ok(Some(v));
                    }
                }
                Err(Stop::NeedMore) => return Ok(None),
                Err(Stop::Err(e)) => return Err(self.fail(e)),
            }
        }
    }

    /// Records a fatal error (the decoder stays failed) and returns it.
    fn fail(&mut self, mut e: DecodeError) -> DecodeError {
        if let Some(skip) = self.after_skip.take() {
            e.message = format!(
                "{} (in the message after the over-limit value message of {} bytes at byte {}, \
                 which was skipped: if that value defined types mid-message, the stream \
                 cannot be decoded without them)",
                e.message, skip.len, skip.offset
            );
        }
        self.failed = Some(e.clone());
        e
    }

    fn skipped_error(&self, skip: Skip) -> DecodeError {
        let limit = self.limits.max_message_size;
        DecodeError {
            offset: skip.offset,
            message: format!(
                "value message of {} bytes (type id {}) exceeds the limit of {limit} bytes; \
                 skipped",
                skip.len, skip.type_id
            ),
            kind: DecodeErrorKind::ValueSkipped {
                len: skip.len,
                type_id: skip.type_id,
                limit,
            },
        }
    }

    /// Whether the message at the read position is over the size limit, and if so whether
    /// it can be skipped. Its length prefix comes before its type id, so this needs the
    /// first bytes of the body too. Only a message starting a value of a known type is
    /// skipped: a type definition must not be lost (later values would be misread). A
    /// message continuing a value (after an interface's type definition, see
    /// `Parser::interface`) is never checked here, and over the limit is fatal there.
    fn over_limit_message(&self) -> Result<OverLimit, DecodeError> {
        let limit = self.limits.max_message_size;
        let at = self.offset();
        let (len, prefix_len) = match read_uint(&self.buf[self.pos..]) {
            UintRead::Ok(len, used) if len > limit => (len, used),
            // Within the limit, or malformed: the parser reports it as usual.
            UintRead::Ok(..) | UintRead::Invalid => return Ok(OverLimit::No),
            UintRead::Short => return Ok(OverLimit::NeedMore),
        };
        let too_big = |what: &str, and: &str| {
            DecodeError::new(
                at,
                format!("{what} of {len} bytes exceeds the limit of {limit} bytes{and}"),
            )
        };
        let body = &self.buf[self.pos + prefix_len..];
        let id = match read_uint(body) {
            UintRead::Ok(_, used) if used as u64 > len => {
                return Err(too_big("message", " and ends inside its type id"));
            }
            UintRead::Ok(id, _) => uint_to_int(id),
            UintRead::Short => return Ok(OverLimit::NeedMore),
            UintRead::Invalid => {
                return Err(too_big(
                    "message",
                    " and its type id has an invalid size byte",
                ));
            }
        };
        if id < 0 {
            return Err(too_big("type definition message", ""));
        }
        if len >= GO_TOO_BIG {
            let and = format!(" and Go's own limit of {} bytes", GO_TOO_BIG - 1);
            return Err(too_big("message", &and));
        }
        if !self.types.contains_key(&id) {
            let and = format!(" and has the unknown type id {id}");
            return Err(too_big("message", &and));
        }
        let skip = Skip {
            offset: at,
            len,
            type_id: id,
            left: len,
        };
        Ok(OverLimit::Value(skip, prefix_len))
    }
}

/// What [`Decoder::over_limit_message`] found.
enum OverLimit {
    /// The message is within the limit (or not there yet): parse it as usual.
    No,
    /// Over the limit, but its type id has not arrived yet.
    NeedMore,
    /// An over-limit value message to skip, and the length of its length prefix.
    Value(Skip, usize),
}

/// One parse attempt over the buffered bytes. New type definitions are staged and committed
/// only if the whole value parses, so a value that needs more bytes changes nothing.
struct Parser<'a> {
    data: &'a [u8],
    base: u64,
    pos: usize,
    /// End of the current message.
    end: usize,
    committed: &'a HashMap<i64, Arc<WireType>>,
    staged: HashMap<i64, Arc<WireType>>,
    limits: &'a Limits,
}

impl<'a> Parser<'a> {
    fn err_at(&self, pos: usize, message: impl Into<String>) -> Stop {
        Stop::Err(DecodeError::new(self.base + pos as u64, message))
    }

    fn err(&self, message: impl Into<String>) -> Stop {
        self.err_at(self.pos, message)
    }

    /// Moves to the next framed message; the current one must be fully read.
    fn next_message(&mut self) -> R<()> {
        let at = self.pos;
        let (len, used) = match read_uint(&self.data[self.pos..]) {
            UintRead::Ok(len, used) => (len, used),
            UintRead::Short => return Err(Stop::NeedMore),
            UintRead::Invalid => return Err(self.err("message length has an invalid size byte")),
        };
        if len == 0 {
            return Err(self.err_at(at, "empty message"));
        }
        if len > self.limits.max_message_size {
            return Err(self.err_at(
                at,
                format!(
                    "message of {len} bytes exceeds the limit of {} bytes",
                    self.limits.max_message_size
                ),
            ));
        }
        let start = at + used;
        let avail = (self.data.len() - start) as u64;
        if len > avail {
            return Err(Stop::NeedMore);
        }
        self.pos = start;
        self.end = start + len as usize;
        Ok(())
    }

    fn expect_message_end(&self, what: &str) -> R<()> {
        if self.pos != self.end {
            return Err(self.err(format!(
                "{} bytes left over in the message after the {what}",
                self.end - self.pos
            )));
        }
        Ok(())
    }

    fn uint(&mut self) -> R<u64> {
        match read_uint(&self.data[self.pos..self.end]) {
            UintRead::Ok(v, used) => {
                self.pos += used;
                Ok(v)
            }
            UintRead::Short => Err(self.err("message ends inside an unsigned integer")),
            UintRead::Invalid => Err(self.err("unsigned integer has an invalid size byte")),
        }
    }

    fn int(&mut self) -> R<i64> {
        Ok(uint_to_int(self.uint()?))
    }

    /// A length-prefixed byte string, which must lie inside the current message.
    fn byte_string(&mut self, what: &str) -> R<&'a [u8]> {
        let at = self.pos;
        let n = self.uint()?;
        let left = (self.end - self.pos) as u64;
        if n > left {
            return Err(self.err_at(
                at,
                format!("{what} length {n} exceeds the {left} bytes left in the message"),
            ));
        }
        let data: &'a [u8] = self.data;
        let s = &data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn string(&mut self, what: &str) -> R<String> {
        let bytes = self.byte_string(what)?;
        let start = self.pos - bytes.len();
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => {
                let bad = start + e.valid_up_to();
                Err(self.err_at(bad, format!("{what} is not valid UTF-8")))
            }
        }
    }

    fn lookup(&self, id: i64, at: usize) -> R<&Arc<WireType>> {
        self.staged
            .get(&id)
            .or_else(|| self.committed.get(&id))
            .ok_or_else(|| self.err_at(at, format!("unknown type id {id}")))
    }

    // ---- type definitions ---------------------------------------------------------------

    /// Reads a struct's `(delta, field)*` framing up to its end marker (delta 0), calling
    /// `field` with each field index.
    ///
    /// The end marker must come inside the message. Go's decoder also takes the end of the
    /// message for it, returning a struct cut off at a field boundary with its missing fields
    /// zero. No Go encoder writes such a message, so it can only be a truncated value, and it
    /// is refused (the crate docs, "Field deltas").
    fn fields(
        &mut self,
        count: usize,
        what: &str,
        mut field: impl FnMut(&mut Self, usize) -> R<()>,
    ) -> R<()> {
        let mut index: u64 = u64::MAX; // "-1": the first delta is 1 for field 0
        loop {
            let at = self.pos;
            if at == self.end {
                return Err(self.err(format!(
                    "message ends inside a {what}, before its end marker (field delta 0)"
                )));
            }
            let delta = self.uint()?;
            if delta == 0 {
                return Ok(());
            }
            index = index.wrapping_add(delta);
            if index >= count as u64 || delta > count as u64 {
                return Err(self.err_at(at, format!("field number out of range in {what}")));
            }
            field(self, index as usize)?;
        }
    }

    /// `CommonType{Name string; Id int}`: returns the name (the id is informational).
    fn common_type(&mut self) -> R<String> {
        let mut name = String::new();
        self.fields(2, "CommonType", |p, i| {
            if i == 0 {
                name = p.string("type name")?;
            } else {
                p.int()?;
            }
            Ok(())
        })?;
        Ok(name)
    }

    fn type_definition(&mut self, neg_id: i64, at: usize) -> R<()> {
        let id = neg_id
            .checked_neg()
            .ok_or_else(|| self.err_at(at, "type id out of range"))?;
        if id < FIRST_USER_ID {
            return Err(self.err_at(at, format!("type definition for reserved id {id}")));
        }
        if self.staged.contains_key(&id) || self.committed.contains_key(&id) {
            return Err(self.err_at(at, format!("duplicate definition of type id {id}")));
        }
        if self.committed.len() + self.staged.len() >= self.limits.max_types + 8 {
            return Err(self.err_at(
                at,
                format!(
                    "more than {} type definitions on one stream",
                    self.limits.max_types
                ),
            ));
        }
        let mut result: Option<WireType> = None;
        self.fields(7, "wireType", |p, which| {
            if result.is_some() {
                return Err(p.err("type definition describes more than one type"));
            }
            let mut name = String::new();
            let kind = match which {
                0 => {
                    let (mut elem, mut len) = (0, 0);
                    p.fields(3, "arrayType", |p, i| {
                        match i {
                            0 => name = p.common_type()?,
                            1 => elem = p.int()?,
                            _ => len = p.int()?,
                        }
                        Ok(())
                    })?;
                    if len < 0 {
                        return Err(p.err(format!("negative array length {len}")));
                    }
                    WireKind::Array { elem, len }
                }
                1 => {
                    let mut elem = 0;
                    p.fields(2, "sliceType", |p, i| {
                        match i {
                            0 => name = p.common_type()?,
                            _ => elem = p.int()?,
                        }
                        Ok(())
                    })?;
                    WireKind::Slice { elem }
                }
                2 => {
                    let mut fields = Vec::new();
                    p.fields(2, "structType", |p, i| {
                        if i == 0 {
                            name = p.common_type()?;
                            return Ok(());
                        }
                        let n = p.uint()?;
                        for _ in 0..n {
                            let (mut fname, mut fid) = (String::new(), 0);
                            p.fields(2, "fieldType", |p, j| {
                                if j == 0 {
                                    fname = p.string("field name")?;
                                } else {
                                    fid = p.int()?;
                                }
                                Ok(())
                            })?;
                            fields.push((fname, fid));
                        }
                        Ok(())
                    })?;
                    WireKind::Struct { fields }
                }
                3 => {
                    let (mut key, mut elem) = (0, 0);
                    p.fields(3, "mapType", |p, i| {
                        match i {
                            0 => name = p.common_type()?,
                            1 => key = p.int()?,
                            _ => elem = p.int()?,
                        }
                        Ok(())
                    })?;
                    WireKind::Map { key, elem }
                }
                _ => {
                    p.fields(1, "gobEncoderType", |p, _| {
                        name = p.common_type()?;
                        Ok(())
                    })?;
                    match which {
                        4 => WireKind::GobEncoder,
                        5 => WireKind::BinaryMarshaler,
                        _ => WireKind::TextMarshaler,
                    }
                }
            };
            result = Some(WireType { name, kind });
            Ok(())
        })?;
        let Some(t) = result else {
            return Err(self.err_at(at, "type definition describes no type"));
        };
        self.staged.insert(id, Arc::new(t));
        Ok(())
    }

    // ---- values -------------------------------------------------------------------------

    /// A value as sent at the top level or inside an interface: a struct as itself, anything
    /// else as a singleton (delta 0, then the value).
    fn top_value(&mut self, id: i64, at: usize, depth: usize) -> R<Value> {
        let is_struct = matches!(self.lookup(id, at)?.kind, WireKind::Struct { .. });
        if !is_struct {
            let d = self.pos;
            if self.uint()? != 0 {
                return Err(self.err_at(d, "non-zero field delta before a non-struct value"));
            }
        }
        self.value(id, at, depth)
    }

    fn depth_check(&self, depth: usize) -> R<()> {
        if depth >= self.limits.max_depth {
            return Err(self.err(format!(
                "value nested deeper than the limit of {} levels",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    fn value(&mut self, id: i64, at: usize, depth: usize) -> R<Value> {
        grow_stack(|| self.value_here(id, at, depth))
    }

    fn value_here(&mut self, id: i64, at: usize, depth: usize) -> R<Value> {
        let ty = Arc::clone(self.lookup(id, at)?);
        Ok(match &ty.kind {
            WireKind::Bool => {
                let a = self.pos;
                match self.uint()? {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    n => return Err(self.err_at(a, format!("invalid bool value {n}"))),
                }
            }
            WireKind::Int => Value::Int(self.int()?),
            WireKind::Uint => Value::Uint(self.uint()?),
            WireKind::Float => Value::Float(uint_to_float(self.uint()?)),
            WireKind::Complex => {
                let re = uint_to_float(self.uint()?);
                Value::Complex(re, uint_to_float(self.uint()?))
            }
            // Go strings are bytes: keep any that are not UTF-8 as they came.
            WireKind::String => {
                let bytes = self.byte_string("string")?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Value::String(s.to_owned()),
                    Err(_) => Value::NonUtf8String(bytes.to_vec()),
                }
            }
            WireKind::Bytes => Value::Bytes(self.byte_string("byte slice")?.to_vec()),
            WireKind::GobEncoder | WireKind::BinaryMarshaler | WireKind::TextMarshaler => {
                Value::Encoded(self.byte_string("encoded value")?.to_vec())
            }
            WireKind::Interface => self.interface(depth)?,
            &WireKind::Array { elem, len } => {
                self.depth_check(depth)?;
                let a = self.pos;
                let n = self.uint()?;
                if n != len as u64 {
                    return Err(self.err_at(
                        a,
                        format!("array of length {n} sent for an array type of length {len}"),
                    ));
                }
                Value::Array(self.items(elem, n, at, depth)?)
            }
            &WireKind::Slice { elem } => {
                self.depth_check(depth)?;
                let n = self.uint()?;
                Value::Slice(self.items(elem, n, at, depth)?)
            }
            &WireKind::Map { key, elem } => {
                self.depth_check(depth)?;
                let n = self.uint()?;
                // Every entry takes at least two bytes; never pre-allocate more than that.
                let cap = n.min(((self.end - self.pos) / 2) as u64) as usize;
                let mut entries = Vec::with_capacity(cap);
                for _ in 0..n {
                    let k = self.value(key, at, depth + 1)?;
                    let v = self.value(elem, at, depth + 1)?;
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
            WireKind::Struct { fields } => {
                self.depth_check(depth)?;
                let mut out = Vec::new();
                self.fields(fields.len(), "struct", |p, i| {
                    let (name, fid) = &fields[i];
                    let v = p.value(*fid, at, depth + 1)?;
                    out.push((name.clone(), v));
                    Ok(())
                })?;
                Value::Struct(Struct { fields: out })
            }
        })
    }

    fn items(&mut self, elem: i64, n: u64, at: usize, depth: usize) -> R<Vec<Value>> {
        // Every element takes at least one byte; never pre-allocate more than the message.
        let cap = n.min((self.end - self.pos) as u64) as usize;
        let mut items = Vec::with_capacity(cap);
        for _ in 0..n {
            items.push(self.value(elem, at, depth + 1)?);
        }
        Ok(items)
    }

    /// Go's `decodeInterface`: name, type sequence (definitions may end the message here and
    /// the value continues in the next one), concrete id, byte count, value.
    fn interface(&mut self, depth: usize) -> R<Value> {
        self.depth_check(depth)?;
        let at = self.pos;
        let n = self.uint()?;
        if n == 0 {
            return Ok(Value::Interface(None));
        }
        if n > MAX_NAME_LEN {
            return Err(self.err_at(at, format!("interface type name of {n} bytes is too long")));
        }
        self.pos = at;
        let name = self.string("interface type name")?;
        let id_at;
        let id = loop {
            if self.pos == self.end {
                self.next_message()?;
            }
            let a = self.pos;
            let id = self.int()?;
            if id >= 0 {
                id_at = a;
                break id;
            }
            self.type_definition(id, a)?;
            // A definition nested in a value is followed by the length of the value's next
            // chunk (Go's decoder skips it the same way).
            if self.pos < self.end {
                self.uint()?;
            }
        };
        if id == 0 {
            return Err(self.err_at(id_at, "interface value has type id 0"));
        }
        self.lookup(id, id_at)?;
        self.uint()?; // byte count: only needed to skip values, which we never do
        let value = self.top_value(id, id_at, depth + 1)?;
        Ok(Value::Interface(Some(Box::new(Interface { name, value }))))
    }
}
