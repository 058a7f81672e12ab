//! Generic parameters (`;name[=value]`, RFC 3261 §25.1) of URIs and header values, kept as
//! their canonical text in one buffer: one allocation per list however many parameters it
//! has, printing is one copy, and a lookup walks a few dozen bytes.

use compact_str::CompactString;

use super::text::{is_param_value_byte, is_token_byte, skip_quoted, trim_lws};
use crate::error::Error;

/// One `;name[=value]` parameter, borrowed from its [`Params`]. Names compare
/// case-insensitively; values are as written (a quoted value keeps its quotes, so that
/// printing is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a str,
    /// Value as written (with quotes if it was quoted), `None` for a flag parameter.
    pub value: Option<&'a str>,
}

/// An ordered list of generic parameters (`;a=b;c`).
///
/// Equality is on the printed form: two lists are equal when they print the same.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    /// `;name[=value]` repeated, without LWS: exactly what the printer writes. Most lists
    /// (`;lr`, `;tag=…`, `;transport=udp`) fit in the string itself and allocate nothing.
    text: CompactString,
}

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self {
            text: CompactString::const_new(""),
        }
    }
    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = Param<'_>> {
        self.spans().map(|s| s.param(&self.text))
    }
    /// The parameter named `name` (case-insensitive), if present.
    pub fn find(&self, name: &str) -> Option<Param<'_>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }
    /// Whether a parameter named `name` is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
    /// The value of `name`; `None` if absent or a flag. Quotes are kept.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).and_then(|p| p.value)
    }
    /// Appends `name` (even if a parameter of that name exists already).
    pub fn push(&mut self, name: &str, value: Option<&str>) {
        let at = self.text.len();
        self.insert_at(at, name, value);
    }
    /// Sets `name` (replacing in place if present, else appending).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        match self.span_of(name) {
            // The name keeps the spelling already present; only the value changes.
            Some(s) => {
                self.text.replace_range(s.name_end..s.end, "");
                if let Some(v) = value {
                    self.text.insert_str(s.name_end, v);
                    self.text.insert(s.name_end, '=');
                }
            }
            None => self.push(name, value),
        }
    }
    /// Inserts `name` right after the parameter `after` (or appends), replacing any existing one.
    pub fn set_after(&mut self, after: &str, name: &str, value: Option<&str>) {
        self.remove(name);
        let at = self.span_of(after).map_or(self.text.len(), |s| s.end);
        self.insert_at(at, name, value);
    }
    /// Removes every parameter named `name`; returns whether one was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let mut removed = false;
        while let Some(s) = self.span_of(name) {
            self.text.replace_range(s.start..s.end, "");
            removed = true;
        }
        removed
    }
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.spans().count()
    }
    /// The list as printed (`;a=b;c`, empty for no parameters).
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text.as_bytes());
    }

    fn insert_at(&mut self, at: usize, name: &str, value: Option<&str>) {
        let mut one = CompactString::with_capacity(2 + name.len() + value.map_or(0, str::len));
        one.push(';');
        one.push_str(name);
        if let Some(v) = value {
            one.push('=');
            one.push_str(v);
        }
        self.text.insert_str(at, &one);
    }
    fn span_of(&self, name: &str) -> Option<Span> {
        self.spans()
            .find(|s| s.param(&self.text).name.eq_ignore_ascii_case(name))
    }
    fn spans(&self) -> Spans<'_> {
        Spans {
            bytes: self.text.as_bytes(),
            at: 0,
        }
    }
}

/// Where one parameter sits in the text: `;` at `start`, the name up to `name_end`, then
/// `=value` up to `end` (the next `;` outside a quoted value, or the end).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    name_end: usize,
    end: usize,
}

impl Span {
    fn param(self, text: &str) -> Param<'_> {
        Param {
            name: text.get(self.start + 1..self.name_end).unwrap_or(""),
            value: (self.name_end < self.end)
                .then(|| text.get(self.name_end + 1..self.end).unwrap_or("")),
        }
    }
}

struct Spans<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for Spans<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let bytes = self.bytes;
        let start = self.at;
        if start >= bytes.len() {
            return None;
        }
        // Every span starts at a `;` (the text is only ever built by `insert_at` and
        // `parse_params`); the name ends at `=` or the next `;`.
        let mut i = start + 1;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b';' {
            i += 1;
        }
        let name_end = i;
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            if bytes.get(i) == Some(&b'"') {
                // A quoted value may hold `;`: skip to its closing quote (RFC 3261 §25.1).
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                i = i.min(bytes.len());
            }
            i += memchr::memchr(b';', bytes.get(i..).unwrap_or(&[])).unwrap_or(bytes.len() - i);
        }
        self.at = i;
        Some(Span {
            start,
            name_end,
            end: i,
        })
    }
}

/// Parses `*( SEMI generic-param )` from `s`, which must be empty or start with `;`.
/// LWS is allowed around `;` and `=` (RFC 3261 §25.1 SEMI, EQUAL) and dropped.
pub(crate) fn parse_params(s: &str, header: &'static str) -> Result<Params, Error> {
    let s = trim_lws(s);
    if s.is_empty() {
        return Ok(Params::new());
    }
    // Text that is already canonical (no LWS, no quoted value) is checked in one byte walk
    // and copied once; anything else, errors included, takes the full grammar below.
    if is_canonical(s.as_bytes()) {
        return Ok(Params {
            text: CompactString::new(s),
        });
    }
    if !s.bytes().any(|b| b == b' ' || b == b'\t') {
        walk_params(s, header, None)?;
        return Ok(Params {
            text: CompactString::new(s),
        });
    }
    let mut text = CompactString::with_capacity(s.len());
    walk_params(s, header, Some(&mut text))?;
    Ok(Params { text })
}

/// Whether `b` is `1*( ";" token [ "=" 1*param-value-byte ] )` exactly: what the printer
/// writes for unquoted values, and what [`walk_params`] accepts unchanged.
fn is_canonical(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if b[i] != b';' {
            return false;
        }
        i += 1;
        let name = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if i == name {
            return false;
        }
        if b.get(i) == Some(&b'=') {
            i += 1;
            let value = i;
            while i < b.len() && is_param_value_byte(b[i]) {
                i += 1;
            }
            if i == value {
                return false;
            }
        }
    }
    !b.is_empty()
}

/// Checks the grammar of `s` (trimmed, not empty), writing the canonical text to `out`.
fn walk_params(
    s: &str,
    header: &'static str,
    mut out: Option<&mut CompactString>,
) -> Result<(), Error> {
    let bad = |reason| Error::InvalidHeaderValue { header, reason };
    let mut rest = s;
    while !rest.is_empty() {
        rest = trim_lws(
            rest.strip_prefix(';')
                .ok_or(bad("expected `;` before a parameter"))?,
        );
        let name_end = rest
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(rest.len());
        let (name, after_name) = rest.split_at(name_end);
        if name.is_empty() {
            return Err(bad("empty parameter name"));
        }
        if let Some(out) = out.as_deref_mut() {
            out.push(';');
            out.push_str(name);
        }
        rest = trim_lws(after_name);
        if let Some(after_eq) = rest.strip_prefix('=') {
            let after_eq = trim_lws(after_eq);
            let (value, tail) = if after_eq.starts_with('"') {
                let tail = skip_quoted(after_eq).ok_or(bad("unterminated quoted string"))?;
                after_eq.split_at(after_eq.len() - tail.len())
            } else {
                let end = after_eq
                    .bytes()
                    .position(|b| !is_param_value_byte(b))
                    .unwrap_or(after_eq.len());
                if end == 0 {
                    return Err(bad("empty parameter value"));
                }
                after_eq.split_at(end)
            };
            if let Some(out) = out.as_deref_mut() {
                out.push('=');
                out.push_str(value);
            }
            rest = trim_lws(tail);
        }
        if !rest.is_empty() && !rest.starts_with(';') {
            return Err(bad("unexpected character after a parameter"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &Params) -> Vec<(&str, Option<&str>)> {
        p.iter().map(|p| (p.name, p.value)).collect()
    }

    #[test]
    fn parsing_drops_lws_and_keeps_quotes() {
        let p = parse_params(" ; a = 1 ;B; text = \"x;y \\\" z\" ;c=[::1]", "t").unwrap();
        assert_eq!(p.as_str(), ";a=1;B;text=\"x;y \\\" z\";c=[::1]");
        assert_eq!(
            list(&p),
            [
                ("a", Some("1")),
                ("B", None),
                ("text", Some("\"x;y \\\" z\"")),
                ("c", Some("[::1]"))
            ]
        );
        assert_eq!(p.get("b"), None);
        assert!(p.contains("b"));
        assert_eq!(p.get("TEXT"), Some("\"x;y \\\" z\""));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn edits_keep_order() {
        let mut p = parse_params(";branch=z9hG4bK1;rport;x=1", "Via").unwrap();
        p.set("rport", Some("5060"));
        p.set_after("rport", "received", Some("192.0.2.1"));
        assert_eq!(
            p.as_str(),
            ";branch=z9hG4bK1;rport=5060;received=192.0.2.1;x=1"
        );
        p.set("RPORT", None);
        assert_eq!(p.as_str(), ";branch=z9hG4bK1;rport;received=192.0.2.1;x=1");
        assert!(p.remove("received"));
        assert!(!p.remove("received"));
        p.push("x", Some("2"));
        assert_eq!(p.get("x"), Some("1"));
        assert!(p.remove("x"));
        assert_eq!(p.as_str(), ";branch=z9hG4bK1;rport");
        p.set_after("missing", "lr", None);
        assert_eq!(
            list(&p),
            [("branch", Some("z9hG4bK1")), ("rport", None), ("lr", None)]
        );
    }

    #[test]
    fn odd_values_set_through_the_api_never_break_the_walk() {
        let mut p = Params::new();
        p.set("a", Some("\"open"));
        p.set("b", Some("x\\"));
        p.push("c", Some(""));
        assert_eq!(p.get("a"), Some("\"open;b=x\\;c="));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn rejects_what_the_grammar_rejects() {
        for bad in [";", "a", ";=1", ";a=", ";a=\"x", ";a b", ";a=1 2"] {
            assert!(parse_params(bad, "t").is_err(), "{bad:?}");
        }
        assert!(parse_params("  ", "t").unwrap().is_empty());
    }

    #[test]
    fn the_canonical_walk_accepts_only_what_the_grammar_keeps_unchanged() {
        let alphabet = [';', 'a', '=', ':', '"', ' ', '\\'];
        let mut canonical = 0;
        for len in 0..=7u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut s, mut k) = (String::new(), n);
                for _ in 0..len {
                    s.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                if is_canonical(s.as_bytes()) {
                    let mut text = CompactString::default();
                    assert!(walk_params(&s, "t", Some(&mut text)).is_ok(), "{s:?}");
                    assert_eq!(text, s);
                    canonical += 1;
                }
            }
        }
        assert_eq!(canonical, 92);
    }
}
