//! Log lines in the shape the host reads from a plugin's stderr. The transport writes its own
//! here, for what no caller hears about (a request the server sent that the plugin answered
//! with an error on its own, a reply dropped unread); the bridge writes all of its lines
//! through [`format_line`] and [`write_line`] too.
//!
//! Facts (hashicorp/go-plugin `client.go` `logStderr`, `log_entry.go`): the host reads the
//! plugin's stderr line by line; a line that is a JSON object is an hclog entry, logged at its
//! `@level` with its `@message`; `@timestamp` is parsed in hclog's layout
//! (`2006-01-02T15:04:05.000000Z07:00`; any other makes the whole line plain text), and every
//! other key becomes a key-value pair, followed by `timestamp`. Mattermost's hclog adapter then
//! runs all the pairs together into one `wrapped_extras` field (`"@modulexkeyvaluetimestamp..."`),
//! so a line carries its fields inside its message (`message (key=value, ...)`), which the
//! server log shows as written, and a real `@timestamp`: without one hclog's zero time shows.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

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
/// `@message` (the message with `fields` in it, see [`message_with_fields`]) and `@timestamp`
/// (now). `module` names where the line comes from; only a source other than the plugin
/// process itself (`python.stdout`) shows, as a prefix.
pub fn format_line(level: &str, module: &str, message: &str, fields: &[(&str, String)]) -> String {
    let text = match module {
        "python.stdout" => format!("stdout: {message}"),
        _ => message.to_string(),
    };
    let text = message_with_fields(&text, fields.iter().map(|(k, v)| (*k, v.as_str())));
    entry(level, &text, &timestamp_now())
}

/// One hclog JSON entry of `level`, `message` and `timestamp` (hclog's layout).
pub fn entry(level: &str, message: &str, timestamp: &str) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in [
        ("@level", level),
        ("@message", message),
        ("@timestamp", timestamp),
    ]
    .into_iter()
    .enumerate()
    {
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

/// `message (key=value, key2=value2)`, with any field whose value spans lines after it on
/// lines of its own (`key:` then the value): a traceback stays readable.
pub fn message_with_fields<'a>(
    message: &str,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let (mut inline, mut blocks) = (Vec::new(), Vec::new());
    for (k, v) in fields {
        if v.contains('\n') {
            blocks.push(format!("{k}:\n{}", v.trim_end()));
        } else if v.is_empty() {
            continue;
        } else {
            inline.push(format!("{k}={v}"));
        }
    }
    let mut out = message.to_string();
    if !inline.is_empty() {
        out.push_str(&format!(" ({})", inline.join(", ")));
    }
    for b in blocks {
        out.push('\n');
        out.push_str(&b);
    }
    out
}

/// Now, in hclog's JSON time layout (UTC): `2026-12-07T01:02:03.123456Z`.
pub fn timestamp_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    timestamp(since.as_secs(), since.subsec_micros())
}

fn timestamp(unix_secs: u64, micros: u32) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of day `z` since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
    fn lines_are_one_json_object_with_fields_in_the_message() {
        let line = format_line(
            "error",
            "goplugin",
            "a \"quoted\"\nmessage\\",
            &[
                ("seq", "7".into()),
                ("ctl", "\u{1}".into()),
                ("tail", "one\ntwo".into()),
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "error");
        assert_eq!(
            v["@message"],
            "a \"quoted\"\nmessage\\ (seq=7, ctl=\u{1}) \ntail:\none\ntwo".replace(") \n", ")\n")
        );
        assert_eq!(
            v.as_object().unwrap().len(),
            3,
            "no field besides level, message, time"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn timestamps_are_in_hclogs_layout() {
        // Go: time.Unix(1796608261, 849123000).UTC().Format("2006-01-02T15:04:05.000000Z07:00")
        assert_eq!(
            timestamp(1_796_608_261, 849_123),
            "2026-12-07T01:51:01.849123Z"
        );
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
    }
}
