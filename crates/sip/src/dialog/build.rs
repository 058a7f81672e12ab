//! Requests inside a dialog (RFC 3261 §12.2.1.1): Request-URI and Route from the remote target
//! and route set, From/To/Call-ID from the dialog, the next local CSeq.

use super::Dialog;
use crate::message::{CSeq, Contact, HeaderName, HeaderValue, MediaType, Message, Method, Via};

impl Dialog {
    /// A new request in the dialog. The local CSeq is incremented first, except for ACK and
    /// CANCEL (which reuse the number of the request they refer to, so use [`Dialog::ack`]).
    /// `via` is our Via with a fresh branch. Target-refresh methods (INVITE, UPDATE,
    /// SUBSCRIBE, NOTIFY, REFER) get our Contact.
    pub fn request(&mut self, method: Method, via: Via) -> Message {
        if !matches!(method, Method::Ack | Method::Cancel) {
            self.local_cseq = self.local_cseq.wrapping_add(1);
        }
        let seq = self.local_cseq;
        self.build(method, seq, via)
    }

    /// A re-INVITE carrying `sdp` (§14.1).
    pub fn reinvite(&mut self, via: Via, sdp: Vec<u8>) -> Message {
        let mut m = self.request(Method::Invite, via);
        m.set_body(Some(MediaType::sdp()), sdp);
        m
    }

    /// The ACK for a 2xx to the INVITE with CSeq number `invite_cseq` (§13.2.2.4): same
    /// number, method ACK, Request-URI and Route from the dialog, a new branch in `via`.
    pub fn ack(&self, invite_cseq: u32, via: Via) -> Message {
        self.build(Method::Ack, invite_cseq, via)
    }

    fn build(&self, method: Method, seq: u32, via: Via) -> Message {
        // §12.2.1.1: loose router first (or no route set): R-URI = remote target, Route = the
        // set; strict router: R-URI = first route, Route = the rest + remote target.
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| r.uri.as_sip().is_some_and(|u| !u.is_loose_route()));
        let (uri, routes) = if strict {
            let mut rest: Vec<_> = self.route_set[1..].to_vec();
            rest.push(crate::message::NameAddr::new(self.remote_target.clone()));
            (self.route_set[0].uri.clone(), rest)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let refresh = matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
        );
        let mut m = Message::new_request(method.clone(), uri);
        let h = &mut m.headers;
        h.push(HeaderName::Via, HeaderValue::Via(via));
        h.push(HeaderName::MaxForwards, HeaderValue::Number(70));
        h.push(HeaderName::From, HeaderValue::NameAddr(self.local.clone()));
        h.push(HeaderName::To, HeaderValue::NameAddr(self.remote.clone()));
        h.push(
            HeaderName::CallId,
            HeaderValue::Text(self.id.call_id.as_str().into()),
        );
        h.push(HeaderName::CSeq, HeaderValue::CSeq(CSeq { seq, method }));
        for r in routes {
            h.push(HeaderName::Route, HeaderValue::NameAddr(r));
        }
        if refresh && let Some(c) = &self.local_contact {
            h.push(
                HeaderName::Contact,
                HeaderValue::Contact(Contact::Addr(c.clone())),
            );
        }
        m
    }
}
