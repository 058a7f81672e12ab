//! Inbound routing: every message from the network goes through here to a transaction, to the
//! TU, or to a response the endpoint sends itself.

use std::net::SocketAddr;
use std::time::Instant;

use super::nat::{apply_received_rport, response_destination};
use super::{Endpoint, Event};
use crate::error::Error;
use crate::framing::parse_datagram;
use crate::message::builders_api::response_for_unparseable;
use crate::message::{Message, Method, StatusCode};
use crate::transaction::key::{AckKey, ClientKey, ServerKey};
use crate::transaction::server::ServerTx;
use crate::transaction::{ServerTxId, Transport};

impl Endpoint {
    /// One datagram from `from`. It is parsed with the configured limits; a request that fails
    /// gets its 400/505/513 (RFC 3261 §18.3, cases 003, 004, 007), a response that fails is
    /// dropped (§18.1.2). Either way an [`Event::Malformed`] reports it.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        match parse_datagram(bytes, &self.cfg.limits) {
            Ok(msg) => self.handle_stream_message(now, transport, from, msg),
            Err(Error::Incomplete) if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) => {
                // RFC 5626 §3.5.1 keep-alive (CRLF) on a datagram transport: nothing to do.
            }
            Err(error) => {
                let tag = self.new_tag();
                if let Some(mut resp) = response_for_unparseable(bytes, &error, Some(&tag)) {
                    self.add_server_header(&mut resp);
                    if let Some(via) = resp.headers.top_via_mut() {
                        apply_received_rport(via, from);
                    }
                    if let Some(via) = resp.headers.top_via() {
                        let to = response_destination(via, from, transport);
                        self.out.send(transport, to, resp.to_bytes());
                    }
                }
                self.out.event(Event::Malformed {
                    source: from,
                    transport,
                    error,
                });
            }
        }
    }

    /// One parsed message: from a stream transport (framed by [`crate::StreamFramer`]) or a
    /// datagram already parsed by the shell.
    pub fn handle_stream_message(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        msg: Message,
    ) {
        if msg.is_request() {
            self.on_request(now, transport, from, msg);
        } else {
            self.on_response(now, transport, from, msg);
        }
    }

    fn on_response(&mut self, now: Instant, transport: Transport, from: SocketAddr, msg: Message) {
        if let Err(error) = msg.validate_response() {
            self.out.event(Event::Malformed {
                source: from,
                transport,
                error,
            });
            return;
        }
        // §17.1.3: top Via branch + CSeq method. No match: a stray response, dropped (§18.1.2;
        // after Timer M, RFC 6026 §8.4 drops late 2xx too).
        let Some(id) = ClientKey::of(&msg).and_then(|k| self.client_index.get(&k).copied()) else {
            return;
        };
        let cfg = self.cfg.timers;
        let held = match self.clients.get_mut(&id) {
            Some(tx) => tx.on_response(now, &cfg, msg, &mut self.out),
            None => None,
        };
        if let Some((cancel_id, cancel)) = held
            && let Some(tx) = self.clients.get(&id)
        {
            let (transport, destination) = (tx.transport, tx.destination);
            // The id was handed out already; a failure here can only be a branch clash.
            if self
                .start_client(now, cancel_id, cancel, transport, destination)
                .is_err()
            {
                self.out.event(Event::TransportError {
                    tx: crate::TxId::Client(cancel_id),
                    method: Method::Cancel,
                    branch: String::new(),
                });
            }
        }
        self.reap_client(id);
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        mut req: Message,
    ) {
        let method = req.method().cloned().unwrap_or(Method::Options);
        let checked = req.validate_request().and_then(|()| {
            // RFC 3261 §8.1.1.3: From MUST carry a tag (case 024: 400, never a Call-ID match).
            match req.headers.from().and_then(|f| f.tag()) {
                Some(_) => Ok(()),
                None => Err(Error::MissingFromTag),
            }
        });
        if let Some(via) = req.headers.top_via_mut() {
            apply_received_rport(via, from);
        }
        let reply_to = req
            .headers
            .top_via()
            .map(|v| response_destination(v, from, transport));
        if let Err(error) = checked {
            // Never answer an ACK (§17.2.1); otherwise a stateless 400 if it can be routed.
            if method != Method::Ack
                && let Some(to) = reply_to
            {
                let tag = self.new_tag();
                let mut resp = Message::response_to(&req, StatusCode::BAD_REQUEST, Some(&tag));
                resp.set_reason_phrase(bad_request_phrase(&error));
                self.add_server_header(&mut resp);
                self.out.send(transport, to, resp.to_bytes());
            }
            self.out.event(Event::Malformed {
                source: from,
                transport,
                error,
            });
            return;
        }
        let Some(reply_to) = reply_to else { return };
        if method == Method::Ack {
            self.on_ack(now, transport, from, req);
            return;
        }
        let Some(key) = ServerKey::of(&req, method.clone()) else {
            return;
        };
        if let Some(id) = self.server_index.get(&key).copied() {
            if let Some(tx) = self.servers.get_mut(&id) {
                tx.on_retransmission(&mut self.out);
            }
            return;
        }
        let id = ServerTxId(self.next_id());
        let tx = ServerTx::new(id, key.clone(), &req, transport, reply_to);
        self.server_index.insert(key, id);
        self.servers.insert(id, tx);
        if method == Method::Cancel {
            self.on_cancel(now, id, req);
            return;
        }
        if method == Method::Invite && self.cfg.auto_trying {
            // §8.2.6.1: 100 Trying copies the request's headers and adds no To tag.
            let mut trying = Message::response_to(&req, StatusCode::TRYING, None);
            self.add_server_header(&mut trying);
            // A fresh transaction in Proceeding accepts a provisional response.
            let _ = self.respond(now, id, trying);
        }
        self.out.event(Event::Request {
            tx: id,
            request: req,
            transport,
            source: from,
        });
    }

    /// An ACK: for a non-2xx it belongs to the INVITE transaction (§17.2.3); for a 2xx it is
    /// its own transaction, found by dialog and CSeq, and goes to the TU.
    fn on_ack(&mut self, now: Instant, transport: Transport, from: SocketAddr, req: Message) {
        let cfg = self.cfg.timers;
        let ack_to_tag = req.headers.to().and_then(|t| t.tag()).map(str::to_owned);
        let by_tx = ServerKey::of(&req, Method::Invite)
            .and_then(|k| self.server_index.get(&k).copied())
            .filter(|id| {
                // RFC 2543 matching also needs the To tag of our response (§17.2.3).
                self.servers.get(id).is_some_and(|t| {
                    !t.key.is_rfc2543() || t.final_to_tag.is_none() || t.final_to_tag == ack_to_tag
                })
            });
        let by_dialog = || AckKey::of(&req).and_then(|k| self.ack_index.get(&k).copied());
        let id = by_tx.or_else(by_dialog);
        let mut to_tu = id.is_none();
        if let Some(id) = id
            && let Some(tx) = self.servers.get_mut(&id)
        {
            to_tu = tx.on_ack(now, &cfg);
        }
        if to_tu {
            self.out.event(Event::Ack {
                request: req,
                invite_tx: id,
                transport,
                source: from,
            });
        }
    }

    /// RFC 3261 §9.2: answer the CANCEL on its own transaction; tell the TU if it stops a
    /// pending INVITE.
    fn on_cancel(&mut self, now: Instant, cancel_tx: ServerTxId, cancel: Message) {
        let invite = ServerKey::of(&cancel, Method::Invite)
            .and_then(|k| self.server_index.get(&k).copied())
            .and_then(|id| {
                self.servers
                    .get(&id)
                    .map(|t| (id, t.is_pending(), t.final_to_tag.clone()))
            });
        let (status, tag) = match &invite {
            // §9.2: the CANCEL's 200 carries the To tag of the INVITE's response, if any.
            Some((_, _, Some(tag))) => (StatusCode::OK, tag.clone()),
            Some(_) => (StatusCode::OK, self.new_tag()),
            None => (StatusCode::CALL_DOES_NOT_EXIST, self.new_tag()),
        };
        let mut resp = Message::response_to(&cancel, status, Some(&tag));
        self.add_server_header(&mut resp);
        let _ = self.respond(now, cancel_tx, resp);
        if let Some((invite_tx, true, _)) = invite {
            self.out.event(Event::Cancelled { invite_tx, cancel });
        }
    }
}

/// The reason phrase of a 400 for a request that lacks what RFC 3261 §8.1.1 requires.
fn bad_request_phrase(error: &Error) -> &'static str {
    match error {
        Error::MissingFromTag => "Missing From Tag",
        Error::MissingHeader { header: "Call-ID" } => "Missing Call-ID",
        Error::MissingHeader { header: "From" } => "Missing From",
        Error::MissingHeader { header: "To" } => "Missing To",
        Error::MissingHeader { header: "CSeq" } => "Missing CSeq",
        Error::MissingHeader { .. } => "Missing Mandatory Header",
        _ => "Bad Request",
    }
}
