//! Server transactions: INVITE (RFC 3261 §17.2.1, Figure 7, with RFC 6026 Accepted) and
//! non-INVITE (§17.2.2, Figure 8). The INVITE server transaction also carries the UAS core's
//! 2xx retransmission (§13.3.1.4), so the TU answers once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::key::{AckKey, ServerKey};
use super::{ServerTxId, Timer, TimerConfig, TimerTable, Transport, TxId};
use crate::endpoint::{Event, Outbox};
use crate::error::Error;
use crate::message::{Message, Method};

/// Where a server transaction stands, named after what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerState {
    /// Non-INVITE received; waiting for the TU's first response.
    Trying,
    /// A provisional was sent (INVITE: from the start); waiting for the final.
    Proceeding,
    /// A final was sent: INVITE non-2xx waits for the ACK (Timers G, H); non-INVITE absorbs
    /// request retransmissions (Timer J).
    Completed,
    /// INVITE: the ACK arrived; absorbing ACK retransmissions (Timer I).
    Confirmed,
    /// INVITE: a 2xx was sent; retransmitting it until the ACK, absorbing INVITE
    /// retransmissions until Timer L (RFC 6026 §8.7).
    Accepted,
    /// Done; the endpoint removes it.
    Terminated,
}

/// One server transaction.
#[derive(Debug)]
pub(crate) struct ServerTx {
    pub id: ServerTxId,
    pub key: ServerKey,
    pub method: Method,
    pub branch: String,
    pub transport: Transport,
    /// Where responses go (§18.2.2, RFC 3581 §4).
    pub reply_to: SocketAddr,
    pub state: ServerState,
    timers: TimerTable,
    interval: Duration,
    last_response: Option<Vec<u8>>,
    /// To tag of our final response (RFC 2543 ACK matching, §17.2.3).
    pub final_to_tag: Option<String>,
    /// Dialog key of our 2xx, so its ACK (a new transaction) finds us.
    pub ack_key: Option<AckKey>,
    /// Whether the ACK for our 2xx arrived.
    pub acked: bool,
}

impl ServerTx {
    /// A new server transaction for a request that matched none (§17.2.1, §17.2.2).
    pub fn new(
        id: ServerTxId,
        key: ServerKey,
        request: &Message,
        transport: Transport,
        reply_to: SocketAddr,
    ) -> ServerTx {
        let method = request.method().cloned().unwrap_or(Method::Options);
        let branch = request
            .headers
            .top_via()
            .and_then(|v| v.branch())
            .unwrap_or("")
            .to_owned();
        let state = if method == Method::Invite {
            ServerState::Proceeding
        } else {
            ServerState::Trying
        };
        ServerTx {
            id,
            key,
            method,
            branch,
            transport,
            reply_to,
            state,
            timers: TimerTable::default(),
            interval: Duration::ZERO,
            last_response: None,
            final_to_tag: None,
            ack_key: None,
            acked: false,
        }
    }

    fn is_invite(&self) -> bool {
        self.method == Method::Invite
    }

    /// Whether no final response has been sent yet (a CANCEL still has an effect, §9.2).
    pub fn is_pending(&self) -> bool {
        matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }

    /// The next deadline of this transaction.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next().map(|(at, _)| at)
    }

    /// Sends a response from the TU (or the endpoint's own 100 Trying).
    pub fn respond(
        &mut self,
        now: Instant,
        cfg: &TimerConfig,
        response: &Message,
        out: &mut Outbox,
    ) -> Result<(), Error> {
        let status = response
            .status()
            .ok_or(Error::WrongMessageKind("expected a response"))?;
        let allowed = match self.state {
            ServerState::Trying | ServerState::Proceeding => true,
            // RFC 6026 §8.7: the TU may pass further 2xx in Accepted.
            ServerState::Accepted => status.is_success(),
            _ => false,
        };
        if !allowed {
            return Err(Error::InvalidTransactionState {
                id: self.id.0,
                action: "send this response",
            });
        }
        let bytes = response.to_bytes();
        out.send(self.transport, self.reply_to, bytes.clone());
        self.last_response = Some(bytes);
        let reliable = self.transport.is_reliable();
        if status.is_provisional() {
            self.state = ServerState::Proceeding;
            return Ok(());
        }
        self.final_to_tag = response
            .headers
            .to()
            .and_then(|t| t.tag())
            .map(str::to_owned);
        if !self.is_invite() {
            // §17.2.2: Timer J = 64·T1 on unreliable transports, else zero.
            let wait = if reliable {
                Duration::ZERO
            } else {
                cfg.timeout()
            };
            self.timers.set(Timer::J, now + wait);
            self.state = ServerState::Completed;
            return Ok(());
        }
        if status.is_success() {
            if self.state != ServerState::Accepted {
                self.timers.set(Timer::L, now + cfg.timeout());
                self.ack_key = AckKey::of(response);
                self.interval = cfg.t1;
                self.timers.set(Timer::Retransmit2xx, now + cfg.t1);
            }
            self.state = ServerState::Accepted;
            return Ok(());
        }
        if !reliable {
            self.interval = cfg.t1;
            self.timers.set(Timer::G, now + cfg.t1);
        }
        self.timers.set(Timer::H, now + cfg.timeout());
        self.state = ServerState::Completed;
        Ok(())
    }

    /// A retransmission of the request arrived: resend the last response (§17.2.1, §17.2.2).
    pub fn on_retransmission(&mut self, out: &mut Outbox) {
        let resend = match self.state {
            ServerState::Proceeding | ServerState::Completed => true,
            // RFC 6026 §8.7 absorbs INVITE retransmissions in Accepted; our 2xx is still being
            // retransmitted, so resending it now only helps the peer.
            ServerState::Accepted => !self.acked,
            _ => false,
        };
        if resend && let Some(bytes) = &self.last_response {
            out.send(self.transport, self.reply_to, bytes.clone());
        }
    }

    /// An ACK matched this INVITE transaction. Returns whether it acknowledges our 2xx and
    /// goes to the TU (RFC 6026 §8.7); an ACK for a non-2xx is absorbed here.
    pub fn on_ack(&mut self, now: Instant, cfg: &TimerConfig) -> bool {
        match self.state {
            ServerState::Completed => {
                // §17.2.1: Confirmed; Timer I absorbs further ACKs (T4, or zero if reliable).
                self.timers.clear(Timer::G);
                self.timers.clear(Timer::H);
                let wait = if self.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    cfg.t4
                };
                self.timers.set(Timer::I, now + wait);
                self.state = ServerState::Confirmed;
                false
            }
            ServerState::Accepted => {
                let first = !self.acked;
                self.acked = true;
                self.timers.clear(Timer::Retransmit2xx);
                first
            }
            _ => false,
        }
    }

    /// Runs every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant, cfg: &TimerConfig, out: &mut Outbox) {
        while let Some(timer) = self.timers.take_due(now) {
            match timer {
                Timer::G | Timer::Retransmit2xx => {
                    if let Some(bytes) = &self.last_response {
                        out.send(self.transport, self.reply_to, bytes.clone());
                    }
                    self.interval = (self.interval * 2).min(cfg.t2);
                    self.timers.set(timer, now + self.interval);
                }
                Timer::H => {
                    // §17.2.1: no ACK for our non-2xx final.
                    self.terminate();
                    out.event(Event::Timeout {
                        tx: TxId::Server(self.id),
                        method: self.method.clone(),
                        branch: self.branch.clone(),
                    });
                }
                Timer::L => {
                    let unacked = !self.acked;
                    self.terminate();
                    if unacked {
                        // §13.3.1.4: no ACK within 64·T1; the TU should end the dialog.
                        out.event(Event::AckTimeout { tx: self.id });
                    }
                }
                Timer::I | Timer::J => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport failed to deliver our response (§17.2.4): terminate and tell the TU.
    pub fn on_transport_error(&mut self, out: &mut Outbox) {
        if self.state == ServerState::Terminated {
            return;
        }
        self.terminate();
        out.event(Event::TransportError {
            tx: TxId::Server(self.id),
            method: self.method.clone(),
            branch: self.branch.clone(),
        });
    }

    fn terminate(&mut self) {
        self.timers.clear_all();
        self.state = ServerState::Terminated;
    }
}
