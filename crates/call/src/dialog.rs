//! Dialog state of one leg (RFC 3261 §12) and the in-dialog requests built from it.

use std::net::SocketAddr;

use callseal_sip::{
    CSeq, Contact, HeaderName, HeaderValue, Message, Method, NameAddr, StatusCode, Uri, Via,
};

/// What identifies a dialog: Call-ID and both tags (RFC 3261 §12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

/// The state of one dialog, from the gateway's side.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Identity.
    pub id: DialogId,
    /// Our URI with our tag (From of our requests).
    pub local: NameAddr,
    /// The peer's URI with its tag (To of our requests).
    pub remote: NameAddr,
    /// Our last CSeq number (RFC 3261 §12.2.1.1: incremented per request, except ACK/CANCEL).
    pub local_cseq: u32,
    /// The peer's last CSeq number (§12.2.2: lower ones are rejected with 500).
    pub remote_cseq: Option<u32>,
    /// Request-URI of our requests: the peer's Contact (§12.1.1/§12.1.2).
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<NameAddr>,
    /// Where our requests go (the peer's source address on the A-leg, the PBX on the B-leg).
    pub destination: SocketAddr,
}

impl Dialog {
    /// The UAS side, from the INVITE and the To-tag we chose (RFC 3261 §12.1.1).
    pub fn uas(invite: &Message, local_tag: &str, destination: SocketAddr) -> Option<Self> {
        let h = &invite.headers;
        let remote = h.from()?.clone();
        let remote_tag = remote.tag()?.to_owned();
        let mut local = h.to()?.clone();
        local.set_tag(local_tag);
        let remote_target = h.contact().map(|c| c.uri.clone())?;
        Some(Self {
            id: DialogId {
                call_id: h.call_id()?.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            local,
            remote,
            local_cseq: 0,
            remote_cseq: h.cseq().map(|c| c.seq),
            remote_target,
            route_set: h.record_routes().cloned().collect(),
            destination,
        })
    }

    /// The UAC side, from our INVITE and a 1xx/2xx carrying a To-tag (RFC 3261 §12.1.2).
    pub fn uac(invite: &Message, response: &Message, destination: SocketAddr) -> Option<Self> {
        let rh = &response.headers;
        let remote = rh.to()?.clone();
        let remote_tag = remote.tag()?.to_owned();
        let local = invite.headers.from()?.clone();
        let remote_target = rh
            .contact()
            .map(|c| c.uri.clone())
            .or_else(|| invite.request_uri().cloned())?;
        let mut route_set: Vec<NameAddr> = rh.record_routes().cloned().collect();
        route_set.reverse();
        Some(Self {
            id: DialogId {
                call_id: invite.headers.call_id()?.to_owned(),
                local_tag: local.tag()?.to_owned(),
                remote_tag,
            },
            local,
            remote,
            local_cseq: invite.headers.cseq().map_or(1, |c| c.seq),
            remote_cseq: None,
            remote_target,
            route_set,
            destination,
        })
    }

    /// True if `request` belongs to this dialog (Call-ID, To-tag = ours, From-tag = theirs).
    pub fn matches(&self, request: &Message) -> bool {
        let h = &request.headers;
        h.call_id() == Some(self.id.call_id.as_str())
            && h.to().and_then(NameAddr::tag) == Some(self.id.local_tag.as_str())
            && h.from().and_then(NameAddr::tag) == Some(self.id.remote_tag.as_str())
    }

    /// True if `response` answers a request we sent in this dialog (or the INVITE creating it).
    pub fn matches_response(&self, response: &Message) -> bool {
        let h = &response.headers;
        h.call_id() == Some(self.id.call_id.as_str())
            && h.from().and_then(NameAddr::tag) == Some(self.id.local_tag.as_str())
    }

    /// Checks the CSeq of an in-dialog request (RFC 3261 §12.2.2) and remembers it.
    /// `false`: out of order, answer 500.
    pub fn accept_remote_cseq(&mut self, request: &Message) -> bool {
        let Some(seq) = request.headers.cseq().map(|c| c.seq) else {
            return false;
        };
        if request.method() == Some(&Method::Ack) || request.method() == Some(&Method::Cancel) {
            return true;
        }
        if self.remote_cseq.is_some_and(|last| seq <= last) {
            return false;
        }
        self.remote_cseq = Some(seq);
        true
    }

    /// A new in-dialog request (BYE, re-INVITE): next CSeq, our Via with `branch`, route set,
    /// Request-URI = remote target (RFC 3261 §12.2.1.1, loose routing assumed).
    pub fn request(&mut self, method: Method, via: Via, contact: &NameAddr) -> Message {
        self.local_cseq = self.local_cseq.saturating_add(1);
        let seq = self.local_cseq;
        self.build(method, seq, via, Some(contact))
    }

    /// The ACK for a 2xx to our INVITE with CSeq `invite_seq` (RFC 3261 §13.2.2.4): new
    /// branch, CSeq number of the INVITE, method ACK.
    pub fn ack(&self, invite_seq: u32, via: Via) -> Message {
        self.build(Method::Ack, invite_seq, via, None)
    }

    fn build(&self, method: Method, seq: u32, via: Via, contact: Option<&NameAddr>) -> Message {
        let mut m = Message::new_request(method.clone(), self.remote_target.clone());
        let h = &mut m.headers;
        h.push(HeaderName::Via, HeaderValue::Via(via));
        h.push(HeaderName::MaxForwards, HeaderValue::Number(70));
        h.push(HeaderName::From, HeaderValue::NameAddr(self.local.clone()));
        h.push(HeaderName::To, HeaderValue::NameAddr(self.remote.clone()));
        h.push(
            HeaderName::CallId,
            HeaderValue::Text(self.id.call_id.clone()),
        );
        h.push(HeaderName::CSeq, HeaderValue::CSeq(CSeq { seq, method }));
        for r in &self.route_set {
            h.push(HeaderName::Route, HeaderValue::NameAddr(r.clone()));
        }
        if let Some(c) = contact {
            h.push(
                HeaderName::Contact,
                HeaderValue::Contact(Contact::Addr(c.clone())),
            );
        }
        m
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
