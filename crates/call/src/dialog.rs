//! A leg's dialog: the sip crate's [`callseal_sip::Dialog`] (RFC 3261 §12) plus where the
//! leg's requests are sent, and the response builder the core uses.

use std::net::SocketAddr;

use callseal_sip::{Contact, HeaderName, HeaderValue, Message, Method, NameAddr, StatusCode, Via};

/// One leg's dialog and its next hop.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// The dialog state (tags, CSeq, route set, remote target).
    pub inner: callseal_sip::Dialog,
    /// Where our requests go: the caller's source address on the A-leg (its Contact may be a
    /// private address behind NAT, RFC 3581 style), the PBX on the B-leg.
    pub destination: SocketAddr,
}

impl Dialog {
    /// The UAS side, from the INVITE, our To-tag and our Contact (RFC 3261 §12.1.1).
    pub fn uas(
        invite: &Message,
        local_tag: &str,
        contact: NameAddr,
        destination: SocketAddr,
    ) -> Option<Self> {
        let inner = callseal_sip::Dialog::uas(invite, local_tag, Some(contact)).ok()?;
        Some(Self { inner, destination })
    }

    /// The UAC side, from our INVITE and a 1xx/2xx with a To-tag (RFC 3261 §12.1.2).
    pub fn uac(invite: &Message, response: &Message, destination: SocketAddr) -> Option<Self> {
        let inner = callseal_sip::Dialog::uac(invite, response).ok()?;
        Some(Self { inner, destination })
    }

    /// True if `request` belongs to this dialog (Call-ID, To-tag = ours, From-tag = theirs).
    pub fn matches(&self, request: &Message) -> bool {
        let h = &request.headers;
        let id = &self.inner.id;
        h.call_id() == Some(id.call_id.as_str())
            && h.to().and_then(NameAddr::tag) == Some(id.local_tag.as_str())
            && h.from().and_then(NameAddr::tag) == Some(id.remote_tag.as_str())
    }

    /// Checks the CSeq of an in-dialog request (RFC 3261 §12.2.2); `false`: answer 500.
    pub fn accept_remote_cseq(&mut self, request: &Message) -> bool {
        self.inner.accept_remote_request(request).is_ok()
    }

    /// A new in-dialog request (BYE, re-INVITE) with our Via (RFC 3261 §12.2.1.1).
    pub fn request(&mut self, method: Method, via: Via) -> Message {
        self.inner.request(method, via)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `invite_seq` (RFC 3261 §13.2.2.4).
    pub fn ack(&self, invite_seq: u32, via: Via) -> Message {
        self.inner.ack(invite_seq, via)
    }

    /// Our last CSeq number.
    pub fn local_cseq(&self) -> u32 {
        self.inner.local_cseq
    }
}

/// A response to `request` with our To-tag (RFC 3261 §8.2.6.2) and optional Contact.
pub fn response(
    request: &Message,
    status: StatusCode,
    to_tag: Option<&str>,
    contact: Option<&NameAddr>,
) -> Message {
    let mut r = Message::response_to(request, status, to_tag);
    if let Some(c) = contact {
        r.headers.push(
            HeaderName::Contact,
            HeaderValue::Contact(Contact::Addr(c.clone())),
        );
    }
    r
}
