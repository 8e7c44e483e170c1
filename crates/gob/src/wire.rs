//! Wire primitives: gob's variable-length uints and ints, floats, and message framing.
//!
//! Facts (Go `encoding/gob/doc.go`): a uint below 128 is one byte; otherwise the negated byte
//! count followed by the minimal big-endian bytes. An int is folded into a uint with bit 0 as
//! the "complement" flag. A float is its IEEE-754 bits byte-reversed, sent as a uint.

/// Appends `x` in gob's uint encoding.
pub fn put_uint(out: &mut Vec<u8>, x: u64) {
    if x < 0x80 {
        out.push(x as u8);
        return;
    }
    let bytes = x.to_be_bytes();
    let skip = (x.leading_zeros() / 8) as usize;
    let n = 8 - skip;
    // The count byte is the two's complement of n, i.e. 256 - n.
    out.push((n as u8).wrapping_neg());
    out.extend_from_slice(&bytes[skip..]);
}

/// Folds a signed integer into gob's uint form (bit 0 set = complement the rest).
pub fn int_to_uint(i: i64) -> u64 {
    if i < 0 {
        ((!i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    }
}

/// Inverse of [`int_to_uint`].
pub fn uint_to_int(u: u64) -> i64 {
    if u & 1 == 1 {
        !((u >> 1) as i64)
    } else {
        (u >> 1) as i64
    }
}

/// Appends `i` in gob's int encoding.
pub fn put_int(out: &mut Vec<u8>, i: i64) {
    put_uint(out, int_to_uint(i));
}

/// The uint gob sends for a float64: its bits, byte-reversed (so small exponents compress).
pub fn float_to_uint(f: f64) -> u64 {
    f.to_bits().swap_bytes()
}

/// Inverse of [`float_to_uint`].
pub fn uint_to_float(u: u64) -> f64 {
    f64::from_bits(u.swap_bytes())
}

/// Appends a length-prefixed byte string (gob strings and `[]byte`).
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends `payload` as one framed message: `uint(len)` then the bytes.
pub fn put_message(out: &mut Vec<u8>, payload: &[u8]) {
    put_uint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Result of reading a uint from a byte slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UintRead {
    /// The value and the number of bytes it used.
    Ok(u64, usize),
    /// The slice ends before the uint does.
    Short,
    /// The count byte announces more than 8 bytes.
    Invalid,
}

/// Reads one gob uint from the start of `b`. Non-minimal forms are accepted, as Go does.
pub fn read_uint(b: &[u8]) -> UintRead {
    let Some(&first) = b.first() else {
        return UintRead::Short;
    };
    if first < 0x80 {
        return UintRead::Ok(u64::from(first), 1);
    }
    let n = first.wrapping_neg() as usize;
    if n > 8 {
        return UintRead::Invalid;
    }
    if b.len() < 1 + n {
        return UintRead::Short;
    }
    let mut x = 0u64;
    for &byte in &b[1..=n] {
        x = (x << 8) | u64::from(byte);
    }
    UintRead::Ok(x, 1 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_examples_from_go_doc() {
        let mut v = Vec::new();
        put_uint(&mut v, 256);
        assert_eq!(v, [0xFE, 0x01, 0x00]);
        v.clear();
        put_uint(&mut v, 127);
        assert_eq!(v, [0x7F]);
        v.clear();
        put_uint(&mut v, u64::MAX);
        assert_eq!(v, [0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(read_uint(&v), UintRead::Ok(u64::MAX, 9));
        assert_eq!(read_uint(&v[..5]), UintRead::Short);
        assert_eq!(read_uint(&[0xF7]), UintRead::Invalid);
    }

    #[test]
    fn int_and_float_examples_from_go_doc() {
        let mut v = Vec::new();
        put_int(&mut v, -129);
        assert_eq!(v, [0xFE, 0x01, 0x01]);
        v.clear();
        put_int(&mut v, 3);
        assert_eq!(v, [0x06]);
        for i in [0, 1, -1, i64::MIN, i64::MAX, -129, 128] {
            assert_eq!(uint_to_int(int_to_uint(i)), i);
        }
        v.clear();
        put_uint(&mut v, float_to_uint(17.0));
        assert_eq!(v, [0xFE, 0x31, 0x40]);
    }
}
