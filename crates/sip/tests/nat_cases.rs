#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Field case 014 (NAT'd caller: Via rport/received) through the endpoint, sans-IO. The case's
//! documentation addresses are mapped to loopback: the caller's public address 192.0.2.50 is
//! 127.0.0.50 here, 192.0.2.51 is 127.0.0.51.

use std::net::SocketAddr;
use std::time::Instant;

use callseal_sip::{Endpoint, EndpointConfig, Event, Message, StatusCode, Transport};

macro_rules! case {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/cases/",
            $name
        ))
    };
}

/// The fixture as it travels (CRLF line ends).
fn wire(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn sent(ep: &mut Endpoint) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| (t.destination, Message::parse(&t.bytes).unwrap()))
        .collect()
}

fn top_via_line(msg: &Message) -> String {
    let text = String::from_utf8(msg.to_bytes()).unwrap();
    text.lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap()
        .to_owned()
}

#[test]
fn case_014_rport_gets_the_source_port_and_received_the_source_address() {
    let mut ep = Endpoint::new(EndpointConfig::default(), 14);
    let from: SocketAddr = "127.0.0.50:40123".parse().unwrap();
    ep.handle_datagram(
        Instant::now(),
        Transport::Udp,
        from,
        &wire(case!("014-via-rport-nat.request.sip")),
    );
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1, "one 100 Trying");
    let (to, trying) = &out[0];
    assert_eq!(trying.status(), Some(StatusCode::TRYING));
    assert_eq!(
        *to, from,
        "RFC 3581 §4: back to the source address and port"
    );
    let expected = Message::parse(&wire(
        &case!("014-via-rport-nat.expected-100.sip").replace("192.0.2.50", "127.0.0.50"),
    ))
    .unwrap();
    assert_eq!(top_via_line(trying), top_via_line(&expected));
    assert!(
        matches!(ep.poll_event(), Some(Event::Request { source, .. }) if source == from),
        "the request reaches the transaction user with its real source"
    );
}

#[test]
fn case_014_without_rport_the_answer_goes_to_received_and_the_sent_by_port() {
    // From the case's 5060 and from another source port: RFC 3261 §18.2.2 uses the sent-by
    // port either way, the source port only when rport asked for it.
    for source_port in [5060, 40999] {
        let mut ep = Endpoint::new(EndpointConfig::default(), 15);
        let from: SocketAddr = format!("127.0.0.51:{source_port}").parse().unwrap();
        let now = Instant::now();
        ep.handle_datagram(
            now,
            Transport::Udp,
            from,
            &wire(case!("014-via-rport-nat.no-rport-request.sip")),
        );
        let Some(Event::Request { tx, request, .. }) = ep.poll_event() else {
            panic!("the OPTIONS reaches the transaction user");
        };
        ep.respond(
            now,
            tx,
            Message::response_to(&request, StatusCode::OK, Some("t14")),
        )
        .unwrap();
        let out = sent(&mut ep);
        assert_eq!(out.len(), 1);
        let (to, ok) = &out[0];
        assert_eq!(
            *to,
            "127.0.0.51:5060".parse::<SocketAddr>().unwrap(),
            "received address, sent-by port"
        );
        let via = top_via_line(ok);
        assert!(via.contains("received=127.0.0.51"), "{via}");
        assert!(!via.contains("rport"), "no rport added unasked: {via}");
    }
}
