//! Typed header values: Via, name-addr (From/To/Contact/Route/…), CSeq, media type, Reason.
//! Each parses from the unfolded header text and writes its canonical form.

use std::borrow::Cow;

use compact_str::CompactString;

use super::Method;
use super::params::{Params, parse_params};
use super::text::{find_byte, parse_quoted, trim_lws, write_quoted};
use super::uri::{Host, Uri, parse_hostport, push_u32, write_host};
use crate::error::Error;

/// RFC 3261 §8.1.1.7 magic cookie that marks RFC 3261 branch ids.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// The `rport` parameter of a Via (RFC 3581).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    /// `;rport` without a value: the client asks for it to be filled in.
    Requested,
    /// `;rport=N` as filled in by a server.
    Port(u16),
}

/// One Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token in upper case (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`…).
    pub transport: Cow<'static, str>,
    /// sent-by host.
    pub host: Host,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// via-params in order (`branch`, `received`, `rport`, `maddr`, `ttl`, extensions).
    pub params: Params,
}

impl Via {
    /// A Via for `transport` from `host:port` with the given branch (include the cookie).
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        Self {
            transport: transport_token(transport),
            host,
            port,
            params,
        }
    }
    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }
    /// Whether the branch carries the RFC 3261 magic cookie (else RFC 2543 matching applies).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
    }
    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.params.get("received")
    }
    /// The `rport` parameter (RFC 3581 §4).
    pub fn rport(&self) -> Option<Rport> {
        let p = self.params.find("rport")?;
        match p.value {
            None => Some(Rport::Requested),
            Some(v) => v.parse().ok().map(Rport::Port),
        }
    }
    /// Parses one Via value: `SIP / 2.0 / UDP host[:port] *(;param)`; LWS allowed around `/`.
    pub fn parse(s: &str) -> Result<Via, Error> {
        let bad = |reason| Error::InvalidHeaderValue {
            header: "Via",
            reason,
        };
        let mut rest = trim_lws(s);
        let transport;
        if let Some(after) = rest
            .as_bytes()
            .get(..8)
            .filter(|p| p[..3].eq_ignore_ascii_case(b"SIP") && &p[3..] == b"/2.0/")
            .and_then(|_| rest.get(8..))
        {
            // The common `SIP/2.0/UDP` without LWS: the transport token is all that is left.
            let end = after
                .bytes()
                .position(|b| !super::text::is_token_byte(b))
                .unwrap_or(after.len());
            transport = &after[..end];
            rest = trim_lws(&after[end..]);
        } else {
            let mut parts = [""; 3];
            for (i, part) in parts.iter_mut().enumerate() {
                let end = rest
                    .bytes()
                    .position(|b| !super::text::is_token_byte(b))
                    .unwrap_or(rest.len());
                *part = &rest[..end];
                rest = trim_lws(&rest[end..]);
                if i < 2 {
                    rest = trim_lws(
                        rest.strip_prefix('/')
                            .ok_or(bad("expected `/` in sent-protocol"))?,
                    );
                }
            }
            if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
                return Err(bad("sent-protocol must be SIP/2.0"));
            }
            transport = parts[2];
        }
        if transport.is_empty() {
            return Err(bad("missing transport"));
        }
        let sent_by_end = memchr::memchr3(b';', b' ', b'\t', rest.as_bytes()).unwrap_or(rest.len());
        let (host, port) = parse_hostport(&rest[..sent_by_end])
            .map_err(|_| bad("invalid sent-by host or port"))?;
        let params = parse_params(&rest[sent_by_end..], "Via")?;
        Ok(Via {
            transport: transport_token(transport),
            host,
            port,
            params,
        })
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        // The usual transports as fixed-length copies (a few stores rather than a call).
        match self.transport.as_ref() {
            "UDP" => out.extend_from_slice(b"SIP/2.0/UDP"),
            "TCP" => out.extend_from_slice(b"SIP/2.0/TCP"),
            "TLS" => out.extend_from_slice(b"SIP/2.0/TLS"),
            other => {
                out.extend_from_slice(b"SIP/2.0/");
                out.extend_from_slice(other.as_bytes());
            }
        }
        out.push(b' ');
        write_host(out, &self.host);
        if let Some(p) = self.port {
            out.push(b':');
            push_u32(out, u32::from(p));
        }
        self.params.write(out);
    }
}

/// The transport token in upper case; the RFC 3261 §20.42 and RFC 7118 ones without an
/// allocation.
fn transport_token(t: &str) -> Cow<'static, str> {
    for known in ["UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "TLS-SCTP"] {
        if t.eq_ignore_ascii_case(known) {
            return Cow::Borrowed(known);
        }
    }
    Cow::Owned(t.to_ascii_uppercase())
}

/// A name-addr or addr-spec with header parameters (From, To, Contact, Route, Record-Route,
/// P-Asserted-Identity; RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, decoded (quotes and escapes removed); `None` if absent.
    pub display: Option<CompactString>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (`;tag=`, `;q=`, `;expires=`…).
    pub params: Params,
}

impl NameAddr {
    /// A name-addr without display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display: None,
            uri,
            params: Params::new(),
        }
    }
    /// The `tag` parameter (From/To, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag")
    }
    /// Sets the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }
    /// Parses one name-addr / addr-spec with its parameters.
    pub fn parse(s: &str, header: &'static str) -> Result<NameAddr, Error> {
        let bad = |reason| Error::InvalidHeaderValue { header, reason };
        let s = trim_lws(s);
        let (display, after_display) = if s.starts_with('"') {
            let (d, rest) = parse_quoted(s).ok_or(bad("unterminated quoted display name"))?;
            let rest = trim_lws(rest);
            if !rest.starts_with('<') {
                return Err(bad("a quoted display name must be followed by <URI>"));
            }
            (Some(d), rest)
        } else if let Some(lt) = find_byte(s, b'<') {
            let d = trim_lws(&s[..lt]);
            // RFC 3261 §25.1: display-name = *(token LWS) / quoted-string
            if !d
                .bytes()
                .all(|b| super::text::is_token_byte(b) || b == b' ' || b == b'\t')
            {
                return Err(bad("invalid unquoted display name"));
            }
            ((!d.is_empty()).then(|| CompactString::new(d)), &s[lt..])
        } else {
            (None, s)
        };
        let (uri_str, params_str) = if let Some(inner) = after_display.strip_prefix('<') {
            let gt = memchr::memchr(b'>', inner.as_bytes()).ok_or(bad("missing `>`"))?;
            (&inner[..gt], &inner[gt + 1..])
        } else {
            // addr-spec: parameters after the URI are header parameters (RFC 3261 §20.10),
            // and the URI itself cannot carry `;params`, `?headers` or `,`.
            match find_byte(after_display, b';') {
                Some(i) => (&after_display[..i], &after_display[i..]),
                None => (after_display, ""),
            }
        };
        let uri = Uri::parse(trim_lws(uri_str)).map_err(|e| match e {
            Error::InvalidUri { reason } => Error::InvalidHeaderValue { header, reason },
            other => other,
        })?;
        let params = parse_params(params_str, header)?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        if let Some(d) = &self.display {
            write_quoted(out, d);
            out.push(b' ');
        }
        out.push(b'<');
        self.uri.write(out);
        out.push(b'>');
        self.params.write(out);
    }
}

/// A Contact value: `*` (REGISTER only) or a name-addr (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *`
    Star,
    /// A contact address.
    Addr(NameAddr),
}

/// CSeq (RFC 3261 §20.16): sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31 per §8.1.1.5; accepted up to 2^32-1 on input).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; leading zeros allowed.
    pub fn parse(s: &str) -> Result<CSeq, Error> {
        let bad = |reason| Error::InvalidHeaderValue {
            header: "CSeq",
            reason,
        };
        let s = trim_lws(s);
        let end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        let seq = super::text::parse_digits_u32(&s[..end]).ok_or(bad("invalid sequence number"))?;
        let method = trim_lws(&s[end..]);
        if end == s.len() || !s[end..].starts_with([' ', '\t']) {
            return Err(bad("expected `number SP method`"));
        }
        let method = Method::parse(method).ok_or(bad("invalid method"))?;
        Ok(CSeq { seq, method })
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        push_u32(out, self.seq);
        out.push(b' ');
        self.method.write(out);
    }
}

/// A media type with parameters (Content-Type, RFC 3261 §20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Type, e.g. `application`.
    pub ty: Cow<'static, str>,
    /// Subtype, e.g. `sdp`.
    pub subtype: Cow<'static, str>,
    /// Parameters (`boundary`, `charset`).
    pub params: Params,
}

impl MediaType {
    /// `application/sdp`.
    pub fn sdp() -> Self {
        Self {
            ty: "application".into(),
            subtype: "sdp".into(),
            params: Params::new(),
        }
    }
    /// Whether this is `type/subtype` (case-insensitive).
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }
    /// Parses `type / subtype *(; param)`.
    pub fn parse(s: &str) -> Result<MediaType, Error> {
        let bad = |reason| Error::InvalidHeaderValue {
            header: "Content-Type",
            reason,
        };
        let s = trim_lws(s);
        // The type of nearly every body this gateway sees, written as the printer writes it.
        if s == "application/sdp" {
            return Ok(MediaType::sdp());
        }
        let slash = find_byte(s, b'/').ok_or(bad("expected type/subtype"))?;
        let ty = trim_lws(&s[..slash]);
        let rest = trim_lws(&s[slash + 1..]);
        let end = rest
            .bytes()
            .position(|b| !super::text::is_token_byte(b))
            .unwrap_or(rest.len());
        let subtype = &rest[..end];
        if !super::text::is_token(ty) || subtype.is_empty() {
            return Err(bad("invalid type or subtype token"));
        }
        let params = parse_params(&rest[end..], "Content-Type")?;
        Ok(MediaType {
            ty: media_token(ty, &["application", "multipart", "message", "text"]),
            subtype: media_token(
                subtype,
                &["sdp", "mixed", "alternative", "related", "plain"],
            ),
            params,
        })
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.ty.as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.subtype.as_bytes());
        self.params.write(out);
    }
}

/// `token` as written; without an allocation when it is one of `known` spelled that way.
fn media_token(token: &str, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == token) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(token.to_owned()),
    }
}

/// The comma-separated tokens of an Allow, Supported, Require or Unsupported line, kept as
/// their printed text (`INVITE, ACK, BYE`): one allocation however many tokens there are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenList {
    text: CompactString,
}

impl TokenList {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            text: CompactString::with_capacity(n),
        }
    }
    /// The list from text already in its printed form (`a, b, c`, checked by the caller).
    pub(crate) fn from_canonical(text: &str) -> Self {
        Self {
            text: CompactString::new(text),
        }
    }
    /// Appends a token.
    pub fn push(&mut self, token: &str) {
        if !self.text.is_empty() {
            self.text.push_str(", ");
        }
        self.text.push_str(token);
    }
    /// The tokens in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        // Tokens hold neither `,` nor spaces (RFC 3261 §25.1), so `, ` separates them.
        self.text.split(", ").filter(|t| !t.is_empty())
    }
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
    /// The list as printed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<S: AsRef<str>> FromIterator<S> for TokenList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut list = TokenList::new();
        for t in iter {
            list.push(t.as_ref());
        }
        list
    }
}

/// A Reason value (RFC 3326): `SIP;cause=487;text="..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Protocol token (`SIP`, `Q.850`).
    pub protocol: String,
    /// Parameters (`cause`, `text`).
    pub params: Params,
}

impl Reason {
    /// `SIP;cause=<cause>;text="<text>"`.
    pub fn sip(cause: u16, text: &str) -> Self {
        let mut params = Params::new();
        params.set("cause", Some(&cause.to_string()));
        let quoted = super::text::printed(|out| write_quoted(out, text));
        params.set("text", Some(&quoted));
        Self {
            protocol: "SIP".into(),
            params,
        }
    }
    /// The numeric cause, if present and numeric.
    pub fn cause(&self) -> Option<u16> {
        self.params.get("cause")?.parse().ok()
    }
    /// Parses `protocol *(; param)`.
    pub fn parse(s: &str) -> Result<Reason, Error> {
        let s = trim_lws(s);
        let end = s
            .bytes()
            .position(|b| !super::text::is_token_byte(b))
            .unwrap_or(s.len());
        if end == 0 {
            return Err(Error::InvalidHeaderValue {
                header: "Reason",
                reason: "missing protocol token",
            });
        }
        Ok(Reason {
            protocol: s[..end].to_owned(),
            params: parse_params(&s[end..], "Reason")?,
        })
    }
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.protocol.as_bytes());
        self.params.write(out);
    }
}
