//! Helpers shared by the transaction tests: simulated time, requests, draining an endpoint.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callseal_sip::{Endpoint, Event, Message, Transmit};

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address parses")
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A request from `sent_by` with `branch`; `method` also names the CSeq method.
pub fn request(method: &str, branch: &str, sent_by: &str, cseq: u32) -> Message {
    let text = format!(
        "{method} sip:bob@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=ftag1\r\n\
To: <sip:bob@127.0.0.1>\r\n\
Call-ID: call-1@127.0.0.1\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:alice@{sent_by}>\r\n\
Content-Length: 0\r\n\r\n"
    );
    Message::parse(text.as_bytes()).expect("test request parses")
}

/// All pending transmits.
pub fn transmits(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

/// All pending events.
pub fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Parses a transmit.
pub fn parsed(t: &Transmit) -> Message {
    Message::parse(&t.bytes).expect("endpoint output parses")
}

/// Things that happened, each with its time in seconds since the start.
pub type Timed<T> = Vec<(f64, T)>;

/// Runs the endpoint's timers from `t0` up to `t0 + until`; returns (seconds since t0, what
/// was sent then) for every send, and the events with their time.
pub fn run_timers(
    ep: &mut Endpoint,
    t0: Instant,
    until: Duration,
) -> (Timed<Transmit>, Timed<Event>) {
    let mut sent = Vec::new();
    let mut evs = Vec::new();
    while let Some(at) = ep.poll_timeout() {
        if at > t0 + until {
            break;
        }
        ep.handle_timeout(at);
        let s = (at - t0).as_secs_f64();
        for t in transmits(ep) {
            sent.push((s, t));
        }
        for e in events(ep) {
            evs.push((s, e));
        }
    }
    (sent, evs)
}

pub fn times(sent: &[(f64, Transmit)]) -> Vec<f64> {
    sent.iter()
        .map(|(s, _)| (s * 1000.0).round() / 1000.0)
        .collect()
}
