//! Header names (with RFC 3261 §7.3.3 compact forms), typed values and the ordered header list
//! with its typed accessors.

use std::borrow::Cow;

use compact_str::CompactString;

use super::text::trim_lws;
use super::typed::{CSeq, Contact, MediaType, NameAddr, Reason, TokenList, Via};

/// A header name. Known names compare and print canonically; others keep their spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderName {
    /// Via (`v`)
    Via,
    /// From (`f`)
    From,
    /// To (`t`)
    To,
    /// Call-ID (`i`)
    CallId,
    /// CSeq
    CSeq,
    /// Contact (`m`)
    Contact,
    /// Max-Forwards
    MaxForwards,
    /// Route
    Route,
    /// Record-Route
    RecordRoute,
    /// Content-Type (`c`)
    ContentType,
    /// Allow
    Allow,
    /// Supported (`k`)
    Supported,
    /// Require
    Require,
    /// Reason (RFC 3326)
    Reason,
    /// P-Asserted-Identity (RFC 3325)
    PAssertedIdentity,
    /// User-Agent
    UserAgent,
    /// Subject (`s`)
    Subject,
    /// Any other header, name as written (or the long form of a known compact letter).
    /// Borrowed for the long forms and the common extension names spelled canonically.
    Other(Cow<'static, str>),
}

impl HeaderName {
    /// Canonical spelling.
    pub fn as_str(&self) -> &str {
        match self {
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
            HeaderName::Other(s) => s,
        }
    }
    /// Whether `self` names the header `name` (case-insensitive, compact forms resolved).
    pub fn is(&self, name: &str) -> bool {
        match self {
            HeaderName::Other(s) => s.eq_ignore_ascii_case(name),
            known => *known == HeaderName::from_wire(name),
        }
    }
    /// Resolves a name from the wire: case-insensitive, compact forms expanded. Returns
    /// `Other` with the name as written for unknown ones. Content-Length is `Other`
    /// here; the parser consumes it for framing before this point.
    pub fn from_wire(name: &str) -> HeaderName {
        let b = name.as_bytes();
        let Some(first) = b.first().map(u8::to_ascii_lowercase) else {
            return HeaderName::Other(Cow::Owned(String::new()));
        };
        if b.len() == 1 {
            let long = match first {
                b'v' => return HeaderName::Via,
                b'f' => return HeaderName::From,
                b't' => return HeaderName::To,
                b'i' => return HeaderName::CallId,
                b'm' => return HeaderName::Contact,
                b'c' => return HeaderName::ContentType,
                b'k' => return HeaderName::Supported,
                b's' => return HeaderName::Subject,
                b'l' => "Content-Length",
                b'e' => "Content-Encoding",
                b'o' => "Event",
                b'r' => "Refer-To",
                b'b' => "Referred-By",
                b'u' => "Allow-Events",
                b'x' => "Session-Expires",
                b'a' => "Accept-Contact",
                b'j' => "Reject-Contact",
                b'd' => "Request-Disposition",
                b'y' => "Identity",
                _ => return HeaderName::Other(Cow::Owned(name.to_owned())),
            };
            return HeaderName::Other(Cow::Borrowed(long));
        }
        // One candidate by length and first letter (two names share length 7 and `c`), so
        // a name is compared with at most one spelling.
        let candidate = match (b.len(), first) {
            (2, b't') => Some(("To", HeaderName::To)),
            (3, b'v') => Some(("Via", HeaderName::Via)),
            (4, b'f') => Some(("From", HeaderName::From)),
            (4, b'c') => Some(("CSeq", HeaderName::CSeq)),
            (5, b'r') => Some(("Route", HeaderName::Route)),
            (5, b'a') => Some(("Allow", HeaderName::Allow)),
            (6, b'r') => Some(("Reason", HeaderName::Reason)),
            (7, b'c') if b[1].eq_ignore_ascii_case(&b'a') => Some(("Call-ID", HeaderName::CallId)),
            (7, b'c') => Some(("Contact", HeaderName::Contact)),
            (7, b'r') => Some(("Require", HeaderName::Require)),
            (7, b's') => Some(("Subject", HeaderName::Subject)),
            (9, b's') => Some(("Supported", HeaderName::Supported)),
            (10, b'u') => Some(("User-Agent", HeaderName::UserAgent)),
            (12, b'm') => Some(("Max-Forwards", HeaderName::MaxForwards)),
            (12, b'r') => Some(("Record-Route", HeaderName::RecordRoute)),
            (12, b'c') => Some(("Content-Type", HeaderName::ContentType)),
            (19, b'p') => Some(("P-Asserted-Identity", HeaderName::PAssertedIdentity)),
            _ => None,
        };
        match candidate {
            // Names are nearly always written canonically: one exact compare, and only a
            // mismatch pays for the case-insensitive one.
            Some((spelling, known)) if spelling == name || spelling.eq_ignore_ascii_case(name) => {
                known
            }
            _ => HeaderName::Other(extension_name(name)),
        }
    }
}

/// An extension header name as written: borrowed when it is one of the common ones spelled
/// canonically, so that relaying them allocates nothing.
fn extension_name(name: &str) -> Cow<'static, str> {
    const COMMON: [&str; 24] = [
        "Session-Expires",
        "Min-SE",
        "Content-Length",
        "Content-Disposition",
        "Content-Encoding",
        "Expires",
        "Allow-Events",
        "Event",
        "Subscription-State",
        "Refer-To",
        "Referred-By",
        "Replaces",
        "Privacy",
        "P-Preferred-Identity",
        "Server",
        "Warning",
        "Retry-After",
        "Unsupported",
        "Accept",
        "Date",
        "Diversion",
        "RSeq",
        "RAck",
        "Timestamp",
    ];
    match COMMON.iter().find(|c| c.len() == name.len() && **c == name) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(name.to_owned()),
    }
}

/// A typed header value. Which variant a known header holds is fixed by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Via (one value per entry)
    Via(Via),
    /// From, To, Route, Record-Route, P-Asserted-Identity (one value per entry)
    NameAddr(NameAddr),
    /// Contact (one value per entry)
    Contact(Contact),
    /// CSeq
    CSeq(CSeq),
    /// Max-Forwards
    Number(u32),
    /// Content-Type
    MediaType(MediaType),
    /// Allow, Supported, Require: the comma-separated tokens of one line
    Tokens(TokenList),
    /// Reason (one value per entry)
    Reason(Reason),
    /// Call-ID, User-Agent, Subject and every unknown header: the unfolded text (short
    /// values are held inline, without an allocation)
    Text(CompactString),
}

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name.
    pub name: HeaderName,
    /// Value.
    pub value: HeaderValue,
}

impl Header {
    /// A header with a typed value.
    pub fn new(name: HeaderName, value: HeaderValue) -> Self {
        Self { name, value }
    }
    /// Parses `value` with the grammar of `name` (one value; no comma list).
    pub fn parse(name: HeaderName, value: &str) -> Result<Header, crate::Error> {
        let mut out = Vec::with_capacity(1);
        super::parse::parse_header_value(name, value, &mut out)?;
        out.pop().ok_or(crate::Error::InvalidHeaderValue {
            header: "header",
            reason: "empty value",
        })
    }
}

/// Headers in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self(Vec::new())
    }
    /// Number of header entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Iterates entries in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }
    /// Appends an entry.
    pub fn push(&mut self, name: HeaderName, value: HeaderValue) {
        self.0.push(Header { name, value });
    }
    /// Inserts an entry before all others of the same name (e.g. a new top Via), or at the
    /// end if there is none.
    pub fn push_first(&mut self, name: HeaderName, value: HeaderValue) {
        let at = self
            .0
            .iter()
            .position(|h| h.name == name)
            .unwrap_or(self.0.len());
        self.0.insert(at, Header { name, value });
    }
    /// Removes every entry named `name`; returns how many were removed.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| h.name != *name);
        before - self.0.len()
    }
    /// Replaces all entries named `name` by one, at the position of the first (else appended).
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = 0usize;
                self.0.retain(|h| {
                    if h.name == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.0.push(Header { name, value }),
        }
    }
    /// Values of all entries named `name`.
    pub fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a HeaderValue> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name == *name)
            .map(|h| &h.value)
    }
    /// First value named `name`.
    pub fn first(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.0.iter().find(|h| h.name == *name).map(|h| &h.value)
    }
    /// The text of the first header with this name (case-insensitive, compact forms
    /// resolved), for `Text` headers.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.is(name))
            .and_then(|h| match &h.value {
                HeaderValue::Text(t) => Some(t.as_str()),
                _ => None,
            })
    }

    /// All Via values, top first.
    pub fn vias(&self) -> impl Iterator<Item = &Via> {
        self.0.iter().filter_map(|h| match &h.value {
            HeaderValue::Via(v) if h.name == HeaderName::Via => Some(v),
            _ => None,
        })
    }
    /// The top Via.
    pub fn top_via(&self) -> Option<&Via> {
        self.vias().next()
    }
    /// The top Via, mutable (the server adds `received`/`rport` there).
    pub fn top_via_mut(&mut self) -> Option<&mut Via> {
        self.0.iter_mut().find_map(|h| match &mut h.value {
            HeaderValue::Via(v) if h.name == HeaderName::Via => Some(v),
            _ => None,
        })
    }
    /// Removes the top Via (a proxy/B2BUA leg change), returning it.
    pub fn pop_top_via(&mut self) -> Option<Via> {
        let i = self.0.iter().position(|h| h.name == HeaderName::Via)?;
        match self.0.remove(i).value {
            HeaderValue::Via(v) => Some(v),
            _ => None,
        }
    }
    fn name_addr(&self, name: HeaderName) -> Option<&NameAddr> {
        self.0
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| match &h.value {
                HeaderValue::NameAddr(n) => Some(n),
                _ => None,
            })
    }
    fn name_addr_mut(&mut self, name: HeaderName) -> Option<&mut NameAddr> {
        self.0
            .iter_mut()
            .find(|h| h.name == name)
            .and_then(|h| match &mut h.value {
                HeaderValue::NameAddr(n) => Some(n),
                _ => None,
            })
    }
    fn name_addrs(&self, name: HeaderName) -> impl Iterator<Item = &NameAddr> {
        self.0.iter().filter_map(move |h| match &h.value {
            HeaderValue::NameAddr(n) if h.name == name => Some(n),
            _ => None,
        })
    }
    /// From.
    pub fn from(&self) -> Option<&NameAddr> {
        self.name_addr(HeaderName::From)
    }
    /// From, mutable.
    pub fn from_mut(&mut self) -> Option<&mut NameAddr> {
        self.name_addr_mut(HeaderName::From)
    }
    /// To.
    pub fn to(&self) -> Option<&NameAddr> {
        self.name_addr(HeaderName::To)
    }
    /// To, mutable (the UAS adds its tag there).
    pub fn to_mut(&mut self) -> Option<&mut NameAddr> {
        self.name_addr_mut(HeaderName::To)
    }
    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        match self.first(&HeaderName::CallId)? {
            HeaderValue::Text(t) => Some(t),
            _ => None,
        }
    }
    /// CSeq.
    pub fn cseq(&self) -> Option<&CSeq> {
        match self.first(&HeaderName::CSeq)? {
            HeaderValue::CSeq(c) => Some(c),
            _ => None,
        }
    }
    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<u32> {
        match self.first(&HeaderName::MaxForwards)? {
            HeaderValue::Number(n) => Some(*n),
            _ => None,
        }
    }
    /// All Contact values.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.0.iter().filter_map(|h| match &h.value {
            HeaderValue::Contact(c) if h.name == HeaderName::Contact => Some(c),
            _ => None,
        })
    }
    /// The first Contact address (not `*`).
    pub fn contact(&self) -> Option<&NameAddr> {
        self.contacts().find_map(|c| match c {
            Contact::Addr(a) => Some(a),
            Contact::Star => None,
        })
    }
    /// Route values in order.
    pub fn routes(&self) -> impl Iterator<Item = &NameAddr> {
        self.name_addrs(HeaderName::Route)
    }
    /// Record-Route values in order.
    pub fn record_routes(&self) -> impl Iterator<Item = &NameAddr> {
        self.name_addrs(HeaderName::RecordRoute)
    }
    /// P-Asserted-Identity values (RFC 3325).
    pub fn p_asserted_identities(&self) -> impl Iterator<Item = &NameAddr> {
        self.name_addrs(HeaderName::PAssertedIdentity)
    }
    /// Content-Type.
    pub fn content_type(&self) -> Option<&MediaType> {
        match self.first(&HeaderName::ContentType)? {
            HeaderValue::MediaType(m) => Some(m),
            _ => None,
        }
    }
    fn tokens(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |h| h.name == name)
            .filter_map(|h| match &h.value {
                HeaderValue::Tokens(t) => Some(t.iter()),
                _ => None,
            })
            .flatten()
    }
    /// Allow tokens (all lines).
    pub fn allow(&self) -> impl Iterator<Item = &str> {
        self.tokens(HeaderName::Allow)
    }
    /// Supported option tags (all lines).
    pub fn supported(&self) -> impl Iterator<Item = &str> {
        self.tokens(HeaderName::Supported)
    }
    /// Require option tags (all lines).
    pub fn require(&self) -> impl Iterator<Item = &str> {
        self.tokens(HeaderName::Require)
    }
    /// Reason values.
    pub fn reasons(&self) -> impl Iterator<Item = &Reason> {
        self.0.iter().filter_map(|h| match &h.value {
            HeaderValue::Reason(r) if h.name == HeaderName::Reason => Some(r),
            _ => None,
        })
    }
    /// User-Agent text.
    pub fn user_agent(&self) -> Option<&str> {
        match self.first(&HeaderName::UserAgent)? {
            HeaderValue::Text(t) => Some(trim_lws(t)),
            _ => None,
        }
    }
}
