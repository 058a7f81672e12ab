//! Building requests and responses. Builders copy only what exists: a request that lacks
//! From/To/Call-ID still gets a well-formed 400 (RFC 4475 §3.3.1, case 007).

use super::headers::{HeaderName, HeaderValue, Headers};
use super::parse::{Limits, parse_header_value};
use super::typed::MediaType;
use super::uri::Uri;
use super::{Message, Method, StartLine, StatusCode};
use crate::error::{Error, status_for};

impl Message {
    /// A request with no headers and no body.
    pub fn new_request(method: Method, uri: Uri) -> Message {
        Message {
            start: StartLine::Request { method, uri },
            headers: Headers(Vec::with_capacity(12)),
            body: Vec::new(),
        }
    }

    /// A response with the canonical reason phrase, no headers and no body.
    pub fn new_response(status: StatusCode) -> Message {
        Message {
            start: StartLine::Response {
                status,
                reason: status.canonical_reason().to_owned(),
            },
            headers: Headers(Vec::with_capacity(12)),
            body: Vec::new(),
        }
    }

    /// Builds a response to `request` (RFC 3261 §8.2.6.2): copies every Via in order, From,
    /// To, Call-ID and CSeq — whichever exist — and Record-Route for dialog-creating 1xx/2xx
    /// (§12.1.1). Adds `to_tag` to To when To has no tag and the status is not 100.
    pub fn response_to(request: &Message, status: StatusCode, to_tag: Option<&str>) -> Message {
        let mut resp = Message::new_response(status);
        let copy_rr = status.0 > 100 && status.0 < 300;
        for h in request.headers.iter() {
            let keep = match h.name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq => true,
                HeaderName::RecordRoute => copy_rr,
                _ => false,
            };
            if keep {
                resp.headers.0.push(h.clone());
            }
        }
        if status != StatusCode::TRYING
            && let Some(tag) = to_tag
            && let Some(to) = resp.headers.to_mut()
            && to.tag().is_none()
        {
            to.set_tag(tag);
        }
        resp
    }

    /// Sets the reason phrase of a response (no effect on requests).
    pub fn set_reason_phrase(&mut self, phrase: &str) {
        if let StartLine::Response { reason, .. } = &mut self.start {
            // The phrase must stay on one line.
            *reason = phrase.replace(['\r', '\n'], " ");
        }
    }

    /// Sets the body and its Content-Type (or removes Content-Type for `None`).
    pub fn set_body(&mut self, content_type: Option<MediaType>, body: Vec<u8>) {
        match content_type {
            Some(ct) => self
                .headers
                .set(HeaderName::ContentType, HeaderValue::MediaType(ct)),
            None => {
                self.headers.remove(&HeaderName::ContentType);
            }
        }
        self.body = body;
    }
}

/// Builds the error response for a request that could not be parsed or framed, from the
/// headers that can still be read: Via (needed to route it), From, To, Call-ID, CSeq.
///
/// Returns `None` when no response can be sent: the bytes are a response (RFC 3261 §18.3:
/// discard), the error has no status. `to_tag` is added to a To without tag (§8.2.6.2) (see [`status_for`]) or no Via can be read.
pub fn response_for_unparseable(
    bytes: &[u8],
    error: &Error,
    to_tag: Option<&str>,
) -> Option<Message> {
    let status = status_for(error)?;
    let limits = Limits::default();
    let head_end = memchr::memmem::find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = bytes.get(..head_end.min(limits.max_message_size))?;
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start = lines.next()?;
    if start.len() < 4 || start.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    // Unfold, then keep only the headers a response copies; ignore any that fail to parse.
    let mut unfolded: Vec<String> = Vec::new();
    for line in lines.take(limits.max_headers) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            unfolded.push(line.to_owned());
        }
    }
    let mut request = Message::new_request(Method::Options, Uri::Other("x:x".into()));
    for line in &unfolded {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = HeaderName::from_wire(name.trim());
        let copy = matches!(
            name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        );
        let single = !matches!(name, HeaderName::Via);
        if copy && !(single && request.headers.first(&name).is_some()) {
            let mut parsed = Vec::new();
            if parse_header_value(name, value.trim(), &mut parsed).is_ok() {
                request.headers.0.extend(parsed);
            }
        }
    }
    request.headers.top_via()?;
    let mut resp = Message::response_to(&request, status, to_tag);
    resp.set_reason_phrase(status.canonical_reason());
    Some(resp)
}
