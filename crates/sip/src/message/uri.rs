//! SIP and SIPS URIs (RFC 3261 §19.1) with RFC 5118 IPv6 references; other schemes
//! (`tel:`, `urn:`) are kept as opaque absolute URIs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use compact_str::CompactString;

use super::params::{Params, parse_params};
use super::text::{find_byte, split_once_byte};
use crate::error::Error;

/// A host: domain name, IPv4 address or bracketed IPv6 reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A hostname, kept as written (compare with `eq_ignore_ascii_case`).
    Domain(CompactString),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address; printed in brackets (RFC 5118 §4.1).
    V6(Ipv6Addr),
}

impl Host {
    /// The IP address, if the host is an address literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }
    /// Parses a host (no port). IPv6 must be bracketed; `std::net::Ipv6Addr` validates the
    /// inside, which rejects RFC 5118 §4.10's three-colon form.
    #[inline]
    pub fn parse(s: &str) -> Result<Host, Error> {
        let bad = |reason| Error::InvalidUri { reason };
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(bad("unterminated IPv6 reference"))?;
            return parse_ipv6_plain(inner)
                .or_else(|| inner.parse::<Ipv6Addr>().ok())
                .map(Host::V6)
                .ok_or(bad("invalid IPv6 address in brackets"));
        }
        if s.is_empty() {
            return Err(bad("empty host"));
        }
        // An address (the usual Via sent-by) is read in one walk; what is not one is classified.
        if s.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && let Some(a) = parse_ipv4(s)
        {
            return Ok(Host::V4(a));
        }
        // One pass: every byte a host character, and whether all are digits or dots (the
        // classes OR together: 1 digit or dot, 2 letter or `-`, 4 anything else).
        let seen = s
            .bytes()
            .fold(0u8, |seen, b| seen | HOST_CLASS[usize::from(b)]);
        if seen & 4 != 0 {
            return Err(bad("invalid character in host (IPv6 must be in brackets)"));
        }
        if seen == 1 {
            return parse_ipv4(s)
                .map(Host::V4)
                .ok_or(bad("invalid IPv4 address"));
        }
        Ok(Host::Domain(CompactString::new(s)))
    }
    /// Whether `ip` is this host's literal address.
    pub fn is_ip(&self, ip: IpAddr) -> bool {
        self.ip() == Some(ip)
    }
}

/// Host bytes by class for [`Host::parse`]: 1 digit or `.`, 2 letter or `-`, 4 not allowed.
static HOST_CLASS: [u8; 256] = {
    let mut t = [4u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_digit() || b == b'.' {
            t[i] = 1;
        } else if b.is_ascii_alphabetic() || b == b'-' {
            t[i] = 2;
        }
        i += 1;
    }
    t
};

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses `host [":" port]` where host may be an IPv6 reference.
#[inline]
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), Error> {
    let bad = |reason| Error::InvalidUri { reason };
    let (host_str, port_str) = if s.starts_with('[') {
        let close = find_byte(s, b']').ok_or(bad("unterminated IPv6 reference"))?;
        let after = &s[close + 1..];
        match after.strip_prefix(':') {
            Some(p) => (&s[..=close], Some(p)),
            None if after.is_empty() => (s, None),
            None => return Err(bad("garbage after IPv6 reference")),
        }
    } else {
        match split_once_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host = Host::parse(host_str)?;
    let port = match port_str {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            // Leading zeros are allowed (as `u16::from_str` allows them); the value saturates.
            let n = p.bytes().fold(0u32, |n, b| {
                (n * 10 + u32::from(b - b'0')).min(u32::from(u16::MAX) + 1)
            });
            Some(u16::try_from(n).map_err(|_| bad("port out of range"))?)
        }
        Some(_) => return Err(bad("invalid port")),
    };
    Ok((host, port))
}

/// `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (RFC 3261 §19.1: TLS on every hop)
    Sips,
}

/// A SIP or SIPS URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// Scheme.
    pub scheme: Scheme,
    /// User part as written (percent escapes kept).
    pub user: Option<CompactString>,
    /// Password as written (deprecated by RFC 3261 §19.1.1, kept for fidelity).
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// URI headers after `?`, as written (without the `?`).
    pub headers: Option<String>,
}

impl SipUri {
    /// A plain `sip:` URI.
    pub fn new(user: Option<&str>, host: Host, port: Option<u16>) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: user.map(CompactString::new),
            password: None,
            host,
            port,
            params: Params::new(),
            headers: None,
        }
    }
    /// Whether the URI carries `;lr` (RFC 3261 §19.1.1 loose routing).
    pub fn is_loose_route(&self) -> bool {
        self.params.contains("lr")
    }
}

/// URI bytes by class for [`Uri::parse`]'s one pass (every byte of every URI is classified).
static URI_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b <= b' ' as usize {
        t[b] = NOT_IN_SIP_URI;
        b += 1;
    }
    t[b'<' as usize] = NOT_IN_SIP_URI;
    t[b'>' as usize] = NOT_IN_SIP_URI;
    t[b'"' as usize] = NOT_IN_SIP_URI;
    t[b'@' as usize] = AT;
    t[b';' as usize] = SEMI;
    t[b'?' as usize] = QUESTION;
    t
};
/// Bytes a SIP URI never holds unescaped: controls, space, `<`, `>`, `"`.
const NOT_IN_SIP_URI: u8 = 1;
const AT: u8 = 2;
const SEMI: u8 = 3;
const QUESTION: u8 = 4;

/// A URI as found in a Request-Line or name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` / `sips:`
    Sip(SipUri),
    /// Any other absolute URI (`tel:+1555...`), kept as written.
    Other(String),
}

impl Uri {
    /// Parses a URI (no surrounding `<>`).
    pub fn parse(s: &str) -> Result<Uri, Error> {
        let bad = |reason| Error::InvalidUri { reason };
        let colon = find_byte(s, b':').ok_or(bad("no scheme"))?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else {
            // RFC 3986 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
            let ok = scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            if !ok || rest.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>') {
                return Err(bad("invalid absolute URI"));
            }
            return Ok(Uri::Other(s.to_owned()));
        };
        // One pass: reject the bytes a SIP URI never holds unescaped, and find the first `@`
        // and, after it, the first `;` and `?`. `@` cannot appear unescaped in URI headers or
        // params, so the first one ends userinfo.
        let (mut at, mut semi, mut question) = (None, None, None);
        for (i, &b) in rest.as_bytes().iter().enumerate() {
            match URI_CLASS[usize::from(b)] {
                0 => {}
                NOT_IN_SIP_URI => return Err(bad("whitespace or delimiter inside a SIP URI")),
                AT if at.is_none() => (at, semi, question) = (Some(i), None, None),
                SEMI if semi.is_none() => semi = Some(i),
                QUESTION if question.is_none() => question = Some(i),
                _ => {}
            }
        }
        let (userinfo, host_start) = match at {
            Some(at) => (Some(&rest[..at]), at + 1),
            None => (None, 0),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some("") => return Err(bad("empty user part")),
            Some(ui) => match split_once_byte(ui, b':') {
                Some((u, p)) => (Some(CompactString::new(u)), Some(p.to_owned())),
                None => (Some(CompactString::new(ui)), None),
            },
        };
        let (before_headers, headers) = match question {
            Some(q) => (&rest[host_start..q], Some(rest[q + 1..].to_owned())),
            None => (&rest[host_start..], None),
        };
        // A `;` after the `?` belongs to the headers.
        let (hostport, params) = match semi.filter(|&i| question.is_none_or(|q| i < q)) {
            Some(i) => (&rest[host_start..i], &before_headers[i - host_start..]),
            None => (before_headers, ""),
        };
        let (host, port) = parse_hostport(hostport)?;
        let params = parse_params(params, "URI").map_err(|_| bad("invalid URI parameter"))?;
        Ok(Uri::Sip(SipUri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        }))
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }
    /// Mutable access to the SIP URI, if this is one.
    pub fn as_sip_mut(&mut self) -> Option<&mut SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Uri::Other(s) => out.extend_from_slice(s.as_bytes()),
            Uri::Sip(u) => {
                // One fixed-length copy per arm: a few stores rather than a call.
                match u.scheme {
                    Scheme::Sip => out.extend_from_slice(b"sip:"),
                    Scheme::Sips => out.extend_from_slice(b"sips:"),
                }
                if let Some(user) = &u.user {
                    out.extend_from_slice(user.as_bytes());
                    if let Some(pw) = &u.password {
                        out.push(b':');
                        out.extend_from_slice(pw.as_bytes());
                    }
                    out.push(b'@');
                }
                write_host(out, &u.host);
                if let Some(port) = u.port {
                    out.push(b':');
                    push_u32(out, u32::from(port));
                }
                u.params.write(out);
                if let Some(h) = &u.headers {
                    out.push(b'?');
                    out.extend_from_slice(h.as_bytes());
                }
            }
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::text::printed(|out| self.write(out)))
    }
}

impl std::str::FromStr for Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Uri::parse(s)
    }
}

pub(crate) fn write_host(out: &mut Vec<u8>, host: &Host) {
    match host {
        Host::Domain(d) => out.extend_from_slice(d.as_bytes()),
        Host::V4(a) => {
            // Built on the stack from a table of the 256 octets, copied whole (a fixed-length
            // copy is a few stores, not a call) and cut to its length.
            let mut buf = [0u8; 16];
            let mut len = 0;
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let [n, d0, d1, d2] = OCTETS[usize::from(o)];
                buf[len..len + 3].copy_from_slice(&[d0, d1, d2]);
                len += usize::from(n);
            }
            let at = out.len();
            out.extend_from_slice(&buf);
            out.truncate(at + len);
        }
        Host::V6(a) => {
            out.push(b'[');
            write_ipv6(out, *a);
            out.push(b']');
        }
    }
}

/// The decimal digits of every octet, left-aligned after their count: `[2, b'4', b'2', 0]`.
static OCTETS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let o = i as u8;
        t[i] = if o >= 100 {
            [3, b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10]
        } else if o >= 10 {
            [2, b'0' + o / 10, b'0' + o % 10, 0]
        } else {
            [1, b'0' + o, 0, 0]
        };
        i += 1;
    }
    t
};

/// Writes `a` as `Ipv6Addr`'s `Display` does (RFC 5952: lowercase hex, the first longest run
/// of two or more zero groups as `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`), without
/// going through `fmt`.
fn write_ipv6(out: &mut Vec<u8>, a: Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        write_host(out, &Host::V4(v4));
        return;
    }
    let groups = a.segments();
    // The first longest run of zero groups.
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, g) in groups.iter().enumerate() {
        if *g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let hex = |out: &mut Vec<u8>, part: &[u16]| {
        for (i, g) in part.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            let mut started = false;
            for shift in [12u16, 8, 4, 0] {
                let d = (g >> shift) & 0xf;
                if started || d != 0 || shift == 0 {
                    out.push(b"0123456789abcdef"[usize::from(d)]);
                    started = true;
                }
            }
        }
    };
    if best_len > 1 {
        hex(out, &groups[..best]);
        out.extend_from_slice(b"::");
        hex(out, &groups[best + best_len..]);
    } else {
        hex(out, &groups);
    }
}

/// Pushes the decimal `n` without going through `fmt`: ports, IPv4 octets, CSeq numbers and
/// lengths are printed for every message, and most have at most four digits, written two at
/// a time.
pub(crate) fn push_u32(out: &mut Vec<u8>, n: u32) {
    if n >= 10_000 {
        push_u32(out, n / 10_000);
        let low = n % 10_000;
        out.extend_from_slice(pair(low / 100).as_bytes());
        out.extend_from_slice(pair(low % 100).as_bytes());
    } else if n >= 1000 {
        out.extend_from_slice(pair(n / 100).as_bytes());
        out.extend_from_slice(pair(n % 100).as_bytes());
    } else if n >= 100 {
        out.push(b'0' + (n / 100) as u8);
        out.extend_from_slice(pair(n % 100).as_bytes());
    } else if n >= 10 {
        out.extend_from_slice(pair(n).as_bytes());
    } else {
        out.push(b'0' + n as u8);
    }
}

/// The two digits of `n` (< 100), zero-padded.
fn pair(n: u32) -> &'static str {
    const PAIRS: &str = "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
                         5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let i = (n as usize % 100) * 2;
    PAIRS.get(i..i + 2).unwrap_or("00")
}

/// Parses a dotted-quad IPv4 address exactly as `Ipv4Addr::from_str` does (four decimal
/// octets of one to three digits, no leading zeros, each at most 255), in one pass.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit() && i - start < 3) {
            value = value * 10 + u32::from(d - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || (digits > 1 && b.get(start) == Some(&b'0')) {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == b.len()).then(|| Ipv4Addr::from(octets))
}

/// Parses the common IPv6 forms (hex groups with at most one `::`, no embedded IPv4) in one
/// pass; `None` for anything else, which `Ipv6Addr::from_str` then decides. What this accepts,
/// the standard parser accepts with the same value.
fn parse_ipv6_plain(s: &str) -> Option<Ipv6Addr> {
    let b = s.as_bytes();
    let mut groups = [0u16; 8];
    let (mut n, mut gap) = (0usize, None);
    let mut i = 0;
    if b.starts_with(b"::") {
        gap = Some(0);
        i = 2;
        if i == b.len() {
            return Some(Ipv6Addr::UNSPECIFIED);
        }
    }
    loop {
        let start = i;
        let mut value = 0u16;
        while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(16)) {
            if i - start == 4 {
                return None;
            }
            value = (value << 4) | d as u16;
            i += 1;
        }
        if i == start {
            return None;
        }
        *groups.get_mut(n)? = value;
        n += 1;
        match b.get(i) {
            None => break,
            Some(b':') if b.get(i + 1) == Some(&b':') && gap.is_none() => {
                gap = Some(n);
                i += 2;
                if i == b.len() {
                    break;
                }
            }
            Some(b':') => i += 1,
            Some(_) => return None,
        }
    }
    match gap {
        None if n == 8 => Some(Ipv6Addr::from(groups)),
        // `::` stands for at least one zero group.
        Some(at) if n < 8 => {
            let tail = n - at;
            groups.copy_within(at..n, 8 - tail);
            groups.get_mut(at..8 - tail)?.fill(0);
            Some(Ipv6Addr::from(groups))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_ipv4, parse_ipv6_plain, push_u32, write_host, write_ipv6};
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv6_prints_exactly_like_std_display() {
        let values = [0u16, 1, 0xab, 0xffff];
        for n in 0..values.len().pow(8) {
            let mut groups = [0u16; 8];
            let mut k = n;
            for g in &mut groups {
                *g = values[k % values.len()];
                k /= values.len();
            }
            let a = Ipv6Addr::from(groups);
            let mut ours = Vec::new();
            write_ipv6(&mut ours, a);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                a.to_string(),
                "{groups:?}"
            );
        }
        for a in [
            "::ffff:192.0.2.1",
            "2001:db8::9",
            "::",
            "::1",
            "1::",
            "fe80::1:0:0:1",
        ] {
            let a: Ipv6Addr = a.parse().unwrap();
            let mut ours = Vec::new();
            write_ipv6(&mut ours, a);
            assert_eq!(String::from_utf8(ours).unwrap(), a.to_string());
        }
    }

    #[test]
    fn ipv6_plain_forms_parse_like_std() {
        let accepted_by_both = |s: &str| {
            let ours = parse_ipv6_plain(s);
            if let Some(a) = ours {
                assert_eq!(Ok(a), s.parse::<Ipv6Addr>(), "{s:?}");
            }
            usize::from(ours.is_some())
        };
        let alphabet = ['0', 'F', ':', 'a'];
        let mut accepted = 0;
        for len in 0..=10u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut s, mut k) = (String::new(), n);
                for _ in 0..len {
                    s.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                accepted += accepted_by_both(&s);
            }
        }
        // Every split of up to 9 groups around an optional `::`, with short and long groups.
        for head in 0..=9usize {
            for tail in 0..=9usize {
                for group in ["1", "ab", "0db8", "fFfF", "12345", "g"] {
                    let join = |n: usize| vec![group; n].join(":");
                    accepted += accepted_by_both(&format!("{}::{}", join(head), join(tail)));
                    if tail == 0 {
                        accepted += accepted_by_both(&join(head));
                    }
                }
            }
        }
        assert!(accepted > 2000, "{accepted}");
        assert_eq!(parse_ipv6_plain("2001:db8::9"), "2001:db8::9".parse().ok());
        assert_eq!(parse_ipv6_plain("::ffff:192.0.2.1"), None);
    }

    #[test]
    fn ipv4_parses_exactly_like_std_on_every_short_digit_and_dot_string() {
        let alphabet = ['0', '1', '2', '5', '6', '9', '.'];
        let mut accepted = 0;
        for len in 0..=8u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut s, mut k) = (String::new(), n);
                for _ in 0..len {
                    s.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let ours = parse_ipv4(&s);
                assert_eq!(ours, s.parse::<Ipv4Addr>().ok(), "{s:?}");
                accepted += usize::from(ours.is_some());
            }
        }
        assert!(accepted > 1000);
        for s in [
            "255.255.255.255",
            "256.1.1.1",
            "1.1.1.1000",
            "192.0.2.33",
            "01.2.3.4",
            "1.2.3.04",
        ] {
            assert_eq!(parse_ipv4(s), s.parse::<Ipv4Addr>().ok(), "{s:?}");
        }
    }

    #[test]
    fn ipv4_hosts_print_like_display() {
        for a in 0..=255u8 {
            for b in [0u8, 7, 42, 255] {
                let ip = Ipv4Addr::new(a, b, 255 - a, 255 - b);
                let mut s = Vec::new();
                write_host(&mut s, &super::Host::V4(ip));
                assert_eq!(s, ip.to_string().as_bytes());
            }
        }
    }

    #[test]
    fn push_u32_prints_like_display() {
        for n in (0..20_000).chain([99_999, 100_000, 123_456_789, u32::MAX]) {
            let mut s = Vec::new();
            push_u32(&mut s, n);
            assert_eq!(s, n.to_string().as_bytes());
        }
    }
}
