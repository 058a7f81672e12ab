//! Matching messages to transactions: RFC 3261 §17.1.3 (responses to client transactions) and
//! §17.2.3 (requests to server transactions), with the RFC 2543 fallback when the top Via
//! branch lacks the magic cookie.

use crate::message::text::printed;
use crate::message::{Message, Method};

/// The key of a client transaction: top Via branch and CSeq method (§17.1.3). A CANCEL shares
/// the INVITE's branch, so the method keeps them apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    /// The key of a response (or of our own request); `None` without Via branch or CSeq.
    pub fn of(msg: &Message) -> Option<ClientKey> {
        let branch = msg.headers.top_via()?.branch()?.to_owned();
        let method = msg.headers.cseq()?.method.clone();
        Some(ClientKey { branch, method })
    }
}

/// The key of a server transaction (§17.2.3). An ACK matches the INVITE's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261 branch: branch, sent-by and method.
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 fallback (§17.2.3 last paragraphs): Request-URI, From tag, Call-ID, CSeq
    /// number and method, and the whole top Via; the To tag is checked separately, since the
    /// ACK carries the tag of our response while the INVITE had none.
    Rfc2543 {
        request_uri: String,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        method: Method,
        via: String,
    },
}

impl ServerKey {
    /// The key of an inbound request, with `method` in place of its own (the ACK and CANCEL
    /// look up the INVITE with `Method::Invite`). `None` without Via, CSeq or Call-ID.
    pub fn of(request: &Message, method: Method) -> Option<ServerKey> {
        let via = request.headers.top_via()?;
        if via.has_rfc3261_branch() {
            let mut sent_by = via.host.to_string().to_ascii_lowercase();
            if let Some(p) = via.port {
                sent_by.push(':');
                sent_by.push_str(&p.to_string());
            }
            return Some(ServerKey::Rfc3261 {
                branch: via.branch()?.to_owned(),
                sent_by,
                method,
            });
        }
        let h = &request.headers;
        // The top Via as the client sent it: drop what a server adds (received, rport value).
        let mut via = via.clone();
        via.params.remove("received");
        if via.params.contains("rport") {
            via.params.set("rport", None);
        }
        let via_text = printed(|out| via.write(out));
        let request_uri = request.request_uri()?;
        let request_uri = printed(|out| request_uri.write(out));
        Some(ServerKey::Rfc2543 {
            request_uri,
            from_tag: h.from()?.tag().map(str::to_owned),
            call_id: h.call_id()?.to_owned(),
            cseq: h.cseq()?.seq,
            method,
            via: via_text,
        })
    }

    /// Whether the key came from an RFC 2543 request (no magic cookie).
    pub fn is_rfc2543(&self) -> bool {
        matches!(self, ServerKey::Rfc2543 { .. })
    }
}

/// What an ACK for a 2xx shares with the INVITE it acknowledges (§13.2.2.4, §12.2.1.1): it is
/// a new transaction, so it is matched by dialog and CSeq number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: String,
    pub cseq: u32,
}

impl AckKey {
    /// The key of an inbound ACK (or of the 2xx we sent, whose To carries our tag).
    pub fn of(msg: &Message) -> Option<AckKey> {
        let h = &msg.headers;
        Some(AckKey {
            call_id: h.call_id()?.to_owned(),
            from_tag: h.from()?.tag()?.to_owned(),
            to_tag: h.to()?.tag()?.to_owned(),
            cseq: h.cseq()?.seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str, method: &str) -> Message {
        let text = format!(
            "{method} sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {via}\r\nFrom: <sip:b@example.com>;tag=f1\r\nTo: <sip:a@example.com>\r\nCall-ID: k1\r\nCSeq: 4 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("test request parses")
    }

    #[test]
    fn ack_and_cancel_find_the_invite_by_branch_and_sent_by() {
        let invite = ServerKey::of(&req("h1:5060;branch=z9hG4bKx", "INVITE"), Method::Invite);
        let ack = ServerKey::of(&req("H1:5060;branch=z9hG4bKx", "ACK"), Method::Invite);
        assert_eq!(invite, ack);
        let other_host = ServerKey::of(&req("h2:5060;branch=z9hG4bKx", "ACK"), Method::Invite);
        assert_ne!(invite, other_host);
        let cancel = ServerKey::of(&req("h1:5060;branch=z9hG4bKx", "CANCEL"), Method::Cancel);
        assert_ne!(invite, cancel);
    }

    #[test]
    fn rfc2543_requests_match_on_dialog_fields_and_the_client_via() {
        let invite = ServerKey::of(&req("h1:5060;rport", "INVITE"), Method::Invite).expect("key");
        assert!(invite.is_rfc2543());
        let mut ack = req("h1:5060;rport", "ACK");
        if let Some(v) = ack.headers.top_via_mut() {
            v.params.set("rport", Some("4000"));
            v.params.set("received", Some("192.0.2.1"));
        }
        assert_eq!(ServerKey::of(&ack, Method::Invite), Some(invite.clone()));
        let other = ServerKey::of(&req("h1:5061;rport", "ACK"), Method::Invite);
        assert_ne!(other, Some(invite));
    }
}
