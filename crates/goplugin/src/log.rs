//! Log lines in the shape the host reads from a plugin's stderr. The transport writes its own
//! here, for what no caller hears about (a request the server sent that the plugin answered
//! with an error on its own, a reply dropped unread); the bridge writes all of its lines
//! through [`format_line`] and [`write_line`] too.
//!
//! Facts (hashicorp/go-plugin `client.go` `logStderr`, `log_entry.go`): the host reads the
//! plugin's stderr line by line; a line that is a JSON object is an hclog entry, logged at its
//! `@level` with its `@message`, every other key becoming a key-value pair. `@timestamp` is
//! optional and rejected unless in hclog's exact layout, so it is left out.

use std::io::Write;

/// Writes an error-level entry from the transport.
pub(crate) fn error(message: &str, fields: &[(&str, String)]) {
    write_line(&format_line("error", "goplugin", message, fields));
}

/// Writes an info-level entry from the transport.
pub(crate) fn info(message: &str, fields: &[(&str, String)]) {
    write_line(&format_line("info", "goplugin", message, fields));
}

/// Writes one line to stderr. A failed write is ignored: stderr is the only place it could be
/// reported, and the host reading it has gone away.
pub fn write_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
    let _ = err.flush();
}

/// One hclog JSON entry (without the newline): `@level` (`debug`, `info`, `warn`, `error`),
/// `@message`, `@module`, then `fields` in order.
pub fn format_line(level: &str, module: &str, message: &str, fields: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    let pairs = [
        ("@level", level),
        ("@message", message),
        ("@module", module),
    ];
    let all = pairs
        .iter()
        .copied()
        .chain(fields.iter().map(|(k, v)| (*k, v.as_str())));
    for (i, (key, value)) in all.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, key);
        out.push(':');
        push_json_string(&mut out, value);
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal (RFC 8259 escapes).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_json_object_with_escapes() {
        let line = format_line(
            "error",
            "goplugin",
            "a \"quoted\"\nmessage\\",
            &[("seq", "7".into()), ("ctl", "\u{1}".into())],
        );
        assert_eq!(
            line,
            r#"{"@level":"error","@message":"a \"quoted\"\nmessage\\","@module":"goplugin","seq":"7","ctl":"\u0001"}"#
        );
        assert!(!line.contains('\n'));
    }
}
