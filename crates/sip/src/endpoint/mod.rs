//! The sans-IO transaction layer: bytes and framed messages in, transmits, events and one
//! deadline out. It owns every client and server transaction, matches messages to them
//! (RFC 3261 §17.1.3, §17.2.3), answers what the RFC lets a transaction layer answer on its own
//! (100 Trying, retransmitted responses, CANCEL, malformed requests) and hands the rest to the
//! transaction user as [`Event`]s.

mod inbound;
mod nat;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::error::Error;
use crate::message::{HeaderName, HeaderValue, Limits, Message, Method, Reason};
use crate::random::{self, SeededRandom};
use crate::transaction::client::{ClientState, ClientTx};
use crate::transaction::key::{AckKey, ClientKey, ServerKey};
use crate::transaction::server::{ServerState, ServerTx};
use crate::transaction::{ClientTxId, ServerTxId, TimerConfig, Transport, TxId};

pub use nat::{apply_received_rport, response_destination};

/// Settings of an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// Framing and parsing limits for datagrams.
    pub limits: Limits,
    /// Send 100 Trying as soon as an INVITE arrives (RFC 3261 §17.2.1 allows it; it stops the
    /// client's Timer A at once). Default `true`.
    pub auto_trying: bool,
    /// A `Server` header for the responses the endpoint builds itself (100, 400, 481, CANCEL 200).
    pub server_header: Option<String>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            timers: TimerConfig::default(),
            limits: Limits::default(),
            auto_trying: true,
            server_header: None,
        }
    }
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport to use (over TCP/TLS: the connection to `destination`).
    pub transport: Transport,
    /// Where to.
    pub destination: SocketAddr,
    /// One complete SIP message.
    pub bytes: Vec<u8>,
}

/// What the endpoint reports to its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new request (never a retransmission, never an ACK). Its top Via already carries
    /// `received`/`rport` (RFC 3581), so `Message::response_to` copies them. Answer it with
    /// [`Endpoint::respond`].
    Request {
        /// Its server transaction.
        tx: ServerTxId,
        /// The request.
        request: Message,
        /// Transport it came on.
        transport: Transport,
        /// Source address.
        source: SocketAddr,
    },
    /// An ACK for a 2xx: it forms no transaction of its own (RFC 3261 §17.1.1.3).
    Ack {
        /// The ACK.
        request: Message,
        /// The INVITE server transaction whose 2xx it acknowledges, if still known; its 2xx
        /// retransmission has stopped.
        invite_tx: Option<ServerTxId>,
        /// Transport it came on.
        transport: Transport,
        /// Source address.
        source: SocketAddr,
    },
    /// A CANCEL matched a pending INVITE server transaction; the endpoint already answered the
    /// CANCEL with 200 (RFC 3261 §9.2). The TU should answer the INVITE with 487.
    Cancelled {
        /// The INVITE's server transaction.
        invite_tx: ServerTxId,
        /// The CANCEL (its Reason header says why, RFC 3326).
        cancel: Message,
    },
    /// A response to one of our requests: each provisional, the final, and for an INVITE each
    /// 2xx retransmission in the Accepted state (RFC 6026 §8.4), to be ACKed again. The ACK for
    /// a non-2xx final was already sent by the transaction (§17.1.1.3).
    Response {
        /// The client transaction.
        tx: ClientTxId,
        /// The response.
        response: Message,
    },
    /// Timer B or F (client: no final response; treat as 408, §8.1.3.1) or Timer H (server:
    /// no ACK for our non-2xx final).
    Timeout {
        /// The transaction.
        tx: TxId,
        /// Its method.
        method: Method,
        /// Its top Via branch.
        branch: String,
    },
    /// Our 2xx to an INVITE was retransmitted for 64·T1 without an ACK (§13.3.1.4): the TU
    /// should end the dialog with BYE.
    AckTimeout {
        /// The INVITE's server transaction.
        tx: ServerTxId,
    },
    /// The shell reported that a send for this transaction failed (§8.1.3.1: treat as 503).
    TransportError {
        /// The transaction.
        tx: TxId,
        /// Its method.
        method: Method,
        /// Its top Via branch.
        branch: String,
    },
    /// Input that was not a valid message, or a request that lacked mandatory headers. A 400
    /// (or 505/513) was sent when a Via could be read from it.
    Malformed {
        /// Source address.
        source: SocketAddr,
        /// Transport.
        transport: Transport,
        /// What was wrong.
        error: Error,
    },
}

/// Outputs collected while handling one input.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Outbox {
    pub(crate) fn send(&mut self, transport: Transport, destination: SocketAddr, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport,
            destination,
            bytes,
        });
    }
    pub(crate) fn event(&mut self, event: Event) {
        self.events.push_back(event);
    }
}

/// The transaction layer of one SIP element (see the module docs).
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: SeededRandom,
    next_id: u64,
    clients: BTreeMap<ClientTxId, ClientTx>,
    client_index: HashMap<ClientKey, ClientTxId>,
    servers: BTreeMap<ServerTxId, ServerTx>,
    server_index: HashMap<ServerKey, ServerTxId>,
    ack_index: HashMap<AckKey, ServerTxId>,
    out: Outbox,
}

impl Endpoint {
    /// An endpoint with `cfg`; `seed` feeds the generator of tags and branches the endpoint
    /// needs itself (and lends through [`Endpoint::new_tag`] and friends).
    pub fn new(cfg: EndpointConfig, seed: u64) -> Self {
        Self {
            cfg,
            rng: SeededRandom::new(seed),
            next_id: 1,
            clients: BTreeMap::new(),
            client_index: HashMap::new(),
            servers: BTreeMap::new(),
            server_index: HashMap::new(),
            ack_index: HashMap::new(),
            out: Outbox::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// A new RFC 3261 branch from the endpoint's generator.
    pub fn new_branch(&mut self) -> String {
        random::new_branch(&mut self.rng)
    }
    /// A new tag from the endpoint's generator.
    pub fn new_tag(&mut self) -> String {
        random::new_tag(&mut self.rng)
    }
    /// A new Call-ID from the endpoint's generator.
    pub fn new_call_id(&mut self, host: &str) -> String {
        random::new_call_id(&mut self.rng, host)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }
    /// Next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }
    /// The earliest deadline of any transaction: call [`Endpoint::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = self.clients.values().filter_map(ClientTx::next_deadline);
        let s = self.servers.values().filter_map(ServerTx::next_deadline);
        c.chain(s).min()
    }

    /// Number of live transactions (client, server), for metrics and tests.
    pub fn transaction_counts(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    /// The request of a live client transaction.
    pub fn client_request(&self, tx: ClientTxId) -> Option<&Message> {
        self.clients.get(&tx).map(|t| &t.request)
    }

    /// Runs every timer due at `now`, in deadline order.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due: Vec<(Instant, TxId)> = self
            .clients
            .values()
            .filter_map(|t| t.next_deadline().map(|d| (d, TxId::Client(t.id))))
            .chain(
                self.servers
                    .values()
                    .filter_map(|t| t.next_deadline().map(|d| (d, TxId::Server(t.id)))),
            )
            .filter(|(d, _)| *d <= now)
            .collect();
        due.sort();
        let cfg = self.cfg.timers;
        for (_, id) in due {
            match id {
                TxId::Client(id) => {
                    if let Some(tx) = self.clients.get_mut(&id) {
                        tx.on_timeout(now, &cfg, &mut self.out);
                    }
                    self.reap_client(id);
                }
                TxId::Server(id) => {
                    if let Some(tx) = self.servers.get_mut(&id) {
                        tx.on_timeout(now, &cfg, &mut self.out);
                    }
                    self.reap_server(id);
                }
            }
        }
    }

    /// The shell could not send to `destination` over `transport` (ICMP error, connection
    /// refused or reset): every transaction using that destination fails (§17.1.4, §17.2.4).
    pub fn handle_transport_error(
        &mut self,
        _now: Instant,
        transport: Transport,
        destination: SocketAddr,
    ) {
        let clients: Vec<ClientTxId> = self
            .clients
            .values()
            .filter(|t| t.transport == transport && t.destination == destination)
            .map(|t| t.id)
            .collect();
        for id in clients {
            if let Some(tx) = self.clients.get_mut(&id) {
                tx.on_transport_error(&mut self.out);
            }
            self.reap_client(id);
        }
        let servers: Vec<ServerTxId> = self
            .servers
            .values()
            .filter(|t| t.transport == transport && t.reply_to == destination)
            .map(|t| t.id)
            .collect();
        for id in servers {
            if let Some(tx) = self.servers.get_mut(&id) {
                tx.on_transport_error(&mut self.out);
            }
            self.reap_server(id);
        }
    }

    /// Sends a response on a server transaction: provisional or final. A 2xx to an INVITE is
    /// retransmitted by the endpoint until the ACK (§13.3.1.4); the TU sends it once.
    pub fn respond(
        &mut self,
        now: Instant,
        tx: ServerTxId,
        response: Message,
    ) -> Result<(), Error> {
        let cfg = self.cfg.timers;
        let t = self
            .servers
            .get_mut(&tx)
            .ok_or(Error::UnknownTransaction(tx.0))?;
        t.respond(now, &cfg, &response, &mut self.out)?;
        if let Some(key) = t.ack_key.clone() {
            self.ack_index.insert(key, tx);
        }
        Ok(())
    }

    /// Starts a client transaction for `request` (not ACK: see [`Endpoint::send_stateless`]).
    /// The request must carry every RFC 3261 §8.1.1 header and a top Via whose branch starts
    /// with the magic cookie (use [`Endpoint::new_branch`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        transport: Transport,
        destination: SocketAddr,
    ) -> Result<ClientTxId, Error> {
        request.validate_request()?;
        if request.method() == Some(&Method::Ack) {
            return Err(Error::WrongMessageKind(
                "an ACK forms no transaction; send it with send_stateless",
            ));
        }
        let id = ClientTxId(self.next_id());
        self.start_client(now, id, request, transport, destination)?;
        Ok(id)
    }

    fn start_client(
        &mut self,
        now: Instant,
        id: ClientTxId,
        request: Message,
        transport: Transport,
        destination: SocketAddr,
    ) -> Result<(), Error> {
        let via_ok = request
            .headers
            .top_via()
            .is_some_and(|v| v.has_rfc3261_branch());
        let key = ClientKey::of(&request)
            .filter(|_| via_ok)
            .ok_or(Error::InvalidHeaderValue {
                header: "Via",
                reason: "the top Via needs a branch starting with z9hG4bK",
            })?;
        if self.client_index.contains_key(&key) {
            return Err(Error::InvalidHeaderValue {
                header: "Via",
                reason: "this branch is already used by a live transaction; use a new branch",
            });
        }
        let cfg = self.cfg.timers;
        let tx = ClientTx::start(
            id,
            key.clone(),
            request,
            transport,
            destination,
            now,
            &cfg,
            &mut self.out,
        );
        self.client_index.insert(key, id);
        self.clients.insert(id, tx);
        Ok(())
    }

    /// Cancels a pending INVITE (RFC 3261 §9.1): builds the CANCEL from it (same Request-URI,
    /// Call-ID, From, To, CSeq number, top Via and Route) and starts its transaction. Before any
    /// provisional response the CANCEL is held and sent with the first one; if a final
    /// response comes first, it is dropped (the INVITE's 2xx then reaches the TU, which ACKs
    /// and BYEs, case 022).
    pub fn cancel(
        &mut self,
        now: Instant,
        invite: ClientTxId,
        reason: Option<Reason>,
    ) -> Result<ClientTxId, Error> {
        let t = self
            .clients
            .get(&invite)
            .ok_or(Error::UnknownTransaction(invite.0))?;
        if t.key.method != Method::Invite
            || !matches!(t.state, ClientState::Calling | ClientState::Proceeding)
            || t.held_cancel.is_some()
        {
            return Err(Error::InvalidTransactionState {
                id: invite.0,
                action: "be cancelled",
            });
        }
        let cancel = build_cancel(&t.request, reason);
        let (transport, destination, calling) =
            (t.transport, t.destination, t.state == ClientState::Calling);
        let id = ClientTxId(self.next_id());
        if calling {
            if let Some(t) = self.clients.get_mut(&invite) {
                t.held_cancel = Some((id, cancel));
            }
        } else {
            self.start_client(now, id, cancel, transport, destination)?;
        }
        Ok(id)
    }

    /// Sends a message outside any transaction: the ACK for a 2xx (§13.2.2.4), or a response
    /// a TU must send statelessly. Sent once; nothing is retransmitted.
    pub fn send_stateless(
        &mut self,
        _now: Instant,
        msg: &Message,
        transport: Transport,
        destination: SocketAddr,
    ) {
        self.out.send(transport, destination, msg.to_bytes());
    }

    fn reap_client(&mut self, id: ClientTxId) {
        if self
            .clients
            .get(&id)
            .is_some_and(|t| t.state == ClientState::Terminated)
            && let Some(t) = self.clients.remove(&id)
        {
            self.client_index.remove(&t.key);
        }
    }

    fn reap_server(&mut self, id: ServerTxId) {
        if self
            .servers
            .get(&id)
            .is_some_and(|t| t.state == ServerState::Terminated)
            && let Some(t) = self.servers.remove(&id)
        {
            self.server_index.remove(&t.key);
            if let Some(k) = &t.ack_key {
                self.ack_index.remove(k);
            }
        }
    }

    fn add_server_header(&self, response: &mut Message) {
        if let Some(s) = &self.cfg.server_header {
            response.headers.push(
                HeaderName::Other("Server".into()),
                HeaderValue::Text(s.as_str().into()),
            );
        }
    }
}

/// The CANCEL for `invite` (RFC 3261 §9.1).
fn build_cancel(invite: &Message, reason: Option<Reason>) -> Message {
    let uri = invite
        .request_uri()
        .cloned()
        .unwrap_or(crate::message::Uri::Other("sip:invalid".into()));
    let mut cancel = Message::new_request(Method::Cancel, uri);
    let h = &invite.headers;
    if let Some(via) = h.top_via() {
        cancel
            .headers
            .push(HeaderName::Via, HeaderValue::Via(via.clone()));
    }
    cancel
        .headers
        .push(HeaderName::MaxForwards, HeaderValue::Number(70));
    for (name, value) in [(HeaderName::From, h.from()), (HeaderName::To, h.to())] {
        if let Some(v) = value {
            cancel.headers.push(name, HeaderValue::NameAddr(v.clone()));
        }
    }
    if let Some(id) = h.call_id() {
        cancel
            .headers
            .push(HeaderName::CallId, HeaderValue::Text(id.into()));
    }
    if let Some(c) = h.cseq() {
        cancel.headers.push(
            HeaderName::CSeq,
            HeaderValue::CSeq(crate::CSeq {
                seq: c.seq,
                method: Method::Cancel,
            }),
        );
    }
    for r in h.routes() {
        cancel
            .headers
            .push(HeaderName::Route, HeaderValue::NameAddr(r.clone()));
    }
    if let Some(r) = reason {
        cancel
            .headers
            .push(HeaderName::Reason, HeaderValue::Reason(r));
    }
    cancel
}
