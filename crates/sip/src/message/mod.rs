//! The SIP message model: an owned start line, headers in wire order with typed values, and
//! the body as bytes. Easy to mutate and print; parsing lives in [`parse`], printing in [`print`].

mod builders;
pub(crate) mod builders_api {
    pub use super::builders::response_for_unparseable;
}
mod headers;
pub mod multipart;
mod params;
pub(crate) mod parse;
mod print;
pub(crate) mod text;
mod typed;
pub(crate) mod uri;

use std::fmt;

pub use headers::{Header, HeaderName, HeaderValue, Headers};
pub use params::{Param, Params};
pub use parse::Limits;
pub use typed::{
    BRANCH_MAGIC_COOKIE, CSeq, Contact, MediaType, NameAddr, Reason, Rport, TokenList, Via,
};
pub use uri::{Host, Scheme, SipUri, Uri};

/// A request method (RFC 3261 §7.1; methods are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other extension method token.
    Other(String),
}

impl Method {
    /// Parses a method token; `None` if it is not a token.
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if text::is_token(other) => Method::Other(other.to_owned()),
            _ => return None,
        })
    }
    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl Method {
    /// Writes the method token; the well-known ones as fixed-length copies (a few stores
    /// rather than a call).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Method::Invite => out.extend_from_slice(b"INVITE"),
            Method::Ack => out.extend_from_slice(b"ACK"),
            Method::Bye => out.extend_from_slice(b"BYE"),
            Method::Cancel => out.extend_from_slice(b"CANCEL"),
            Method::Options => out.extend_from_slice(b"OPTIONS"),
            Method::Register => out.extend_from_slice(b"REGISTER"),
            Method::Info => out.extend_from_slice(b"INFO"),
            Method::Update => out.extend_from_slice(b"UPDATE"),
            Method::Prack => out.extend_from_slice(b"PRACK"),
            Method::Subscribe => out.extend_from_slice(b"SUBSCRIBE"),
            Method::Notify => out.extend_from_slice(b"NOTIFY"),
            Method::Refer => out.extend_from_slice(b"REFER"),
            Method::Message => out.extend_from_slice(b"MESSAGE"),
            Method::Publish => out.extend_from_slice(b"PUBLISH"),
            Method::Other(s) => out.extend_from_slice(s.as_bytes()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response status code, 100–699.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 100 Trying
    pub const TRYING: StatusCode = StatusCode(100);
    /// 180 Ringing
    pub const RINGING: StatusCode = StatusCode(180);
    /// 183 Session Progress
    pub const SESSION_PROGRESS: StatusCode = StatusCode(183);
    /// 200 OK
    pub const OK: StatusCode = StatusCode(200);
    /// 400 Bad Request
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 408 Request Timeout
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 481 Call/Transaction Does Not Exist
    pub const CALL_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 487 Request Terminated
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    /// 500 Server Internal Error
    pub const SERVER_ERROR: StatusCode = StatusCode(500);
    /// 513 Message Too Large
    pub const MESSAGE_TOO_LARGE: StatusCode = StatusCode(513);

    /// 1xx
    pub fn is_provisional(self) -> bool {
        (100..200).contains(&self.0)
    }
    /// 2xx
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }
    /// 200–699
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }
    /// The RFC 3261 §21 reason phrase for well-known codes, else a generic one by class.
    pub fn canonical_reason(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            420 => "Bad Extension",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            491 => "Request Pending",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            603 => "Decline",
            c if c < 200 => "Progress",
            c if c < 300 => "OK",
            c if c < 400 => "Redirect",
            c if c < 500 => "Client Error",
            c if c < 600 => "Server Error",
            _ => "Global Failure",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Request-Line or Status-Line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`
    Request {
        /// Method.
        method: Method,
        /// Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code.
        status: StatusCode,
        /// Reason phrase (may be empty).
        reason: String,
    },
}

/// A SIP request or response.
///
/// Content-Length is not a stored header: the printer always emits it from `body.len()`
/// (RFC 3261 §18.3, case 012), so relaying can never carry a stale value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Start line.
    pub start: StartLine,
    /// Headers in wire order (comma lists of Via/Contact/Route… split into one entry each).
    pub headers: Headers,
    /// Body bytes exactly as framed.
    pub body: Vec<u8>,
}

impl Message {
    /// Parses one complete message from `bytes` as a datagram: see [`crate::parse_datagram`].
    pub fn parse(bytes: &[u8]) -> Result<Message, crate::Error> {
        crate::framing::parse_datagram(bytes, &Limits::default())
    }
    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    /// The request method, if a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    /// The Request-URI, if a request.
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }
    /// The status code, if a response.
    pub fn status(&self) -> Option<StatusCode> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }
    /// The SDP body: the whole body for `application/sdp`, the `application/sdp` part of a
    /// multipart body (RFC 5621), else `None`.
    pub fn sdp_body(&self) -> Option<&[u8]> {
        let ct = self.headers.content_type()?;
        if ct.is("application", "sdp") {
            return (!self.body.is_empty()).then_some(self.body.as_slice());
        }
        if ct.ty.eq_ignore_ascii_case("multipart") {
            let boundary = ct.params.get("boundary")?;
            return multipart::find_part(&self.body, boundary, "application", "sdp");
        }
        None
    }
    /// Checks the headers every request must carry (RFC 3261 §8.1.1, §8.2.2): Via, From, To,
    /// Call-ID, CSeq, and a CSeq method equal to the request method.
    pub fn validate_request(&self) -> Result<(), crate::Error> {
        use crate::Error;
        let method = self
            .method()
            .ok_or(Error::WrongMessageKind("expected a request"))?;
        if self.headers.top_via().is_none() {
            return Err(Error::MissingHeader { header: "Via" });
        }
        if self.headers.from().is_none() {
            return Err(Error::MissingHeader { header: "From" });
        }
        if self.headers.to().is_none() {
            return Err(Error::MissingHeader { header: "To" });
        }
        if self.headers.call_id().is_none() {
            return Err(Error::MissingHeader { header: "Call-ID" });
        }
        let cseq = self
            .headers
            .cseq()
            .ok_or(Error::MissingHeader { header: "CSeq" })?;
        if &cseq.method != method {
            return Err(Error::InvalidHeaderValue {
                header: "CSeq",
                reason: "CSeq method differs from the request method",
            });
        }
        Ok(())
    }
    /// Checks the headers a response must carry to be matched (Via, From, To, Call-ID, CSeq).
    pub fn validate_response(&self) -> Result<(), crate::Error> {
        use crate::Error;
        for (present, header) in [
            (self.headers.top_via().is_some(), "Via"),
            (self.headers.from().is_some(), "From"),
            (self.headers.to().is_some(), "To"),
            (self.headers.call_id().is_some(), "Call-ID"),
            (self.headers.cseq().is_some(), "CSeq"),
        ] {
            if !present {
                return Err(Error::MissingHeader { header });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn methods_write_their_token() {
        for token in [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "OPTIONS",
            "REGISTER",
            "INFO",
            "UPDATE",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "REFER",
            "MESSAGE",
            "PUBLISH",
            "X-OTHER",
        ] {
            let method = Method::parse(token).expect("a token");
            let mut out = Vec::new();
            method.write(&mut out);
            assert_eq!(out, token.as_bytes());
            assert_eq!(method.as_str(), token);
        }
    }
}
