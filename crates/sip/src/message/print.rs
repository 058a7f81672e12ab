//! The printer: canonical header names, one value per line for split lists, and always a
//! Content-Length computed from the body (RFC 3261 §18.3, §20.14).

use super::headers::{Header, HeaderName, HeaderValue};
use super::typed::Contact;
use super::uri::push_u32;
use super::{Message, StartLine};

impl Message {
    /// Serialises the message to wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // One allocation: room for a typical head (a Via or name-addr line is 60–110 bytes)
        // and the body, so neither the head nor the body makes the buffer grow.
        let mut out = Vec::with_capacity(128 + self.headers.len() * 96 + self.body.len());
        self.write_head(&mut out);
        out.extend_from_slice(&self.body);
        out
    }

    /// Writes the start line and headers, including `Content-Length` and the empty line, as
    /// wire bytes.
    pub fn write_head(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                method.write(out);
                out.push(b' ');
                uri.write(out);
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                push_u32(out, u32::from(status.0));
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for h in self.headers.iter() {
            write_header(out, h);
        }
        out.extend_from_slice(b"Content-Length: ");
        // A body larger than u32::MAX cannot be framed anyway; limits stop it far earlier.
        push_u32(out, u32::try_from(self.body.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(b"\r\n\r\n");
    }
}

fn write_header(out: &mut Vec<u8>, h: &Header) {
    write_name_colon(out, &h.name);
    write_value(out, &h.value);
    out.extend_from_slice(b"\r\n");
}

/// `Name: `. Each known name is a copy of a fixed length, which compiles to a few stores
/// rather than a call.
fn write_name_colon(out: &mut Vec<u8>, name: &HeaderName) {
    match name {
        HeaderName::Via => out.extend_from_slice(b"Via: "),
        HeaderName::From => out.extend_from_slice(b"From: "),
        HeaderName::To => out.extend_from_slice(b"To: "),
        HeaderName::CallId => out.extend_from_slice(b"Call-ID: "),
        HeaderName::CSeq => out.extend_from_slice(b"CSeq: "),
        HeaderName::Contact => out.extend_from_slice(b"Contact: "),
        HeaderName::MaxForwards => out.extend_from_slice(b"Max-Forwards: "),
        HeaderName::Route => out.extend_from_slice(b"Route: "),
        HeaderName::RecordRoute => out.extend_from_slice(b"Record-Route: "),
        HeaderName::ContentType => out.extend_from_slice(b"Content-Type: "),
        HeaderName::Allow => out.extend_from_slice(b"Allow: "),
        HeaderName::Supported => out.extend_from_slice(b"Supported: "),
        HeaderName::Require => out.extend_from_slice(b"Require: "),
        HeaderName::Reason => out.extend_from_slice(b"Reason: "),
        HeaderName::PAssertedIdentity => out.extend_from_slice(b"P-Asserted-Identity: "),
        HeaderName::UserAgent => out.extend_from_slice(b"User-Agent: "),
        HeaderName::Subject => out.extend_from_slice(b"Subject: "),
        HeaderName::Other(name) => {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
        }
    }
}

pub(crate) fn write_value(out: &mut Vec<u8>, value: &HeaderValue) {
    match value {
        HeaderValue::Via(v) => v.write(out),
        HeaderValue::NameAddr(n) => n.write(out),
        HeaderValue::Contact(Contact::Star) => out.push(b'*'),
        HeaderValue::Contact(Contact::Addr(n)) => n.write(out),
        HeaderValue::CSeq(c) => c.write(out),
        HeaderValue::Number(n) => push_u32(out, *n),
        HeaderValue::MediaType(m) => m.write(out),
        HeaderValue::Tokens(t) => out.extend_from_slice(t.as_str().as_bytes()),
        HeaderValue::Reason(r) => r.write(out),
        HeaderValue::Text(t) => out.extend_from_slice(t.as_bytes()),
    }
}

impl std::fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::text::printed(|out| write_value(out, self)))
    }
}
