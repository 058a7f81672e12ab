//! Strict header-section parser (RFC 3261 §7, §25): start line, unfolding, names
//! case-insensitive with compact forms, typed validation of the headers a B2BUA relies on.

use super::headers::{Header, HeaderName, HeaderValue, Headers};
use super::text::{
    find_byte, is_token, is_token_byte, parse_digits_u32, split_once_byte, top_level_commas,
    trim_lws,
};
use super::typed::{CSeq, Contact, MediaType, NameAddr, Reason, TokenList, Via};
use super::uri::Uri;
use super::{Method, StartLine, StatusCode};
use crate::error::Error;

/// Resource limits applied while framing and parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of one message, headers plus body (default 64 KiB).
    pub max_message_size: usize,
    /// Maximum number of header lines (default 256).
    pub max_headers: usize,
    /// Maximum length of one unfolded header line (default 8 KiB).
    pub max_line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_headers: 256,
            max_line_length: 8 * 1024,
        }
    }
}

/// The parsed header section: start line, headers, and the Content-Length if one was given.
pub(crate) struct Head {
    pub start: StartLine,
    pub headers: Headers,
    pub content_length: Option<usize>,
    /// Where the section ends: its length, and the index of the `\r\n\r\n` after it.
    pub end: usize,
}

/// Parses the header section `head` (everything before the empty line, without it).
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<Head, Error> {
    let text = std::str::from_utf8(head).map_err(|_| Error::NotUtf8)?;
    parse_lines(CrlfLines { rest: Some(text) }, head.len(), limits)
}

/// Finds the end of the header section of `bytes` and parses the section, splitting it into
/// lines in the same walk that finds its end. The result is what searching for the end (the
/// `\r\n\r\n`, whose index is returned as `Head::end`) and then [`parse_head`] give:
/// [`Error::Incomplete`] if there is no end.
pub(crate) fn parse_head_of(bytes: &[u8], limits: &Limits) -> Result<Head, Error> {
    let mut ends = LineEnds {
        ends: [0; LineEnds::CAPACITY],
        bare: 0,
        len: 0,
        overflow: false,
    };
    let end = ends.split(bytes).ok_or(Error::Incomplete)?;
    let head = bytes.get(..end).ok_or(Error::Incomplete)?;
    if ends.overflow {
        return parse_head(head, limits);
    }
    let text = std::str::from_utf8(head).map_err(|_| Error::NotUtf8)?;
    let lines = RecordedLines {
        text,
        ends: ends.ends.get(..ends.len).unwrap_or(&[]),
        bare: ends.bare,
        start: 0,
        index: 0,
    };
    parse_lines(lines, end, limits)
}

/// Where the lines of a header section end (the index of each line's CRLF) and which of
/// them hold a bare CR or LF, recorded while searching for the section's end.
struct LineEnds {
    ends: [u32; LineEnds::CAPACITY],
    /// Bit `i` set: line `i` holds a bare CR or LF.
    bare: u64,
    len: usize,
    /// More lines than recorded: the caller splits the section again.
    overflow: bool,
}

impl LineEnds {
    const CAPACITY: usize = 64;

    /// Records the lines of `bytes` up to the first empty line and returns the index of the
    /// CRLF before it: the `\r\n\r\n` a search would find first (CRLFs never overlap, so the
    /// first `\r\n\r\n` is where [`CrlfLines`] yields its first empty line).
    fn split(&mut self, bytes: &[u8]) -> Option<usize> {
        let (mut line_start, mut from, mut bare) = (0usize, 0usize, false);
        while let Some(i) = memchr::memchr2(b'\r', b'\n', bytes.get(from..)?).map(|i| i + from) {
            if bytes.get(i) == Some(&b'\r') && bytes.get(i + 1) == Some(&b'\n') {
                if i == line_start && i > 0 {
                    return Some(i - 2);
                }
                match (self.ends.get_mut(self.len), u32::try_from(i)) {
                    (Some(end), Ok(at)) => {
                        *end = at;
                        self.bare |= u64::from(bare) << self.len;
                        self.len += 1;
                    }
                    _ => self.overflow = true,
                }
                (line_start, from, bare) = (i + 2, i + 2, false);
            } else {
                bare = true;
                from = i + 1;
            }
        }
        None
    }
}

/// The lines recorded by [`LineEnds::split`], as [`CrlfLines`] yields them.
struct RecordedLines<'a> {
    text: &'a str,
    ends: &'a [u32],
    bare: u64,
    start: usize,
    index: usize,
}

impl<'a> Iterator for RecordedLines<'a> {
    type Item = (&'a str, bool);

    fn next(&mut self) -> Option<(&'a str, bool)> {
        let end = *self.ends.get(self.index)? as usize;
        // Every end is a CR: the cuts fall on character boundaries.
        let line = self.text.get(self.start..end)?;
        let bare = (self.bare >> self.index) & 1 == 1;
        self.start = end + 2;
        self.index += 1;
        Some((line, bare))
    }
}

/// Parses the start line and header lines of a header section.
fn parse_lines<'a>(
    mut lines: impl Iterator<Item = (&'a str, bool)>,
    end: usize,
    limits: &Limits,
) -> Result<Head, Error> {
    let start_line = lines.next().map_or("", |(line, _)| line);
    if start_line.len() > limits.max_line_length {
        return Err(Error::LineTooLong {
            length: start_line.len(),
            limit: limits.max_line_length,
        });
    }
    let start = parse_start_line(start_line)?;

    let mut state = HeaderState {
        headers: Headers(Vec::with_capacity(16)),
        content_length: None,
        seen_single: 0,
        count: 0,
    };
    // The header being assembled: its first line, plus an owned copy once folding occurs.
    let mut pending: Option<(&str, Option<String>, usize)> = None;
    for (index, (line, bare)) in lines.enumerate() {
        let line_no = index + 1;
        if bare {
            return Err(Error::InvalidHeaderLine {
                line: line_no,
                reason: "bare CR or LF; lines must end in CRLF",
            });
        }
        if line.starts_with([' ', '\t']) {
            // RFC 3261 §7.3.1: a continuation line is folded into the previous header.
            let (first, folded, _) = pending.as_mut().ok_or(Error::InvalidHeaderLine {
                line: line_no,
                reason: "continuation line before any header",
            })?;
            let buf = folded.get_or_insert_with(|| (*first).to_owned());
            buf.push(' ');
            buf.push_str(trim_lws(line));
            if buf.len() > limits.max_line_length {
                return Err(Error::LineTooLong {
                    length: buf.len(),
                    limit: limits.max_line_length,
                });
            }
            continue;
        }
        if let Some((first, folded, n)) = pending.take() {
            state.finish(folded.as_deref().unwrap_or(first), n, limits)?;
        }
        if line.len() > limits.max_line_length {
            return Err(Error::LineTooLong {
                length: line.len(),
                limit: limits.max_line_length,
            });
        }
        pending = Some((line, None, line_no));
    }
    if let Some((first, folded, n)) = pending.take() {
        state.finish(folded.as_deref().unwrap_or(first), n, limits)?;
    }
    Ok(Head {
        start,
        headers: state.headers,
        content_length: state.content_length,
        end,
    })
}

/// The lines of `text` split at CRLF, as `str::split("\r\n")` would (a bare CR or LF stays in
/// its line, where the caller rejects it), found with memchr; each with whether it holds a
/// bare CR or LF, which the same search finds.
struct CrlfLines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for CrlfLines<'a> {
    type Item = (&'a str, bool);

    fn next(&mut self) -> Option<(&'a str, bool)> {
        let text = self.rest?;
        let bytes = text.as_bytes();
        let (mut from, mut bare) = (0, false);
        while let Some(i) = memchr::memchr2(b'\r', b'\n', &bytes[from..]).map(|i| i + from) {
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                self.rest = text.get(i + 2..);
                return text.get(..i).map(|line| (line, bare));
            }
            bare = true;
            from = i + 1;
        }
        self.rest = None;
        Some((text, bare))
    }
}

struct HeaderState {
    headers: Headers,
    content_length: Option<usize>,
    seen_single: u8,
    count: usize,
}

impl HeaderState {
    fn finish(&mut self, line: &str, line_no: usize, limits: &Limits) -> Result<(), Error> {
        self.count += 1;
        if self.count > limits.max_headers {
            return Err(Error::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let b = line.as_bytes();
        // A known name written canonically and directly followed by `:` is recognised by its
        // first letter and one fixed-length compare.
        let (name, token_end) = match canonical_name(b) {
            Some((name, len)) => (Some(name), len),
            None => {
                // Else a token directly followed by `:` is found in one walk over the bytes.
                let mut token_end = 0;
                while token_end < b.len() && is_token_byte(b[token_end]) {
                    token_end += 1;
                }
                (None, token_end)
            }
        };
        let (name_text, value) = if token_end > 0 && b.get(token_end) == Some(&b':') {
            let mut start = token_end + 1;
            while matches!(b.get(start), Some(b' ' | b'\t')) {
                start += 1;
            }
            let mut end = b.len();
            while end > start && matches!(b.get(end - 1), Some(b' ' | b'\t')) {
                end -= 1;
            }
            // SP, HTAB and `:` are ASCII: both cuts are on character boundaries.
            (
                line.get(..token_end).unwrap_or(""),
                line.get(start..end).unwrap_or(""),
            )
        } else {
            let colon = find_byte(line, b':').ok_or(Error::InvalidHeaderLine {
                line: line_no,
                reason: "no `:` after the header name",
            })?;
            // RFC 3261 §7.3.1 HCOLON = *( SP / HTAB ) ":" SWS
            let name = trim_lws(&line[..colon]);
            if !is_token(name) {
                return Err(Error::InvalidHeaderLine {
                    line: line_no,
                    reason: "header name is not a token",
                });
            }
            (name, trim_lws(&line[colon + 1..]))
        };
        let name = match name {
            Some(name) => name,
            None if name_text == "Content-Length"
                || name_text.eq_ignore_ascii_case("Content-Length")
                || name_text.eq_ignore_ascii_case("l") =>
            {
                // RFC 4475 §3.3.9: never choose among several values.
                if self.content_length.is_some() {
                    return Err(Error::ConflictingContentLength);
                }
                self.content_length = Some(parse_content_length(value)?);
                return Ok(());
            }
            None => HeaderName::from_wire(name_text),
        };
        let single_bit = match name {
            HeaderName::From => 1,
            HeaderName::To => 2,
            HeaderName::CallId => 4,
            HeaderName::CSeq => 8,
            HeaderName::MaxForwards => 16,
            HeaderName::ContentType => 32,
            _ => 0,
        };
        if single_bit != 0 {
            if self.seen_single & single_bit != 0 {
                return Err(Error::DuplicateHeader {
                    header: static_name(&name),
                });
            }
            self.seen_single |= single_bit;
        }
        parse_header_value(name, value, &mut self.headers.0)
    }
}

/// The header name `line` starts with, and its length, when it is a known name spelled
/// canonically and directly followed by `:` (what [`HeaderName::from_wire`] gives for it).
fn canonical_name(line: &[u8]) -> Option<(HeaderName, usize)> {
    // Each arm compares a fixed number of bytes, `:` included, so that no compare runs past
    // the name.
    let known = |spelling: &'static [u8], name: HeaderName| {
        line.starts_with(spelling)
            .then_some((name, spelling.len() - 1))
    };
    match *line.first()? {
        b'V' => known(b"Via:", HeaderName::Via),
        b'F' => known(b"From:", HeaderName::From),
        b'T' => known(b"To:", HeaderName::To),
        b'C' => match line.get(1..3)? {
            b"al" => known(b"Call-ID:", HeaderName::CallId),
            b"Se" => known(b"CSeq:", HeaderName::CSeq),
            b"on" => known(b"Contact:", HeaderName::Contact)
                .or_else(|| known(b"Content-Type:", HeaderName::ContentType)),
            _ => None,
        },
        b'M' => known(b"Max-Forwards:", HeaderName::MaxForwards),
        b'R' => match line.get(1..3)? {
            b"ou" => known(b"Route:", HeaderName::Route),
            b"ec" => known(b"Record-Route:", HeaderName::RecordRoute),
            b"eq" => known(b"Require:", HeaderName::Require),
            b"ea" => known(b"Reason:", HeaderName::Reason),
            _ => None,
        },
        b'A' => known(b"Allow:", HeaderName::Allow),
        b'S' => known(b"Supported:", HeaderName::Supported)
            .or_else(|| known(b"Subject:", HeaderName::Subject)),
        b'U' => known(b"User-Agent:", HeaderName::UserAgent),
        b'P' => known(b"P-Asserted-Identity:", HeaderName::PAssertedIdentity),
        _ => None,
    }
}

fn parse_content_length(value: &str) -> Result<usize, Error> {
    super::text::parse_digits(value)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::InvalidContentLength {
            value: value.to_owned(),
        })
}

fn static_name(name: &HeaderName) -> &'static str {
    match name {
        HeaderName::Via => "Via",
        HeaderName::From => "From",
        HeaderName::To => "To",
        HeaderName::CallId => "Call-ID",
        HeaderName::CSeq => "CSeq",
        HeaderName::Contact => "Contact",
        HeaderName::MaxForwards => "Max-Forwards",
        HeaderName::Route => "Route",
        HeaderName::RecordRoute => "Record-Route",
        HeaderName::ContentType => "Content-Type",
        HeaderName::Allow => "Allow",
        HeaderName::Supported => "Supported",
        HeaderName::Require => "Require",
        HeaderName::Reason => "Reason",
        HeaderName::PAssertedIdentity => "P-Asserted-Identity",
        HeaderName::UserAgent => "User-Agent",
        HeaderName::Subject => "Subject",
        HeaderName::Other(_) => "extension",
    }
}

/// Parses `value` by the grammar of `name`, pushing one entry per list element.
pub(crate) fn parse_header_value(
    name: HeaderName,
    value: &str,
    out: &mut Vec<Header>,
) -> Result<(), Error> {
    let header = static_name(&name);
    let bad = |reason| Error::InvalidHeaderValue { header, reason };
    match name {
        HeaderName::Via => {
            each(value, header, |part| {
                let v = Via::parse(part)?;
                out.push(Header::new(HeaderName::Via, HeaderValue::Via(v)));
                Ok(())
            })?;
        }
        HeaderName::From | HeaderName::To => {
            let v = NameAddr::parse(value, header)?;
            out.push(Header::new(name, HeaderValue::NameAddr(v)));
        }
        HeaderName::Route | HeaderName::RecordRoute | HeaderName::PAssertedIdentity => {
            each(value, header, |part| {
                let v = NameAddr::parse(part, header)?;
                out.push(Header::new(name.clone(), HeaderValue::NameAddr(v)));
                Ok(())
            })?;
        }
        HeaderName::Contact => {
            if value == "*" {
                out.push(Header::new(name, HeaderValue::Contact(Contact::Star)));
            } else {
                each(value, header, |part| {
                    let v = Contact::Addr(NameAddr::parse(part, header)?);
                    out.push(Header::new(HeaderName::Contact, HeaderValue::Contact(v)));
                    Ok(())
                })?;
            }
        }
        HeaderName::CSeq => out.push(Header::new(name, HeaderValue::CSeq(CSeq::parse(value)?))),
        HeaderName::MaxForwards => {
            let n = parse_digits_u32(value).ok_or(bad("not a decimal number"))?;
            out.push(Header::new(name, HeaderValue::Number(n)));
        }
        HeaderName::ContentType => {
            out.push(Header::new(
                name,
                HeaderValue::MediaType(MediaType::parse(value)?),
            ));
        }
        HeaderName::Allow | HeaderName::Supported | HeaderName::Require => {
            // A list written as the printer writes it (`a, b, c`) is checked in one byte walk
            // and copied once; anything else takes the element-by-element path.
            if is_canonical_token_list(value.as_bytes()) {
                out.push(Header::new(
                    name,
                    HeaderValue::Tokens(TokenList::from_canonical(value)),
                ));
                return Ok(());
            }
            let mut tokens = TokenList::with_capacity(value.len());
            if !value.is_empty() {
                each(value, header, |part| {
                    let t = trim_lws(part);
                    if !is_token(t) {
                        return Err(bad("list element is not a token"));
                    }
                    tokens.push(t);
                    Ok(())
                })?;
            }
            out.push(Header::new(name, HeaderValue::Tokens(tokens)));
        }
        HeaderName::Reason => {
            each(value, header, |part| {
                let v = Reason::parse(part)?;
                out.push(Header::new(HeaderName::Reason, HeaderValue::Reason(v)));
                Ok(())
            })?;
        }
        HeaderName::CallId => {
            // RFC 3261 §25.1 callid = word [ "@" word ]: no whitespace, not empty.
            if value.is_empty() || value.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(bad("Call-ID must be a non-empty word without whitespace"));
            }
            out.push(Header::new(name, HeaderValue::Text(value.into())));
        }
        _ => out.push(Header::new(name, HeaderValue::Text(value.into()))),
    }
    Ok(())
}

/// Whether `b` is exactly `token *( ", " token )`.
fn is_canonical_token_list(b: &[u8]) -> bool {
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        if b.get(i..i + 2) != Some(b", ") {
            return false;
        }
        i += 2;
    }
}

/// Calls `f` on every element of the comma list `value`, in order. An empty element is an
/// error that wins over any error `f` reports for an element before or after it.
fn each<'v>(
    value: &'v str,
    header: &'static str,
    mut f: impl FnMut(&'v str) -> Result<(), Error>,
) -> Result<(), Error> {
    let empty = || Error::InvalidHeaderValue {
        header,
        reason: "empty element in a comma-separated list",
    };
    let mut parts = top_level_commas(value);
    while let Some(part) = parts.next() {
        if trim_lws(part).is_empty() {
            return Err(empty());
        }
        if let Err(e) = f(part) {
            return Err(if parts.any(|p| trim_lws(p).is_empty()) {
                empty()
            } else {
                e
            });
        }
    }
    Ok(())
}

fn parse_start_line(line: &str) -> Result<StartLine, Error> {
    let bad = |reason| Error::InvalidStartLine { reason };
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = line
            .split_once(' ')
            .ok_or(bad("status line without code"))?;
        check_version(version)?;
        let code = rest
            .get(..3)
            .ok_or(bad("status code must be three digits"))?;
        let after = &rest[3..];
        if !code.bytes().all(|b| b.is_ascii_digit())
            || !(after.is_empty() || after.starts_with(' '))
        {
            return Err(bad("status code must be three digits"));
        }
        let code: u16 = code
            .parse()
            .map_err(|_| bad("status code must be three digits"))?;
        if !(100..=699).contains(&code) {
            return Err(bad("status code outside 100-699"));
        }
        let reason = after.strip_prefix(' ').unwrap_or(after);
        return Ok(StartLine::Response {
            status: StatusCode(code),
            reason: reason.to_owned(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (exactly single spaces, §7.1)
    let three_parts = || {
        let (method, rest) = split_once_byte(line, b' ')?;
        let (uri, version) = split_once_byte(rest, b' ')?;
        (find_byte(version, b' ').is_none()).then_some((method, uri, version))
    };
    let Some((method, uri, version)) = three_parts() else {
        return Err(bad(
            "request line must have exactly three parts separated by single spaces",
        ));
    };
    let method = Method::parse(method).ok_or(bad("method is not a token"))?;
    check_version(version)?;
    let uri = Uri::parse(uri)?;
    Ok(StartLine::Request { method, uri })
}

fn check_version(version: &str) -> Result<(), Error> {
    // RFC 3261 §7.1: the version string is case-insensitive.
    if version == "SIP/2.0" || version.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else if version
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        Err(Error::UnsupportedVersion {
            version: version.to_owned(),
        })
    } else {
        Err(Error::InvalidStartLine {
            reason: "missing SIP/2.0 version",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{CrlfLines, LineEnds, RecordedLines};

    #[test]
    fn one_walk_finds_the_head_end_and_the_lines_a_search_and_a_split_find() {
        let alphabet = [b'a', b'\r', b'\n'];
        let mut found = 0;
        for len in 0..=10u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut bytes, mut k) = (Vec::new(), n);
                for _ in 0..len {
                    bytes.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let mut ends = LineEnds {
                    ends: [0; LineEnds::CAPACITY],
                    bare: 0,
                    len: 0,
                    overflow: false,
                };
                let ours = ends.split(&bytes);
                let search = bytes.windows(4).position(|w| w == b"\r\n\r\n");
                assert_eq!(ours, search, "{bytes:?}");
                let Some(head_end) = ours else { continue };
                let Ok(text) = std::str::from_utf8(&bytes[..head_end]) else {
                    continue;
                };
                let recorded: Vec<(&str, bool)> = RecordedLines {
                    text,
                    ends: &ends.ends[..ends.len],
                    bare: ends.bare,
                    start: 0,
                    index: 0,
                }
                .collect();
                let split: Vec<(&str, bool)> = CrlfLines { rest: Some(text) }.collect();
                assert_eq!(recorded, split, "{bytes:?}");
                assert!(!ends.overflow);
                found += 1;
            }
        }
        assert!(found > 1000, "{found}");
    }

    #[test]
    fn a_head_of_more_lines_than_recorded_is_split_again() {
        let mut bytes = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..100 {
            bytes.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\nbody");
        let limits = super::Limits::default();
        let head = super::parse_head_of(&bytes, &limits).unwrap();
        let end = head.end;
        assert_eq!(&bytes[end..end + 4], b"\r\n\r\n");
        let again = super::parse_head(&bytes[..end], &limits).unwrap();
        assert_eq!(head.headers, again.headers);
        assert_eq!(head.headers.len(), 100);
    }

    #[test]
    fn canonical_names_are_what_the_wire_names_resolve_to() {
        use super::{HeaderName, canonical_name};
        let mut known = 0;
        for name in [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Content-Type",
            "Max-Forwards",
            "Route",
            "Record-Route",
            "Require",
            "Reason",
            "Allow",
            "Supported",
            "Subject",
            "User-Agent",
            "P-Asserted-Identity",
            "Content-Length",
            "Session-Expires",
            "Cseq",
            "VIA",
            "X-Via",
            "C",
            "Co",
            "Call",
            "Contact-X",
            "P-Asserted",
            "Subj",
        ] {
            let line = format!("{name}: x");
            let wire = HeaderName::from_wire(name);
            match canonical_name(line.as_bytes()) {
                Some((ours, len)) => {
                    assert_eq!((&ours, len), (&wire, name.len()), "{name}");
                    assert!(!matches!(wire, HeaderName::Other(_)));
                    known += 1;
                }
                None => assert!(
                    matches!(wire, HeaderName::Other(_)) || wire.as_str() != name,
                    "{name}"
                ),
            }
            // Without the colon right after the name, nothing is recognised.
            assert_eq!(canonical_name(format!("{name} : x").as_bytes()), None);
            assert_eq!(canonical_name(name.as_bytes()), None);
        }
        assert_eq!(known, 17);
    }

    #[test]
    fn canonical_token_lists_are_recognised_exactly() {
        for (text, ok) in [
            ("INVITE", true),
            ("INVITE, ACK, BYE", true),
            ("", false),
            ("INVITE,ACK", false),
            ("INVITE,  ACK", false),
            ("INVITE, ", false),
            (", ACK", false),
            ("INVITE ,ACK", false),
            ("IN VITE", false),
            ("100rel, timer", true),
        ] {
            assert_eq!(
                super::is_canonical_token_list(text.as_bytes()),
                ok,
                "{text:?}"
            );
        }
    }

    #[test]
    fn crlf_lines_split_exactly_like_str_split() {
        for text in [
            "",
            "a",
            "a\r\n",
            "a\r\nb",
            "a\nb\r\nc",
            "a\rb\r\n\r\nc\r",
            "\r\n\r\n",
            "x\r\r\ny\n\r\n",
        ] {
            let ours: Vec<(&str, bool)> = CrlfLines { rest: Some(text) }.collect();
            let std: Vec<(&str, bool)> = text
                .split("\r\n")
                .map(|l| (l, l.contains(['\r', '\n'])))
                .collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }
}
