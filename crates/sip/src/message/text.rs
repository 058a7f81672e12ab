//! Lexical helpers shared by the header grammars (RFC 3261 §25.1): tokens, LWS, quoted
//! strings, top-level comma splitting and generic parameters.

use crate::error::Error;

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Characters allowed in an unquoted generic-param value: token, plus the host forms
/// (`[v6]`, `v6:addr`) that `received`/`maddr` carry (RFC 3261 §20.42, RFC 5118 §4.5).
fn is_param_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

/// Trims SP and HTAB (LWS after unfolding) on both sides.
pub(crate) fn trim_lws(s: &str) -> &str {
    // A byte loop: this runs on every header and parameter, and SP/HTAB are ASCII, so the
    // slice boundaries are always char boundaries.
    let b = s.as_bytes();
    let lws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !lws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !lws(c)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or("")
}

/// Splits at `sep` outside quoted strings and `<...>`; used for comma-separated header values.
pub(crate) fn split_top_level(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == sep && !in_angle {
            out.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

/// Parses a quoted string at the start of `s` (after LWS was trimmed); returns the decoded
/// content and the rest after the closing quote. `\x` escapes any char (RFC 3261 §25.1 quoted-pair).
pub(crate) fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut out = String::new();
    let mut i = 1;
    let mut seg_start = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                out.push_str(s.get(seg_start..i)?);
                // The escaped character may be multi-byte; copy it whole.
                let ch = s.get(i + 1..)?.chars().next()?;
                out.push(ch);
                i += 1 + ch.len_utf8();
                seg_start = i;
            }
            b'"' => {
                out.push_str(s.get(seg_start..i)?);
                return Some((out, s.get(i + 1..)?));
            }
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// One `;name[=value]` parameter. Names compare case-insensitively; values are kept as
/// written (a quoted value keeps its quotes so that printing is exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as written.
    pub name: String,
    /// Value as written (with quotes if it was quoted), `None` for a flag parameter.
    pub value: Option<String>,
}

/// An ordered list of generic parameters (`;a=b;c`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }
    /// The parameter named `name` (case-insensitive), if present.
    pub fn find(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }
    /// Whether a parameter named `name` is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
    /// The value of `name`; `None` if absent or a flag. Quotes are kept.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).and_then(|p| p.value.as_deref())
    }
    /// Sets `name` (replacing in place if present, else appending).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        if let Some(p) = self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            p.value = value;
        } else {
            self.0.push(Param {
                name: name.to_owned(),
                value,
            });
        }
    }
    /// Inserts `name` right after the parameter `after` (or appends), replacing any existing one.
    pub fn set_after(&mut self, after: &str, name: &str, value: Option<&str>) {
        self.remove(name);
        let param = Param {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        };
        match self
            .0
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(after))
        {
            Some(i) => self.0.insert(i + 1, param),
            None => self.0.push(param),
        }
    }
    /// Removes `name`; returns whether it was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
        before != self.0.len()
    }
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub(crate) fn write(&self, out: &mut String) {
        for p in &self.0 {
            out.push(';');
            out.push_str(&p.name);
            if let Some(v) = &p.value {
                out.push('=');
                out.push_str(v);
            }
        }
    }
}

/// Parses `*( SEMI generic-param )` from `s`, which must be empty or start with `;`.
/// LWS is allowed around `;` and `=` (RFC 3261 §25.1 SEMI, EQUAL).
pub(crate) fn parse_params(s: &str, header: &'static str) -> Result<Params, Error> {
    let bad = |reason| Error::InvalidHeaderValue { header, reason };
    let mut params = Params::new();
    let mut rest = trim_lws(s);
    while !rest.is_empty() {
        rest = trim_lws(
            rest.strip_prefix(';')
                .ok_or(bad("expected `;` before a parameter"))?,
        );
        let name_end = rest
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(bad("empty parameter name"));
        }
        rest = trim_lws(&rest[name_end..]);
        let value = if let Some(after_eq) = rest.strip_prefix('=') {
            let after_eq = trim_lws(after_eq);
            if after_eq.starts_with('"') {
                let (_, tail) = parse_quoted(after_eq).ok_or(bad("unterminated quoted string"))?;
                let raw = &after_eq[..after_eq.len() - tail.len()];
                rest = trim_lws(tail);
                Some(raw.to_owned())
            } else {
                let end = after_eq
                    .bytes()
                    .position(|b| !is_param_value_byte(b))
                    .unwrap_or(after_eq.len());
                if end == 0 {
                    return Err(bad("empty parameter value"));
                }
                rest = trim_lws(&after_eq[end..]);
                Some(after_eq[..end].to_owned())
            }
        } else {
            None
        };
        if !rest.is_empty() && !rest.starts_with(';') {
            return Err(bad("unexpected character after a parameter"));
        }
        params.0.push(Param {
            name: name.to_owned(),
            value,
        });
    }
    Ok(params)
}

/// Parses a decimal `1*DIGIT` that may carry leading zeros (RFC 4475 §3.1.1.1).
pub(crate) fn parse_digits_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse().ok()
}
