//! Naming rules: Go identifiers → proto field and message names that are valid in proto3 and
//! usable from Python (grpc stubs, mypy) and Rust (prost).

/// snake_case of a Go identifier, treating runs of capitals as one word:
/// `UserId` → `user_id`, `URL` → `url`, `IPAddress` → `ip_address`, `OAuthApp` → `o_auth_app`,
/// `Base64Data` → `base64_data`, `userID` → `user_id`.
pub fn snake(ident: &str) -> String {
    let cs: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in cs.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = cs[i - 1];
            let next_lower = cs.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c.to_ascii_lowercase());
    }
    out.trim_matches('_').to_string()
}

/// PascalCase from any identifier-ish text: keeps existing capitals, drops separators.
pub fn pascal(text: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if up {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            up = false;
        } else {
            up = true;
        }
    }
    out
}

/// Python keywords (and soft keywords that confuse stub generators). A proto field with such a
/// name cannot be used as an attribute or keyword argument from Python, so it gets a trailing `_`.
const PY_RESERVED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "print", "exec",
];

/// A field name that is a valid proto identifier and not a Python keyword.
pub fn field_name(raw: &str) -> String {
    let mut s = raw.to_string();
    if s.is_empty() {
        s = "value".into();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if PY_RESERVED.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// Simple English plural for field names of repeated results (`post` → `posts`,
/// `status` → `statuses`, `category` → `categories`).
pub fn plural(word: &str) -> String {
    if word.ends_with('s') || word.ends_with('x') || word.ends_with("ch") || word.ends_with("sh") {
        format!("{word}es")
    } else if word.ends_with('y')
        && !word.ends_with("ay")
        && !word.ends_with("ey")
        && !word.ends_with("oy")
    {
        format!("{}ies", &word[..word.len() - 1])
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_go_initialisms() {
        for (go, want) in [
            ("UserId", "user_id"),
            ("CreateAt", "create_at"),
            ("URL", "url"),
            ("IPAddress", "ip_address"),
            ("userID", "user_id"),
            ("OAuthApp", "o_auth_app"),
            ("ProtoMajor", "proto_major"),
            ("Base64Data", "base64_data"),
            ("ID", "id"),
            ("SHA256", "sha256"),
            ("Z_Args", "z_args"),
            ("A", "a"),
        ] {
            assert_eq!(snake(go), want, "snake({go})");
        }
    }

    #[test]
    fn field_names_avoid_python_keywords() {
        assert_eq!(field_name("from"), "from_");
        assert_eq!(field_name("import"), "import_");
        assert_eq!(field_name("type"), "type");
        assert_eq!(field_name("2fa"), "_2fa");
        assert_eq!(field_name(""), "value");
    }

    #[test]
    fn pascal_and_plural() {
        assert_eq!(pascal("saml2"), "Saml2");
        assert_eq!(
            pascal("PropertyOptions[*PluginPropertyOption]"),
            "PropertyOptionsPluginPropertyOption"
        );
        assert_eq!(plural("post"), "posts");
        assert_eq!(plural("status"), "statuses");
        assert_eq!(plural("category"), "categories");
        assert_eq!(plural("key"), "keys");
    }
}
