//! Client transactions: INVITE (RFC 3261 §17.1.1, Figure 5, with RFC 6026 Accepted) and
//! non-INVITE (§17.1.2, Figure 6).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::key::ClientKey;
use super::{ClientTxId, Timer, TimerConfig, TimerTable, Transport, TxId};
use crate::endpoint::{Event, Outbox};
use crate::message::{HeaderName, HeaderValue, Message, Method, StartLine};

/// Where a client transaction stands; each state is named after what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// INVITE sent, waiting for any response (Timers A, B).
    Calling,
    /// Non-INVITE sent, waiting for any response (Timers E, F).
    Trying,
    /// A provisional response arrived; waiting for the final one.
    Proceeding,
    /// A non-2xx final (INVITE: ACKed, holding the ACK for retransmitted finals; Timer D) or
    /// any final (non-INVITE; Timer K) arrived: absorbing retransmissions.
    Completed {
        /// The ACK we sent for the INVITE's non-2xx final.
        ack: Option<Vec<u8>>,
    },
    /// INVITE got a 2xx: passing 2xx retransmissions to the TU until Timer M (RFC 6026 §8.4).
    Accepted,
    /// Done; the endpoint removes the transaction.
    Terminated,
}

/// One client transaction.
#[derive(Debug)]
pub(crate) struct ClientTx {
    pub id: ClientTxId,
    pub key: ClientKey,
    pub request: Message,
    pub transport: Transport,
    pub destination: SocketAddr,
    pub state: ClientState,
    bytes: Vec<u8>,
    timers: TimerTable,
    /// Current retransmission interval of Timer A or E.
    interval: Duration,
    /// A CANCEL asked for before any provisional response: sent when one arrives (§9.1).
    pub held_cancel: Option<(ClientTxId, Message)>,
}

impl ClientTx {
    /// Sends `request` and arms the first timers (§17.1.1.2, §17.1.2.2).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: ClientTxId,
        key: ClientKey,
        request: Message,
        transport: Transport,
        destination: SocketAddr,
        now: Instant,
        cfg: &TimerConfig,
        out: &mut Outbox,
    ) -> ClientTx {
        let bytes = request.to_bytes();
        out.send(transport, destination, bytes.clone());
        let invite = key.method == Method::Invite;
        let mut timers = TimerTable::default();
        if !transport.is_reliable() {
            timers.set(if invite { Timer::A } else { Timer::E }, now + cfg.t1);
        }
        timers.set(
            if invite { Timer::B } else { Timer::F },
            now + cfg.timeout(),
        );
        ClientTx {
            id,
            key,
            request,
            transport,
            destination,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            bytes,
            timers,
            interval: cfg.t1,
            held_cancel: None,
        }
    }

    fn is_invite(&self) -> bool {
        self.key.method == Method::Invite
    }

    /// The next deadline of this transaction.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next().map(|(at, _)| at)
    }

    /// Handles a response matched to this transaction. Returns a held CANCEL that may now be
    /// sent (the first provisional arrived).
    pub fn on_response(
        &mut self,
        now: Instant,
        cfg: &TimerConfig,
        response: Message,
        out: &mut Outbox,
    ) -> Option<(ClientTxId, Message)> {
        let status = response.status()?;
        let reliable = self.transport.is_reliable();
        if self.is_invite() {
            match (&self.state, status.0) {
                (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                    // §17.1.1.2: a provisional stops retransmissions; Timer B no longer applies.
                    self.timers.clear(Timer::A);
                    self.timers.clear(Timer::B);
                    self.state = ClientState::Proceeding;
                    out.event(Event::Response {
                        tx: self.id,
                        response,
                    });
                    return self.held_cancel.take();
                }
                (ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                    // RFC 6026 §8.4: Accepted; the TU ACKs every 2xx itself.
                    self.timers.clear_all();
                    self.timers.set(Timer::M, now + cfg.timeout());
                    self.state = ClientState::Accepted;
                    self.held_cancel = None;
                    out.event(Event::Response {
                        tx: self.id,
                        response,
                    });
                }
                (ClientState::Calling | ClientState::Proceeding, _) => {
                    // §17.1.1.3: the transaction ACKs a non-2xx final itself.
                    let ack = self.ack_for(&response).to_bytes();
                    out.send(self.transport, self.destination, ack.clone());
                    self.timers.clear_all();
                    let wait = if reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32).max(cfg.timeout())
                    };
                    self.timers.set(Timer::D, now + wait);
                    self.state = ClientState::Completed { ack: Some(ack) };
                    self.held_cancel = None;
                    out.event(Event::Response {
                        tx: self.id,
                        response,
                    });
                }
                (ClientState::Completed { ack: Some(ack) }, 300..) => {
                    out.send(self.transport, self.destination, ack.clone());
                }
                (ClientState::Accepted, 200..=299) => out.event(Event::Response {
                    tx: self.id,
                    response,
                }),
                _ => {}
            }
            return None;
        }
        match (&self.state, status.0) {
            (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                if self.state == ClientState::Trying && !reliable {
                    // §17.1.2.2: in Proceeding, Timer E fires every T2.
                    self.interval = cfg.t2;
                }
                self.state = ClientState::Proceeding;
                out.event(Event::Response {
                    tx: self.id,
                    response,
                });
            }
            (ClientState::Trying | ClientState::Proceeding, _) => {
                self.timers.clear_all();
                let wait = if reliable { Duration::ZERO } else { cfg.t4 };
                self.timers.set(Timer::K, now + wait);
                self.state = ClientState::Completed { ack: None };
                out.event(Event::Response {
                    tx: self.id,
                    response,
                });
            }
            _ => {}
        }
        None
    }

    /// Runs every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant, cfg: &TimerConfig, out: &mut Outbox) {
        while let Some(timer) = self.timers.take_due(now) {
            match timer {
                Timer::A => {
                    // §17.1.1.2: Timer A doubles without the T2 cap.
                    out.send(self.transport, self.destination, self.bytes.clone());
                    self.interval *= 2;
                    self.timers.set(Timer::A, now + self.interval);
                }
                Timer::E => {
                    out.send(self.transport, self.destination, self.bytes.clone());
                    self.interval = (self.interval * 2).min(cfg.t2);
                    if self.state == ClientState::Proceeding {
                        self.interval = cfg.t2;
                    }
                    self.timers.set(Timer::E, now + self.interval);
                }
                Timer::B | Timer::F => {
                    self.terminate();
                    out.event(Event::Timeout {
                        tx: TxId::Client(self.id),
                        method: self.key.method.clone(),
                        branch: self.key.branch.clone(),
                    });
                }
                Timer::D | Timer::K | Timer::M => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not deliver: §17.1.1.2 / §17.1.2.2 say terminate and inform the TU.
    pub fn on_transport_error(&mut self, out: &mut Outbox) {
        if self.state == ClientState::Terminated {
            return;
        }
        self.terminate();
        out.event(Event::TransportError {
            tx: TxId::Client(self.id),
            method: self.key.method.clone(),
            branch: self.key.branch.clone(),
        });
    }

    fn terminate(&mut self) {
        self.timers.clear_all();
        self.held_cancel = None;
        self.state = ClientState::Terminated;
    }

    /// The ACK for a non-2xx final (§17.1.1.3): Request-URI, Call-ID, From, CSeq number and
    /// the top Via of the INVITE, To of the response, and the INVITE's Route headers.
    fn ack_for(&self, response: &Message) -> Message {
        let uri = match &self.request.start {
            StartLine::Request { uri, .. } => uri.clone(),
            StartLine::Response { .. } => crate::message::Uri::Other("sip:invalid".into()),
        };
        let mut ack = Message::new_request(Method::Ack, uri);
        let h = &self.request.headers;
        if let Some(via) = h.top_via() {
            ack.headers
                .push(HeaderName::Via, HeaderValue::Via(via.clone()));
        }
        ack.headers
            .push(HeaderName::MaxForwards, HeaderValue::Number(70));
        for (name, from) in [
            (HeaderName::From, h.from()),
            (HeaderName::To, response.headers.to().or(h.to())),
        ] {
            if let Some(v) = from {
                ack.headers.push(name, HeaderValue::NameAddr(v.clone()));
            }
        }
        if let Some(id) = h.call_id() {
            ack.headers
                .push(HeaderName::CallId, HeaderValue::Text(id.into()));
        }
        if let Some(c) = h.cseq() {
            ack.headers.push(
                HeaderName::CSeq,
                HeaderValue::CSeq(crate::CSeq {
                    seq: c.seq,
                    method: Method::Ack,
                }),
            );
        }
        for r in h.routes() {
            ack.headers
                .push(HeaderName::Route, HeaderValue::NameAddr(r.clone()));
        }
        ack
    }
}
