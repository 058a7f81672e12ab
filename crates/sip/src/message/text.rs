//! Lexical helpers shared by the header grammars (RFC 3261 §25.1): tokens, LWS, quoted
//! strings and top-level comma splitting.

use compact_str::CompactString;

/// RFC 3261 §25.1 `token` characters.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// `is_token_byte` as a table: it runs on every byte of every name, parameter and token.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Characters allowed in an unquoted generic-param value: token, plus the host forms
/// (`[v6]`, `v6:addr`) that `received`/`maddr` carry (RFC 3261 §20.42, RFC 5118 §4.5).
#[inline]
pub(crate) fn is_param_value_byte(b: u8) -> bool {
    PARAM_VALUE[usize::from(b)]
}

static PARAM_VALUE: [bool; 256] = {
    let mut t = TOKEN;
    t[b':' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

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

/// The position of the first `byte` in `s`. A plain loop: on the few dozen bytes a header
/// part has, both `str::find(char)` and memchr's dispatch cost more than the scan.
#[inline]
pub(crate) fn find_byte(s: &str, byte: u8) -> Option<usize> {
    s.bytes().position(|b| b == byte)
}

/// `s` split around the first `byte` (which is ASCII, so both sides are `str`s).
#[inline]
pub(crate) fn split_once_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, byte)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The elements of a comma-separated header value: split at `,` outside quoted strings and
/// `<...>`, without collecting them.
pub(crate) fn top_level_commas(s: &str) -> TopLevel<'_> {
    TopLevel { rest: Some(s) }
}

/// Iterator of [`top_level_commas`].
pub(crate) struct TopLevel<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for TopLevel<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let bytes = s.as_bytes();
        // Most elements hold no quote and no `<`: one memchr3 finds their end (or the end of
        // the value); the byte walk below only runs from the first `"` or `<`.
        let from = match memchr::memchr3(b',', b'"', b'<', bytes) {
            None => {
                self.rest = None;
                return Some(s);
            }
            Some(at) if bytes.get(at) == Some(&b',') => {
                self.rest = s.get(at + 1..);
                return s.get(..at);
            }
            // A quoted string or `<...>` with no comma after it is the last element: most
            // name-addr values end here without the byte walk.
            Some(at) if memchr::memchr(b',', &bytes[at..]).is_none() => {
                self.rest = None;
                return Some(s);
            }
            Some(at) => at,
        };
        let mut in_quote = false;
        let mut in_angle = false;
        for (at, &b) in bytes.iter().enumerate().skip(from) {
            // Skip the bytes that cannot change the state: one table load per byte.
            if SPLIT_CLASS[usize::from(b)] == 0 {
                continue;
            }
            if in_quote {
                // A quoted-pair escapes the next byte: the one after `\\` cannot end the quote.
                if b == b'"' && !escaped(bytes, at) {
                    in_quote = false;
                }
            } else if b == b'"' {
                in_quote = true;
            } else if b == b'<' {
                in_angle = true;
            } else if b == b'>' {
                in_angle = false;
            } else if b == b',' && !in_angle {
                self.rest = s.get(at + 1..);
                return s.get(..at);
            }
        }
        self.rest = None;
        Some(s)
    }
}

/// Bytes that matter to [`TopLevel`]: `,`, `"`, `<`, `>`.
static SPLIT_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b',' as usize] = 1;
    t[b'"' as usize] = 1;
    t[b'<' as usize] = 1;
    t[b'>' as usize] = 1;
    t
};

/// Whether the byte at `at` inside a quoted string is escaped: an odd run of `\` before it
/// (each quoted-pair `\x` consumes two bytes, starting after the opening quote).
fn escaped(bytes: &[u8], at: usize) -> bool {
    let run = bytes
        .get(..at)
        .unwrap_or(&[])
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    run % 2 == 1
}

/// Parses a quoted string at the start of `s` (after LWS was trimmed); returns the decoded
/// content and the rest after the closing quote. `\x` escapes any char (RFC 3261 §25.1 quoted-pair).
pub(crate) fn parse_quoted(s: &str) -> Option<(CompactString, &str)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    // Without a quoted-pair the content is the text between the quotes: found in one walk
    // and copied once.
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match b {
            b'"' => return Some((CompactString::new(s.get(1..i)?), s.get(i + 1..)?)),
            b'\\' => break,
            b'\r' | b'\n' => return None,
            _ => {}
        }
    }
    let rest = skip_quoted(s)?;
    let inner = s.get(1..s.len() - rest.len() - 1)?;
    let mut out = CompactString::with_capacity(inner.len());
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

/// The rest of `s` after the quoted string it starts with, read as [`parse_quoted`] reads it,
/// without decoding it.
pub(crate) fn skip_quoted(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                // The escaped character may be multi-byte; skip it whole.
                let ch = s.get(i + 1..)?.chars().next()?;
                i += 1 + ch.len_utf8();
            }
            b'"' => return s.get(i + 1..),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Writes `s` as a quoted string, escaping `"` and `\\`.
pub(crate) fn write_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\') {
        // Nothing to escape (the common case): one copy.
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Both are ASCII, so no byte of a multi-byte character is escaped.
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The text a writer produces. Writers only ever write whole `str`s, so the bytes are
/// always UTF-8 and nothing is lost.
pub(crate) fn printed(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Parses a decimal `1*DIGIT` that may carry leading zeros (RFC 4475 §3.1.1.1); `None` if it
/// is not one or does not fit.
pub(crate) fn parse_digits_u32(s: &str) -> Option<u32> {
    parse_digits(s).and_then(|n| u32::try_from(n).ok())
}

/// [`parse_digits_u32`] for any value up to `u64::MAX`.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for &b in s.as_bytes() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::{parse_digits, parse_digits_u32, top_level_commas};

    #[test]
    fn digits_parse_like_trimmed_std_parse() {
        let reference = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits = s.trim_start_matches('0');
            if digits.is_empty() {
                Some(0)
            } else {
                digits.parse().ok()
            }
        };
        for s in [
            "",
            "0",
            "00",
            "7",
            "0070",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1a",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "000000000000000000000000000001",
            "99999999999999999999",
        ] {
            assert_eq!(parse_digits(s), reference(s), "{s:?}");
            assert_eq!(
                parse_digits_u32(s),
                reference(s).and_then(|n| u32::try_from(n).ok()),
                "{s:?}"
            );
        }
    }

    /// The splitter as first written: one byte at a time, collected.
    fn reference(s: &str) -> Vec<&str> {
        let (mut out, bytes) = (Vec::new(), s.as_bytes());
        let (mut start, mut i, mut in_quote, mut in_angle) = (0, 0, false, false);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                b'<' if !in_quote => in_angle = true,
                b'>' if !in_quote => in_angle = false,
                b',' if !in_quote && !in_angle => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        out.push(&s[start..]);
        out
    }

    #[test]
    fn top_level_commas_split_every_short_string_like_the_byte_loop() {
        let alphabet = ['a', ',', '"', '<', '>', '\\'];
        let mut checked = 0;
        for len in 0..=7u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut s, mut k) = (String::new(), n);
                for _ in 0..len {
                    s.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let ours: Vec<&str> = top_level_commas(&s).collect();
                assert_eq!(ours, reference(&s), "{s:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 335_923);
    }
}
