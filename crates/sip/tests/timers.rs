//! Every RFC 3261 §17 timer on simulated time (and RFC 6026's L and M).

mod common;

use std::time::{Duration, Instant};

use callseal_sip::{Endpoint, EndpointConfig, Event, Message, Method, StatusCode, Transport, TxId};
use common::*;

const PEER: &str = "127.0.0.2:5060";

fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig::default(), 1)
}

fn response(req: &Message, code: u16) -> Message {
    Message::response_to(req, StatusCode(code), Some("totag"))
}

#[test]
fn invite_client_retransmits_at_doubling_intervals_and_times_out_at_32s() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let tx = ep
        .send_request(
            t0,
            request("INVITE", "z9hG4bKinv", "127.0.0.1:5060", 1),
            Transport::Udp,
            addr(PEER),
        )
        .expect("INVITE starts");
    assert_eq!(transmits(&mut ep).len(), 1, "the INVITE is sent at once");
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert_eq!(times(&sent), vec![0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert!(
        sent.iter()
            .all(|(_, t)| parsed(t).method() == Some(&Method::Invite))
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, 32.0);
    assert!(
        matches!(&evs[0].1, Event::Timeout { tx: TxId::Client(id), method: Method::Invite, .. } if *id == tx)
    );
    assert_eq!(ep.transaction_counts(), (0, 0));
}

#[test]
fn reliable_transports_never_retransmit_but_still_time_out() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.send_request(
        t0,
        request("INVITE", "z9hG4bKtcp", "127.0.0.1:5060", 1),
        Transport::Tcp,
        addr(PEER),
    )
    .expect("INVITE starts");
    transmits(&mut ep);
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert!(sent.is_empty());
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, 32.0, "Timer B");
}

#[test]
fn provisional_stops_timer_a_and_non_2xx_is_acked_with_timer_d() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let invite = request("INVITE", "z9hG4bKd", "127.0.0.1:5060", 1);
    let tx = ep
        .send_request(t0, invite.clone(), Transport::Udp, addr(PEER))
        .expect("starts");
    transmits(&mut ep);
    ep.handle_stream_message(
        t0 + secs(0.2),
        Transport::Udp,
        addr(PEER),
        response(&invite, 180),
    );
    let (sent, _) = run_timers(&mut ep, t0, secs(10.0));
    assert!(sent.is_empty(), "no retransmission after a 1xx");
    let busy = response(&invite, 486);
    let t1 = t0 + secs(10.0);
    ep.handle_stream_message(t1, Transport::Udp, addr(PEER), busy.clone());
    let out = transmits(&mut ep);
    assert_eq!(out.len(), 1);
    let ack = parsed(&out[0]);
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.headers.top_via().and_then(|v| v.branch()),
        Some("z9hG4bKd")
    );
    assert_eq!(ack.headers.to().and_then(|t| t.tag()), Some("totag"));
    assert_eq!(
        ack.headers.cseq().map(|c| (c.seq, c.method.clone())),
        Some((1, Method::Ack))
    );
    let evs = events(&mut ep);
    assert_eq!(evs.len(), 2, "180 and 486 reach the TU");
    assert!(
        matches!(&evs[1], Event::Response { tx: id, response } if *id == tx && response.status() == Some(StatusCode(486)))
    );
    // A retransmitted 486 is ACKed again and not passed up.
    ep.handle_stream_message(t1 + secs(1.0), Transport::Udp, addr(PEER), busy);
    assert_eq!(transmits(&mut ep).len(), 1);
    assert!(events(&mut ep).is_empty());
    // Timer D: 32 s, then the transaction is gone.
    assert_eq!(ep.poll_timeout(), Some(t1 + secs(32.0)));
    ep.handle_timeout(t1 + secs(32.0));
    assert_eq!(ep.transaction_counts(), (0, 0));
}

#[test]
fn invite_2xx_enters_accepted_passes_retransmissions_and_ends_with_timer_m() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let invite = request("INVITE", "z9hG4bKm", "127.0.0.1:5060", 1);
    let tx = ep
        .send_request(t0, invite.clone(), Transport::Udp, addr(PEER))
        .expect("starts");
    transmits(&mut ep);
    let ok = response(&invite, 200);
    ep.handle_stream_message(t0 + secs(1.0), Transport::Udp, addr(PEER), ok.clone());
    assert!(
        transmits(&mut ep).is_empty(),
        "the TU ACKs a 2xx, not the transaction"
    );
    ep.handle_stream_message(t0 + secs(2.0), Transport::Udp, addr(PEER), ok.clone());
    let evs = events(&mut ep);
    assert_eq!(
        evs.len(),
        2,
        "RFC 6026: the 2xx retransmission reaches the TU"
    );
    assert!(
        evs.iter()
            .all(|e| matches!(e, Event::Response { tx: id, .. } if *id == tx))
    );
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(33.0)), "Timer M = 64*T1");
    ep.handle_timeout(t0 + secs(33.0));
    assert_eq!(ep.transaction_counts(), (0, 0));
    ep.handle_stream_message(t0 + secs(34.0), Transport::Udp, addr(PEER), ok);
    assert!(
        events(&mut ep).is_empty(),
        "after Timer M a late 2xx is dropped"
    );
}

#[test]
fn non_invite_client_timer_e_caps_at_t2_then_timer_f() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let tx = ep
        .send_request(
            t0,
            request("OPTIONS", "z9hG4bKe", "127.0.0.1:5060", 1),
            Transport::Udp,
            addr(PEER),
        )
        .expect("starts");
    transmits(&mut ep);
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert_eq!(
        times(&sent),
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, 32.0);
    assert!(
        matches!(&evs[0].1, Event::Timeout { tx: TxId::Client(id), method: Method::Options, .. } if *id == tx)
    );
}

#[test]
fn non_invite_client_in_proceeding_retransmits_every_t2_and_timer_k_absorbs() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let bye = request("BYE", "z9hG4bKk", "127.0.0.1:5060", 2);
    ep.send_request(t0, bye.clone(), Transport::Udp, addr(PEER))
        .expect("starts");
    transmits(&mut ep);
    ep.handle_stream_message(
        t0 + secs(0.1),
        Transport::Udp,
        addr(PEER),
        response(&bye, 100),
    );
    let (sent, _) = run_timers(&mut ep, t0, secs(9.0));
    assert_eq!(
        times(&sent),
        vec![0.5, 4.5, 8.5],
        "first E at T1 as armed, then every T2"
    );
    let tfin = t0 + secs(9.0);
    let ok = response(&bye, 200);
    ep.handle_stream_message(tfin, Transport::Udp, addr(PEER), ok.clone());
    assert_eq!(
        events(&mut ep).len(),
        1,
        "the 200 (the 100 was drained with the timers)"
    );
    ep.handle_stream_message(tfin + secs(1.0), Transport::Udp, addr(PEER), ok);
    assert!(
        events(&mut ep).is_empty(),
        "Completed absorbs the retransmitted final"
    );
    assert_eq!(ep.poll_timeout(), Some(tfin + secs(5.0)), "Timer K = T4");
    ep.handle_timeout(tfin + secs(5.0));
    assert_eq!(ep.transaction_counts(), (0, 0));
}

/// Receives `req` at t0 on a fresh endpoint without auto 100 Trying; returns the server tx.
fn server(req: &Message, transport: Transport) -> (Endpoint, callseal_sip::ServerTxId, Instant) {
    let t0 = Instant::now();
    let cfg = EndpointConfig {
        auto_trying: false,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, 2);
    ep.handle_stream_message(t0, transport, addr(PEER), req.clone());
    let evs = events(&mut ep);
    let Some(Event::Request { tx, .. }) = evs.first() else {
        panic!("expected a Request event, got {evs:?}");
    };
    (ep, *tx, t0)
}

#[test]
fn invite_server_timer_g_retransmits_non_2xx_until_h() {
    let invite = request("INVITE", "z9hG4bKg", "127.0.0.2:5060", 1);
    let (mut ep, tx, t0) = server(&invite, Transport::Udp);
    ep.respond(t0, tx, response(&invite, 486)).expect("final");
    assert_eq!(transmits(&mut ep).len(), 1);
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert_eq!(
        times(&sent),
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert!(
        sent.iter()
            .all(|(_, t)| parsed(t).status() == Some(StatusCode(486)))
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, 32.0);
    assert!(matches!(&evs[0].1, Event::Timeout { tx: TxId::Server(id), .. } if *id == tx));
}

#[test]
fn invite_server_ack_stops_g_and_timer_i_absorbs_further_acks() {
    let invite = request("INVITE", "z9hG4bKi", "127.0.0.2:5060", 1);
    let (mut ep, tx, t0) = server(&invite, Transport::Udp);
    ep.respond(t0, tx, response(&invite, 404)).expect("final");
    transmits(&mut ep);
    let mut ack = request("ACK", "z9hG4bKi", "127.0.0.2:5060", 1);
    if let Some(to) = ack.headers.to_mut() {
        to.set_tag("totag");
    }
    let (sent, _) = run_timers(&mut ep, t0, secs(0.7));
    assert_eq!(times(&sent), vec![0.5], "Timer G at T1");
    let ta = t0 + secs(0.7);
    ep.handle_stream_message(ta, Transport::Udp, addr(PEER), ack.clone());
    assert!(
        events(&mut ep).is_empty(),
        "the ACK for a non-2xx stays in the transaction"
    );
    let (sent, _) = run_timers(&mut ep, t0, secs(4.0));
    assert!(sent.is_empty(), "the ACK stopped Timer G");
    assert_eq!(ep.poll_timeout(), Some(ta + secs(5.0)), "Timer I = T4");
    ep.handle_stream_message(ta + secs(1.0), Transport::Udp, addr(PEER), ack);
    assert!(events(&mut ep).is_empty() && transmits(&mut ep).is_empty());
    ep.handle_timeout(ta + secs(5.0));
    assert_eq!(ep.transaction_counts(), (0, 0));
}

#[test]
fn invite_server_2xx_is_retransmitted_until_the_ack_then_timer_l() {
    let invite = request("INVITE", "z9hG4bKl", "127.0.0.2:5060", 1);
    let (mut ep, tx, t0) = server(&invite, Transport::Udp);
    let ok = response(&invite, 200);
    ep.respond(t0, tx, ok).expect("2xx");
    transmits(&mut ep);
    let (sent, _) = run_timers(&mut ep, t0, secs(8.0));
    assert_eq!(times(&sent), vec![0.5, 1.5, 3.5, 7.5]);
    // The ACK for a 2xx has its own branch and matches by dialog.
    let mut ack = request("ACK", "z9hG4bKack", "127.0.0.2:5060", 1);
    if let Some(to) = ack.headers.to_mut() {
        to.set_tag("totag");
    }
    ep.handle_stream_message(t0 + secs(8.0), Transport::Udp, addr(PEER), ack.clone());
    let evs = events(&mut ep);
    assert!(matches!(&evs[..], [Event::Ack { invite_tx: Some(id), .. }] if *id == tx));
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert!(sent.is_empty(), "no 2xx after the ACK");
    assert!(evs.is_empty(), "acknowledged: no AckTimeout");
    assert_eq!(
        ep.transaction_counts(),
        (0, 0),
        "Timer L ended the transaction"
    );
}

#[test]
fn unacknowledged_2xx_reports_ack_timeout_at_64_t1() {
    let invite = request("INVITE", "z9hG4bKnoack", "127.0.0.2:5060", 1);
    let (mut ep, tx, t0) = server(&invite, Transport::Udp);
    ep.respond(t0, tx, response(&invite, 200)).expect("2xx");
    transmits(&mut ep);
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert_eq!(
        times(&sent),
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, 32.0);
    assert!(matches!(&evs[0].1, Event::AckTimeout { tx: id } if *id == tx));
}

#[test]
fn non_invite_server_timer_j_keeps_the_final_for_retransmissions() {
    let bye = request("BYE", "z9hG4bKj", "127.0.0.2:5060", 3);
    let (mut ep, tx, t0) = server(&bye, Transport::Udp);
    // Before any response, a retransmission is absorbed silently (Trying).
    ep.handle_stream_message(t0 + secs(0.1), Transport::Udp, addr(PEER), bye.clone());
    assert!(transmits(&mut ep).is_empty() && events(&mut ep).is_empty());
    ep.respond(t0 + secs(0.2), tx, response(&bye, 200))
        .expect("final");
    assert_eq!(transmits(&mut ep).len(), 1);
    ep.handle_stream_message(t0 + secs(5.0), Transport::Udp, addr(PEER), bye.clone());
    let again = transmits(&mut ep);
    assert_eq!(again.len(), 1, "the retransmitted BYE gets the same 200");
    assert_eq!(parsed(&again[0]).status(), Some(StatusCode::OK));
    assert!(events(&mut ep).is_empty());
    assert_eq!(
        ep.poll_timeout(),
        Some(t0 + secs(0.2) + secs(32.0)),
        "Timer J = 64*T1"
    );
    ep.handle_timeout(t0 + secs(32.2));
    assert_eq!(ep.transaction_counts(), (0, 0));
}

#[test]
fn reliable_server_timers_are_zero() {
    let bye = request("BYE", "z9hG4bKjt", "127.0.0.2:5060", 3);
    let (mut ep, tx, t0) = server(&bye, Transport::Tcp);
    ep.respond(t0, tx, response(&bye, 200)).expect("final");
    assert_eq!(ep.poll_timeout(), Some(t0), "Timer J = 0 on TCP");
    ep.handle_timeout(t0);
    assert_eq!(ep.transaction_counts(), (0, 0));
    let invite = request("INVITE", "z9hG4bKgt", "127.0.0.2:5060", 1);
    let (mut ep, tx, t0) = server(&invite, Transport::Tcp);
    ep.respond(t0, tx, response(&invite, 486)).expect("final");
    transmits(&mut ep);
    let (sent, evs) = run_timers(&mut ep, t0, secs(40.0));
    assert!(sent.is_empty(), "no Timer G on TCP");
    assert_eq!(evs.len(), 1, "Timer H still runs");
}

#[test]
fn custom_t1_scales_every_timer() {
    let t0 = Instant::now();
    let mut cfg = EndpointConfig::default();
    cfg.timers.t1 = Duration::from_millis(100);
    let mut ep = Endpoint::new(cfg, 3);
    ep.send_request(
        t0,
        request("INVITE", "z9hG4bKt1", "127.0.0.1:5060", 1),
        Transport::Udp,
        addr(PEER),
    )
    .expect("starts");
    transmits(&mut ep);
    let (sent, evs) = run_timers(&mut ep, t0, secs(10.0));
    assert_eq!(times(&sent), vec![0.1, 0.3, 0.7, 1.5, 3.1, 6.3]);
    assert_eq!(evs[0].0, 6.4);
}
