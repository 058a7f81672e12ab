//! A UAC and a UAS, each an [`Endpoint`] with a small transaction user, place calls to each
//! other over a simulated UDP network that loses 20 % of the datagrams, duplicates some and
//! delivers the rest after random delays (so out of order). Time is simulated: the loop jumps
//! to the next delivery, timer deadline or TU action. Every call (INVITE → 180 → 200 → ACK,
//! then BYE → 200) must complete, only through the RFC 3261 §17 retransmissions and the
//! §13.3.1.4 2xx retransmission, and both endpoints must end with no transaction left.
//!
//! The UAC sits behind a NAT: its Via says `10.0.0.5:5060;rport`, its packets arrive from
//! another address, so every response reaches it only through RFC 3581 `rport` handling.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use callseal_sip::{
    CSeq, Contact, Dialog, Dialogs, Endpoint, EndpointConfig, Event, HeaderName, HeaderValue, Host,
    MediaType, Message, Method, NameAddr, Routed, SipUri, StatusCode, Transport, Uri, Via,
};

const CALLS: usize = 40;
const LOSS: f64 = 0.20;
const DUPLICATE: f64 = 0.05;
const MAX_DELAY_MS: u64 = 400;

/// Where the UAC's packets come from (the public side of its NAT).
const UAC_PUBLIC: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5061);
/// What the UAC believes its address is (put into Via and Contact).
const UAC_PRIVATE: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 0, 5), 5060);
const UAS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 5060);

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

// ---------------------------------------------------------------------------------------------
// Deterministic randomness and the network.

/// xorshift64*: the network's own generator, so a seed replays the same run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo + 1))
    }
}

struct Packet {
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct NetStats {
    sent: usize,
    dropped: usize,
    duplicated: usize,
    delivered: usize,
    /// Datagrams sent to an address nobody listens on (a response routed wrongly).
    misrouted: usize,
    /// Deliveries that overtook a datagram sent earlier on the same path.
    reordered: usize,
}

struct Network {
    rng: Rng,
    seq: u64,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    packets: HashMap<u64, Packet>,
    /// Per path, the highest send sequence delivered so far (to count reordering).
    last_delivered: HashMap<(SocketAddr, SocketAddr), u64>,
    stats: NetStats,
}

impl Network {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            seq: 0,
            queue: BinaryHeap::new(),
            packets: HashMap::new(),
            last_delivered: HashMap::new(),
            stats: NetStats::default(),
        }
    }

    fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.stats.sent += 1;
        if to != UAS && to != UAC_PUBLIC {
            self.stats.misrouted += 1;
            return;
        }
        if self.rng.chance(LOSS) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(DUPLICATE) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.seq += 1;
            let at = now + self.rng.millis(1, MAX_DELAY_MS);
            self.queue.push(Reverse((at, self.seq)));
            self.packets.insert(
                self.seq,
                Packet {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Packet> {
        let Reverse((at, seq)) = *self.queue.peek()?;
        if at > now {
            return None;
        }
        self.queue.pop();
        let p = self.packets.remove(&seq)?;
        let last = self.last_delivered.entry((p.from, p.to)).or_insert(0);
        if seq < *last {
            self.stats.reordered += 1;
        }
        *last = (*last).max(seq);
        self.stats.delivered += 1;
        Some(p)
    }
}

// ---------------------------------------------------------------------------------------------
// The UAC's transaction user: places calls, ACKs every 2xx, hangs up after a while.

struct UacCall {
    invite: Message,
    dialog: Option<Dialog>,
    ack: Option<Message>,
    bye_sent: bool,
    done: bool,
}

struct Uac {
    ep: Endpoint,
    calls: Vec<UacCall>,
    by_tx: HashMap<callseal_sip::ClientTxId, usize>,
    /// (when, call index, what) — call starts and hang-ups.
    agenda: BTreeMap<(Instant, usize), UacAction>,
    acks_sent: usize,
    failures: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum UacAction {
    Call,
    HangUp,
}

fn uac_via(ep: &mut Endpoint) -> Via {
    let mut via = Via::new(
        "UDP",
        Host::V4(UAC_PRIVATE.0),
        Some(UAC_PRIVATE.1),
        &ep.new_branch(),
    );
    // RFC 3581 §3: ask the server to answer where the request really came from.
    via.params.set("rport", None);
    via
}

impl Uac {
    fn invite(&mut self, i: usize) -> Message {
        let uas_uri = SipUri::new(Some("bob"), Host::from(UAS.ip()), Some(UAS.port()));
        let mut m = Message::new_request(Method::Invite, Uri::Sip(uas_uri.clone()));
        let via = uac_via(&mut self.ep);
        let mut from = NameAddr::new(Uri::Sip(SipUri::new(
            Some("alice"),
            Host::Domain("example.com".into()),
            None,
        )));
        from.display = Some(format!("Caller {i}").into());
        from.set_tag(&self.ep.new_tag());
        let call_id = self.ep.new_call_id("example.com");
        let contact = NameAddr::new(Uri::Sip(SipUri::new(
            Some("alice"),
            Host::V4(UAC_PRIVATE.0),
            Some(UAC_PRIVATE.1),
        )));
        let h = &mut m.headers;
        h.push(HeaderName::Via, HeaderValue::Via(via));
        h.push(HeaderName::MaxForwards, HeaderValue::Number(70));
        h.push(HeaderName::From, HeaderValue::NameAddr(from));
        h.push(
            HeaderName::To,
            HeaderValue::NameAddr(NameAddr::new(Uri::Sip(uas_uri))),
        );
        h.push(HeaderName::CallId, HeaderValue::Text(call_id.into()));
        h.push(
            HeaderName::CSeq,
            HeaderValue::CSeq(CSeq {
                seq: 1,
                method: Method::Invite,
            }),
        );
        h.push(
            HeaderName::Contact,
            HeaderValue::Contact(Contact::Addr(contact)),
        );
        m.set_body(Some(MediaType::sdp()), SDP.to_vec());
        m
    }

    fn act(&mut self, now: Instant, i: usize, action: UacAction) {
        match action {
            UacAction::Call => {
                let invite = self.invite(i);
                match self
                    .ep
                    .send_request(now, invite.clone(), Transport::Udp, UAS)
                {
                    Ok(tx) => {
                        self.by_tx.insert(tx, i);
                        self.calls.push(UacCall {
                            invite,
                            dialog: None,
                            ack: None,
                            bye_sent: false,
                            done: false,
                        });
                    }
                    Err(e) => self.failures.push(format!("call {i}: INVITE refused: {e}")),
                }
            }
            UacAction::HangUp => {
                let via = uac_via(&mut self.ep);
                let call = &mut self.calls[i];
                let Some(dialog) = call.dialog.as_mut() else {
                    self.failures
                        .push(format!("call {i}: hang-up without dialog"));
                    return;
                };
                let bye = dialog.request(Method::Bye, via);
                call.bye_sent = true;
                match self.ep.send_request(now, bye, Transport::Udp, UAS) {
                    Ok(tx) => {
                        self.by_tx.insert(tx, i);
                    }
                    Err(e) => self.failures.push(format!("call {i}: BYE refused: {e}")),
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, ev: Event, rng: &mut Rng) {
        match ev {
            Event::Response { tx, response } => {
                let Some(&i) = self.by_tx.get(&tx) else {
                    self.failures.push(format!("response for unknown {tx}"));
                    return;
                };
                let status = response.status().unwrap_or(StatusCode(0));
                let method = response.headers.cseq().map(|c| c.method.clone());
                match method {
                    Some(Method::Invite) if status.is_success() => {
                        self.on_invite_2xx(now, i, &response, rng)
                    }
                    Some(Method::Invite) if status.is_provisional() => {}
                    Some(Method::Bye) if status.is_success() => {
                        if let Some(d) = &self.calls[i].dialog {
                            assert_eq!(
                                DialogIdView::of(&response),
                                Some((d.id.local_tag.clone(), d.id.remote_tag.clone())),
                                "the BYE's 200 names the call's dialog"
                            );
                        }
                        self.calls[i].done = true;
                    }
                    _ => self
                        .failures
                        .push(format!("call {i}: unexpected {} to {method:?}", status.0)),
                }
            }
            other => self.failures.push(format!("UAC event: {other:?}")),
        }
    }

    /// RFC 3261 §13.2.2.4: ACK every 2xx, the first and each retransmission, with the same ACK.
    fn on_invite_2xx(&mut self, now: Instant, i: usize, response: &Message, rng: &mut Rng) {
        if self.calls[i].ack.is_none() {
            let dialog = match Dialog::uac(&self.calls[i].invite, response) {
                Ok(d) => d,
                Err(e) => {
                    self.failures.push(format!("call {i}: no dialog: {e}"));
                    return;
                }
            };
            let via = uac_via(&mut self.ep);
            self.calls[i].ack = Some(dialog.ack(1, via));
            self.calls[i].dialog = Some(dialog);
            let hold = rng.millis(200, 2_000);
            self.agenda.insert((now + hold, i), UacAction::HangUp);
        } else if let Some(d) = &self.calls[i].dialog {
            // A retransmission must carry the same To tag (the same dialog).
            let tag = response.headers.to().and_then(|t| t.tag());
            if tag != Some(d.id.remote_tag.as_str()) {
                self.failures
                    .push(format!("call {i}: 2xx retransmission with another To tag"));
            }
        }
        if let Some(ack) = &self.calls[i].ack {
            self.ep.send_stateless(now, ack, Transport::Udp, UAS);
            self.acks_sent += 1;
        }
    }
}

/// (From tag, To tag) of a response to our request.
struct DialogIdView;
impl DialogIdView {
    fn of(m: &Message) -> Option<(String, String)> {
        Some((
            m.headers.from()?.tag()?.to_owned(),
            m.headers.to()?.tag()?.to_owned(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The UAS's transaction user: rings, answers a little later, takes the ACK, answers the BYE.

struct Uas {
    ep: Endpoint,
    dialogs: Dialogs,
    /// (when, server transaction) → the 200 to send then, with the dialog it confirms.
    agenda: BTreeMap<(Instant, u64), (callseal_sip::ServerTxId, Message, Dialog)>,
    invites: HashMap<String, usize>,
    acked: HashSet<String>,
    byes: HashMap<String, usize>,
    failures: Vec<String>,
}

impl Uas {
    fn on_event(&mut self, now: Instant, ev: Event, rng: &mut Rng) {
        match ev {
            Event::Request { tx, request, .. } => match request.method() {
                Some(Method::Invite) => self.on_invite(now, tx, request, rng),
                Some(Method::Bye) => self.on_bye(now, tx, request),
                other => self.failures.push(format!("UAS got {other:?}")),
            },
            Event::Ack {
                request, invite_tx, ..
            } => {
                let id = request.headers.call_id().unwrap_or("").to_owned();
                // Only the first ACK reaches the TU while the INVITE transaction lives
                // (RFC 6026 §8.7); a late one (after Timer L) comes without a transaction.
                if invite_tx.is_some() && !self.acked.insert(id.clone()) {
                    self.failures
                        .push(format!("ACK for {id} reached the TU twice"));
                }
            }
            other => self.failures.push(format!("UAS event: {other:?}")),
        }
    }

    fn on_invite(
        &mut self,
        now: Instant,
        tx: callseal_sip::ServerTxId,
        invite: Message,
        rng: &mut Rng,
    ) {
        let call_id = invite.headers.call_id().unwrap_or("").to_owned();
        *self.invites.entry(call_id).or_default() += 1;
        let tag = self.ep.new_tag();
        let ringing = Message::response_to(&invite, StatusCode::RINGING, Some(&tag));
        if let Err(e) = self.ep.respond(now, tx, ringing) {
            self.failures.push(format!("180 refused: {e}"));
        }
        let contact = NameAddr::new(Uri::Sip(SipUri::new(
            Some("bob"),
            Host::from(UAS.ip()),
            Some(UAS.port()),
        )));
        let dialog = match Dialog::uas(&invite, &tag, Some(contact.clone())) {
            Ok(d) => d,
            Err(e) => {
                self.failures.push(format!("no UAS dialog: {e}"));
                return;
            }
        };
        let mut ok = Message::response_to(&invite, StatusCode::OK, Some(&tag));
        ok.headers.push(
            HeaderName::Contact,
            HeaderValue::Contact(Contact::Addr(contact)),
        );
        ok.set_body(Some(MediaType::sdp()), SDP.to_vec());
        let at = now + rng.millis(20, 300);
        self.agenda.insert((at, tx.0), (tx, ok, dialog));
    }

    fn answer_due(&mut self, now: Instant) {
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (tx, ok, dialog) = entry.remove();
            self.dialogs.insert(dialog);
            if let Err(e) = self.ep.respond(now, tx, ok) {
                self.failures.push(format!("200 refused: {e}"));
            }
        }
    }

    fn on_bye(&mut self, now: Instant, tx: callseal_sip::ServerTxId, bye: Message) {
        let call_id = bye.headers.call_id().unwrap_or("").to_owned();
        *self.byes.entry(call_id.clone()).or_default() += 1;
        let (response, ended) = match self.dialogs.route(&bye) {
            Routed::InDialog(d) => {
                let id = d.id.clone();
                (Message::response_to(&bye, StatusCode::OK, None), Some(id))
            }
            Routed::Reject(r) => {
                self.failures
                    .push(format!("BYE for {call_id} rejected with {:?}", r.status()));
                (r, None)
            }
            other => {
                self.failures.push(format!("BYE routed as {other:?}"));
                return;
            }
        };
        if let Some(id) = ended {
            self.dialogs.remove(&id);
        }
        if let Err(e) = self.ep.respond(now, tx, response) {
            self.failures.push(format!("BYE 200 refused: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The simulation loop.

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Outcome {
    net: NetStats,
    /// Transmits by kind: how many were sent in all, and how many repeated earlier bytes.
    sent: BTreeMap<&'static str, (usize, usize)>,
    completed: usize,
    acks_sent: usize,
    simulated_ms: u128,
}

fn kind(bytes: &[u8]) -> &'static str {
    let Ok(m) = Message::parse(bytes) else {
        return "unparseable";
    };
    match (m.method(), m.status(), m.headers.cseq().map(|c| &c.method)) {
        (Some(Method::Invite), ..) => "INVITE",
        (Some(Method::Ack), ..) => "ACK",
        (Some(Method::Bye), ..) => "BYE",
        (None, Some(s), Some(Method::Invite)) if s.0 == 100 => "100 INVITE",
        (None, Some(s), Some(Method::Invite)) if s.0 == 180 => "180 INVITE",
        (None, Some(s), Some(Method::Invite)) if s.is_success() => "2xx INVITE",
        (None, Some(s), Some(Method::Bye)) if s.is_success() => "2xx BYE",
        _ => "other",
    }
}

fn run(seed: u64) -> Outcome {
    let t0 = Instant::now();
    let mut now = t0;
    let mut net = Network::new(seed);
    let mut tu_rng = Rng::new(seed ^ 0x5eed);
    let mut uac = Uac {
        ep: Endpoint::new(EndpointConfig::default(), seed.wrapping_add(1)),
        calls: Vec::new(),
        by_tx: HashMap::new(),
        agenda: BTreeMap::new(),
        acks_sent: 0,
        failures: Vec::new(),
    };
    let mut uas = Uas {
        ep: Endpoint::new(EndpointConfig::default(), seed.wrapping_add(2)),
        dialogs: Dialogs::new(),
        agenda: BTreeMap::new(),
        invites: HashMap::new(),
        acked: HashSet::new(),
        byes: HashMap::new(),
        failures: Vec::new(),
    };
    // Calls start 0–150 ms apart, so many overlap.
    let mut start = t0;
    for i in 0..CALLS {
        uac.agenda.insert((start, i), UacAction::Call);
        start += tu_rng.millis(0, 150);
    }

    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut out = Outcome::default();
    let limit = t0 + Duration::from_secs(600);
    loop {
        // Everything due at `now`, until nothing moves.
        loop {
            let mut moved = false;
            while let Some(p) = net.pop_due(now) {
                moved = true;
                let ep = if p.to == UAS {
                    &mut uas.ep
                } else {
                    &mut uac.ep
                };
                ep.handle_datagram(now, Transport::Udp, p.from, &p.bytes);
            }
            for ep in [&mut uac.ep, &mut uas.ep] {
                if ep.poll_timeout().is_some_and(|t| t <= now) {
                    moved = true;
                    ep.handle_timeout(now);
                }
            }
            while let Some(entry) = uac.agenda.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let ((_, i), action) = entry.remove_entry();
                moved = true;
                uac.act(now, i, action);
            }
            if uas
                .agenda
                .first_key_value()
                .is_some_and(|(k, _)| k.0 <= now)
            {
                moved = true;
                uas.answer_due(now);
            }
            while let Some(ev) = uac.ep.poll_event() {
                moved = true;
                uac.on_event(now, ev, &mut tu_rng);
            }
            while let Some(ev) = uas.ep.poll_event() {
                moved = true;
                uas.on_event(now, ev, &mut tu_rng);
            }
            for (ep, from) in [(&mut uac.ep, UAC_PUBLIC), (&mut uas.ep, UAS)] {
                while let Some(t) = ep.poll_transmit() {
                    moved = true;
                    assert_eq!(t.transport, Transport::Udp);
                    let entry = out.sent.entry(kind(&t.bytes)).or_default();
                    entry.0 += 1;
                    if !seen.insert(t.bytes.clone()) {
                        entry.1 += 1;
                    }
                    net.send(now, from, t.destination, t.bytes);
                }
            }
            if !moved {
                break;
            }
        }
        let next = [
            net.next_delivery(),
            uac.ep.poll_timeout(),
            uas.ep.poll_timeout(),
            uac.agenda.first_key_value().map(|(k, _)| k.0),
            uas.agenda.first_key_value().map(|(k, _)| k.0),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(next >= now, "deadlines never lie in the past");
        assert!(
            next < limit,
            "the simulation did not settle in 10 simulated minutes"
        );
        now = next;
    }

    assert!(uac.failures.is_empty(), "UAC failures: {:#?}", uac.failures);
    assert!(uas.failures.is_empty(), "UAS failures: {:#?}", uas.failures);
    assert_eq!(uac.calls.len(), CALLS);
    for (i, c) in uac.calls.iter().enumerate() {
        assert!(c.bye_sent && c.done, "call {i} did not complete");
        let id = c.invite.headers.call_id().unwrap_or("");
        assert_eq!(
            uas.invites.get(id),
            Some(&1),
            "call {i}: one INVITE reached the UAS TU"
        );
        assert_eq!(
            uas.byes.get(id),
            Some(&1),
            "call {i}: one BYE reached the UAS TU"
        );
        assert!(uas.acked.contains(id), "call {i}: the UAS got the ACK");
    }
    assert!(
        uas.dialogs.is_empty(),
        "every UAS dialog ended with its BYE"
    );
    // Once every timer ran out, nothing is left behind (Timers D/K/M, I/J/L).
    assert_eq!(uac.ep.transaction_counts(), (0, 0));
    assert_eq!(uas.ep.transaction_counts(), (0, 0));
    assert_eq!(
        net.stats.misrouted, 0,
        "every response reached the UAC via rport"
    );
    out.net = net.stats;
    out.completed = uac.calls.iter().filter(|c| c.done).count();
    out.acks_sent = uac.acks_sent;
    out.simulated_ms = (now - t0).as_millis();
    out
}

#[test]
fn calls_complete_over_a_lossy_reordering_network_through_retransmissions() {
    let out = run(0xCA11_5EA1);
    println!("{out:#?}");
    assert_eq!(out.completed, CALLS);
    let n = out.net.sent as f64;
    let loss = out.net.dropped as f64 / n;
    assert!(
        (0.15..0.25).contains(&loss),
        "the network lost {loss:.3} of the datagrams, not ~{LOSS}"
    );
    assert!(out.net.reordered > 0, "some datagrams overtook others");
    assert!(out.net.duplicated > 0, "some datagrams arrived twice");
    let repeats = |k: &str| out.sent.get(k).map_or(0, |s| s.1);
    // Timer A (§17.1.1.2): INVITEs lost before any response are sent again.
    assert!(
        repeats("INVITE") > 0,
        "INVITE retransmissions: {:?}",
        out.sent
    );
    // §13.3.1.4: 2xx retransmitted until the ACK arrives.
    assert!(
        repeats("2xx INVITE") > 0,
        "2xx retransmissions: {:?}",
        out.sent
    );
    // Timer E (§17.1.2.2): lost BYEs are sent again.
    assert!(repeats("BYE") > 0, "BYE retransmissions: {:?}", out.sent);
    // §17.2.2: a retransmitted BYE gets the same 200 again.
    assert!(
        repeats("2xx BYE") > 0,
        "BYE 200 retransmissions: {:?}",
        out.sent
    );
    // §13.2.2.4: each 2xx retransmission that arrives is ACKed again, with the same ACK.
    assert!(out.acks_sent > CALLS && repeats("ACK") == out.acks_sent - CALLS);
    let total_repeats: usize = out.sent.values().map(|s| s.1).sum();
    println!(
        "{} calls, {} datagrams, {} lost, {} retransmissions, {:.1} s simulated",
        out.completed,
        out.net.sent,
        out.net.dropped,
        total_repeats,
        out.simulated_ms as f64 / 1000.0
    );
}

#[test]
fn the_same_seed_replays_the_same_run_and_other_seeds_also_complete() {
    let a = run(7);
    assert_eq!(a, run(7), "sans-IO with simulated time is deterministic");
    for seed in [1, 2, 3, 0xDEAD_BEEF] {
        let o = run(seed);
        assert_eq!(o.completed, CALLS, "seed {seed}");
        assert_ne!(o.net, a.net, "seed {seed} made a different run");
    }
}
