//! Log lines from the transport itself, for what no caller hears about: a request the server
//! sent that the plugin answered with an error on its own, a reply dropped unread.
//!
//! Facts (hashicorp/go-plugin `client.go` `logStderr`, `log_entry.go`): the host reads the
//! plugin's stderr line by line; a line that is a JSON object is an hclog entry, logged at its
//! `@level` with its `@message`, every other key becoming a key-value pair. `@timestamp` is
//! optional and rejected unless in hclog's exact layout, so it is left out.

use std::io::Write;

/// Writes an error-level entry to stderr. A failed write is ignored: stderr is the only place
/// it could be reported.
pub(crate) fn error(message: &str, fields: &[(&str, String)]) {
    let mut line = format_line("error", message, fields);
    line.push('\n');
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}

/// One hclog JSON entry (without the newline).
pub(crate) fn format_line(level: &str, message: &str, fields: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    let pairs = [
        ("@level", level),
        ("@message", message),
        ("@module", "goplugin"),
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
