//! The printer: canonical header names, one value per line for split lists, and always a
//! Content-Length computed from the body (RFC 3261 §18.3, §20.14).

use super::headers::{Header, HeaderValue};
use super::typed::Contact;
use super::uri::push_u32;
use super::{Message, StartLine};

impl Message {
    /// Serialises the message to wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // One allocation: room for a typical head (a Via or name-addr line is 60–110 bytes)
        // and the body, so neither the head nor the body makes the buffer grow.
        let mut out = String::with_capacity(128 + self.headers.len() * 96 + self.body.len());
        self.write_head(&mut out);
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Writes the start line and headers, including `Content-Length` and the empty line.
    pub fn write_head(&self, out: &mut String) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.push_str(method.as_str());
                out.push(' ');
                uri.write(out);
                out.push_str(" SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                out.push_str("SIP/2.0 ");
                push_u32(out, u32::from(status.0));
                out.push(' ');
                out.push_str(reason);
                out.push_str("\r\n");
            }
        }
        for h in self.headers.iter() {
            write_header(out, h);
        }
        out.push_str("Content-Length: ");
        // A body larger than u32::MAX cannot be framed anyway; limits stop it far earlier.
        push_u32(out, u32::try_from(self.body.len()).unwrap_or(u32::MAX));
        out.push_str("\r\n\r\n");
    }
}

fn write_header(out: &mut String, h: &Header) {
    out.push_str(h.name.as_str());
    out.push_str(": ");
    write_value(out, &h.value);
    out.push_str("\r\n");
}

pub(crate) fn write_value(out: &mut String, value: &HeaderValue) {
    match value {
        HeaderValue::Via(v) => v.write(out),
        HeaderValue::NameAddr(n) => n.write(out),
        HeaderValue::Contact(Contact::Star) => out.push('*'),
        HeaderValue::Contact(Contact::Addr(n)) => n.write(out),
        HeaderValue::CSeq(c) => c.write(out),
        HeaderValue::Number(n) => push_u32(out, *n),
        HeaderValue::MediaType(m) => m.write(out),
        HeaderValue::Tokens(t) => out.push_str(t.as_str()),
        HeaderValue::Reason(r) => r.write(out),
        HeaderValue::Text(t) => out.push_str(t),
    }
}

impl std::fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        write_value(&mut s, self);
        f.write_str(&s)
    }
}
