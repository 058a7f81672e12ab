#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Field cases about the parser and framing (fixtures/cases 001, 002, 003, 004, 007, 008,
//! 011, 012) and print∘parse round trips.

use callseal_sip::{
    Contact, Error, Host, Limits, Message, Method, Rport, StatusCode, StreamFramer, StreamItem,
    Uri, parse_datagram, response_for_unparseable, status_for,
};

macro_rules! case {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/cases/",
            $name
        ))
    };
}

fn parse(bytes: &[u8]) -> Result<Message, Error> {
    parse_datagram(bytes, &Limits::default())
}

#[test]
fn case_001_rfc4475_wsinv_tortuous_invite() {
    let bytes = case!("001-rfc4475-wsinv-tortuous-invite.sip");
    let msg = parse(bytes).unwrap();
    assert_eq!(msg.method(), Some(&Method::Invite));
    let h = &msg.headers;
    let vias: Vec<_> = h.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].host, Host::V4("192.0.2.10".parse().unwrap()));
    assert_eq!(vias[0].transport, "UDP");
    assert_eq!(vias[0].rport(), Some(Rport::Requested));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert!(!vias[0].has_rfc3261_branch());
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[1].host, Host::Domain("relay.example.com".into()));
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(h.max_forwards(), Some(68));
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, &cseq.method), (9, &Method::Invite));
    assert_eq!(msg.body.len(), 168);
    assert_eq!(h.to().unwrap().tag(), Some("8321234356"));
    let from = h.from().unwrap();
    assert_eq!(from.tag(), Some("9fxced76sl"));
    assert_eq!(from.display.as_deref(), Some("Bob \\\""));
    let contact = h.contact().unwrap();
    assert_eq!(contact.params.get("q"), Some("0.33"));
    assert_eq!(contact.params.get("newparam"), Some("newvalue"));
    assert!(contact.params.contains("secondparam"));
    assert_eq!(contact.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(h.text("Subject"), Some(""));
    assert_eq!(h.text("s"), Some(""));
    assert_eq!(
        h.text("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(h.text("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let route = h.routes().next().unwrap();
    let ruri = route.uri.as_sip().unwrap();
    assert!(ruri.is_loose_route());
    assert_eq!(ruri.params.get("unknownwith"), Some("value"));
    assert!(ruri.params.contains("unknown-no-value"));
    assert_eq!(
        msg.request_uri()
            .unwrap()
            .as_sip()
            .unwrap()
            .params
            .iter()
            .next()
            .unwrap()
            .name,
        "unknownparam"
    );
    assert_eq!(msg.sdp_body().unwrap(), &bytes[bytes.len() - 168..]);
    // Round trip: the printed form parses to the same model, with the same SDP bytes.
    let printed = msg.to_bytes();
    let again = parse(&printed).unwrap();
    assert_eq!(again, msg);
    assert!(printed.ends_with(&bytes[bytes.len() - 168..]));
    assert!(String::from_utf8_lossy(&printed).contains("\r\nContent-Length: 168\r\n\r\n"));
}

#[test]
fn case_002_rfc4475_dblreq_trailing_octets_udp() {
    let bytes = case!("002-rfc4475-dblreq-trailing-octets-udp.sip");
    let msg = parse(bytes).unwrap();
    assert_eq!(msg.method(), Some(&Method::Register));
    assert!(msg.body.is_empty());
    // The INVITE-looking trailer is not part of anything we print.
    assert!(!String::from_utf8_lossy(&msg.to_bytes()).contains("INVITE"));
    // Over a stream the same bytes are two messages (case 011 rules).
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(bytes);
    let first = framer.next_item().unwrap().unwrap();
    assert!(matches!(first, StreamItem::Message(m) if m.method() == Some(&Method::Register)));
}

#[test]
fn case_003_rfc4475_clerr_content_length_too_large() {
    let bytes = case!("003-rfc4475-clerr-content-length-too-large.sip");
    let err = parse(bytes).unwrap_err();
    assert!(matches!(
        err,
        Error::ContentLengthExceedsBody { declared: 9999, .. }
    ));
    assert_eq!(status_for(&err), Some(StatusCode::BAD_REQUEST));
    let resp = response_for_unparseable(bytes, &err, Some("gw400")).unwrap();
    assert_eq!(resp.status(), Some(StatusCode::BAD_REQUEST));
    let req_head = String::from_utf8_lossy(bytes);
    let resp_text = String::from_utf8(resp.to_bytes()).unwrap();
    for name in ["Via:", "From:", "Call-ID:", "CSeq:"] {
        let line = req_head.lines().find(|l| l.starts_with(name)).unwrap();
        let value_req =
            Message::parse(format!("OPTIONS sip:x SIP/2.0\r\n{line}\r\n\r\n").as_bytes()).unwrap();
        let expected = String::from_utf8(value_req.to_bytes()).unwrap();
        let expected_line = expected.lines().nth(1).unwrap();
        assert!(
            resp_text.contains(expected_line),
            "{expected_line} missing in {resp_text}"
        );
    }
    assert_eq!(resp.headers.to().unwrap().tag(), Some("gw400"));
    assert!(resp.body.is_empty());
}

#[test]
fn case_004_rfc4475_bad_content_length() {
    let ncl = case!("004-rfc4475-bad-content-length.ncl.sip");
    let err = parse(ncl).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidContentLength {
            value: "-999".into()
        }
    );
    assert_eq!(status_for(&err), Some(StatusCode::BAD_REQUEST));
    assert!(callseal_sip::is_fatal_for_stream(&err));
    let mcl = case!("004-rfc4475-bad-content-length.mcl.sip");
    let err = parse(mcl).unwrap_err();
    assert_eq!(err, Error::ConflictingContentLength);
    assert_eq!(status_for(&err), Some(StatusCode::BAD_REQUEST));
    assert!(response_for_unparseable(mcl, &err, None).is_some());
    // TCP: the framer refuses and stays failed (close the connection).
    for bytes in [&ncl[..], &mcl[..]] {
        let mut framer = StreamFramer::new(Limits::default());
        framer.push(bytes);
        assert!(framer.next_item().is_err());
        framer.push(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        assert!(framer.next_item().is_err());
    }
}

#[test]
fn case_007_rfc4475_insuf_missing_headers() {
    let bytes = case!("007-rfc4475-insuf-missing-headers.sip");
    let msg = parse(bytes).unwrap();
    let err = msg.validate_request().unwrap_err();
    assert_eq!(err, Error::MissingHeader { header: "From" });
    assert_eq!(status_for(&err), Some(StatusCode::BAD_REQUEST));
    let resp = Message::response_to(&msg, StatusCode::BAD_REQUEST, Some("t1"));
    assert_eq!(resp.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(
        resp.headers.top_via().unwrap().branch(),
        Some("z9hG4bKinsuf007")
    );
    assert_eq!(resp.headers.cseq().unwrap().seq, 193942);
    assert!(resp.headers.from().is_none() && resp.headers.to().is_none());
    assert!(resp.headers.call_id().is_none());
    let text = String::from_utf8(resp.to_bytes()).unwrap();
    assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
}

#[test]
fn case_008_rfc5118_ipv6_references() {
    let good = parse(case!("008-rfc5118-ipv6-references.good.sip")).unwrap();
    let uri = good.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(uri.host, Host::V6("2001:db8::10".parse().unwrap()));
    let via = good.headers.top_via().unwrap();
    assert_eq!(via.host, Host::V6("2001:db8::9:1".parse().unwrap()));
    assert_eq!(via.port, Some(5060));
    assert_eq!(parse(&good.to_bytes()).unwrap(), good);
    for bad in [
        &case!("008-rfc5118-ipv6-references.bad-unbracketed.sip")[..],
        &case!("008-rfc5118-ipv6-references.bad-3-colons.sip")[..],
    ] {
        let err = parse(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidUri { .. }), "{err:?}");
        assert_eq!(status_for(&err), Some(StatusCode::BAD_REQUEST));
        let resp = response_for_unparseable(bad, &err, Some("x")).unwrap();
        assert_eq!(resp.status(), Some(StatusCode::BAD_REQUEST));
        assert!(resp.headers.call_id().is_some());
    }
}

#[test]
fn case_012_udp_missing_content_length() {
    let options = parse(case!("012-udp-missing-content-length.options.sip")).unwrap();
    assert_eq!(options.method(), Some(&Method::Options));
    assert!(options.body.is_empty());
    options.validate_request().unwrap();
    assert!(
        String::from_utf8(options.to_bytes())
            .unwrap()
            .ends_with("Content-Length: 0\r\n\r\n")
    );
    let bytes = case!("012-udp-missing-content-length.invite-with-sdp.sip");
    let invite = parse(bytes).unwrap();
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(invite.body, &bytes[head_end..]);
    assert_eq!(invite.sdp_body().unwrap(), &bytes[head_end..]);
    let printed = String::from_utf8(invite.to_bytes()).unwrap();
    assert!(printed.contains(&format!(
        "\r\nContent-Length: {}\r\n\r\n",
        bytes.len() - head_end
    )));
    // Over a stream, the same message is a framing error, not a silent drop.
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(bytes);
    assert_eq!(framer.next_item(), Err(Error::MissingContentLength));
}

#[test]
fn case_011_tcp_stream_framing() {
    let stream = case!("011-tcp-stream-framing.sip");
    let splits = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/cases/011-tcp-stream-framing.splits.txt"
    ));
    let mut framer = StreamFramer::new(Limits::default());
    let mut items = Vec::new();
    for line in splits
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (a, b) = line.split_once(' ').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        framer.push(&stream[a..b]);
        while let Some(item) = framer.next_item().unwrap() {
            items.push(item);
        }
    }
    let messages: Vec<&Message> = items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Message(m) => Some(m),
            StreamItem::KeepAlive => None,
        })
        .collect();
    assert_eq!(
        items
            .iter()
            .filter(|i| **i == StreamItem::KeepAlive)
            .count(),
        1
    );
    let methods: Vec<_> = messages
        .iter()
        .map(|m| m.method().unwrap().clone())
        .collect();
    assert_eq!(methods, [Method::Ack, Method::Info, Method::Bye]);
    let cseqs: Vec<_> = messages
        .iter()
        .map(|m| m.headers.cseq().unwrap().seq)
        .collect();
    assert_eq!(cseqs, [1, 3, 2]);
    assert_eq!(messages[1].body, b"Signal=5\r\nDuration=160\r\n");
    assert_eq!(framer.buffered(), 0);
    // Every other split point gives the same messages.
    for cut in 1..stream.len() {
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        for chunk in [&stream[..cut], &stream[cut..]] {
            f.push(chunk);
            while let Some(item) = f.next_item().unwrap() {
                if let StreamItem::Message(m) = item {
                    got.push(m);
                }
            }
        }
        assert_eq!(got.len(), 3, "split at {cut}");
    }
    let no_cl = case!("011-tcp-stream-framing.no-content-length.sip");
    let mut f = StreamFramer::new(Limits::default());
    f.push(no_cl);
    let err = f.next_item().unwrap_err();
    assert_eq!(err, Error::MissingContentLength);
    assert_eq!(status_for(&err), Some(StatusCode::BAD_REQUEST));
    assert!(response_for_unparseable(no_cl, &err, Some("t")).is_some());
}

#[test]
fn limits_have_their_own_errors() {
    let limits = Limits {
        max_message_size: 200,
        max_headers: 3,
        max_line_length: 40,
    };
    let big = vec![b'a'; 201];
    assert!(matches!(
        parse_datagram(&big, &limits),
        Err(Error::MessageTooLarge {
            size: 201,
            limit: 200
        })
    ));
    let many = b"OPTIONS sip:x SIP/2.0\r\nX1: 1\r\nX2: 2\r\nX3: 3\r\nX4: 4\r\n\r\n";
    assert_eq!(
        parse_datagram(many, &limits),
        Err(Error::TooManyHeaders { limit: 3 })
    );
    let long = format!("OPTIONS sip:x SIP/2.0\r\nA: {}\r\n\r\n", "x".repeat(50));
    assert!(matches!(
        parse_datagram(long.as_bytes(), &limits),
        Err(Error::LineTooLong { limit: 40, .. })
    ));
    assert_eq!(
        status_for(&Error::MessageTooLarge { size: 1, limit: 0 }),
        Some(StatusCode(513))
    );
    // Stream: a header section that never ends is cut off at the limit.
    let mut f = StreamFramer::new(limits);
    f.push(b"OPTIONS sip:x SIP/2.0\r\n");
    assert_eq!(f.next_item(), Ok(None));
    f.push(&[b'a'; 300]);
    assert!(matches!(f.next_item(), Err(Error::MessageTooLarge { .. })));
}

#[test]
fn compact_repeated_and_comma_headers() {
    let raw = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP [::1]:5070;branch=z9hG4bK2;received=::1\r\nVia: SIP/2.0/UDP c.example;branch=z9hG4bK3\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: abc@d\r\nCSeq: 1 INVITE\r\nm: <sip:a@[::1]:5062;transport=tcp>\r\nk: 100rel, timer\r\nSupported: replaces\r\nAllow: INVITE, ACK,BYE\r\nRequire: timer\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nP-Asserted-Identity: \"X\" <sip:+1@x>, <tel:+1>\r\nReason: Q.850;cause=16, SIP;cause=200;text=\"Call completed elsewhere\"\r\nUser-Agent: callseal test\r\nc: multipart/mixed;boundary=b1\r\nl: 0\r\n\r\n";
    let m = parse(raw).unwrap();
    assert_eq!(m.headers.vias().count(), 3);
    assert_eq!(m.headers.vias().nth(1).unwrap().received(), Some("::1"));
    assert_eq!(m.headers.call_id(), Some("abc@d"));
    assert_eq!(
        m.headers.supported().collect::<Vec<_>>(),
        ["100rel", "timer", "replaces"]
    );
    assert_eq!(
        m.headers.allow().collect::<Vec<_>>(),
        ["INVITE", "ACK", "BYE"]
    );
    assert_eq!(m.headers.require().collect::<Vec<_>>(), ["timer"]);
    assert_eq!(m.headers.record_routes().count(), 2);
    let pai: Vec<_> = m.headers.p_asserted_identities().collect();
    assert_eq!(pai[1].uri, Uri::Other("tel:+1".into()));
    let reasons: Vec<_> = m.headers.reasons().collect();
    assert_eq!(
        (reasons[0].protocol.as_str(), reasons[0].cause()),
        ("Q.850", Some(16))
    );
    assert_eq!(
        reasons[1].params.get("text"),
        Some("\"Call completed elsewhere\"")
    );
    assert_eq!(m.headers.user_agent(), Some("callseal test"));
    assert!(matches!(
        m.headers.contacts().next(),
        Some(Contact::Addr(_))
    ));
    assert_eq!(parse(&m.to_bytes()).unwrap(), m);
}

#[test]
fn rejects_what_the_grammar_forbids() {
    let cases: &[&[u8]] = &[
        b"INVITE  sip:a@b SIP/2.0\r\n\r\n", // double space
        b"INVITE sip:a@b SIP/3.0\r\n\r\n",  // version
        b"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b\r\n\r\n", // unterminated <
        b"INVITE sip:a@b SIP/2.0\r\nCSeq: x INVITE\r\n\r\n", // bad CSeq
        b"INVITE sip:a@b SIP/2.0\r\nMax-Forwards: -1\r\n\r\n", // bad MF
        b"INVITE sip:a@b SIP/2.0\r\nCall-ID: a\r\ni: b\r\n\r\n", // duplicate Call-ID
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a,,\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nFrom: \"unterminated <sip:a@b>\r\n\r\n",
        b"SIP/2.0 99 Low\r\n\r\n",
        b"INVITE sip:a@b:99999 SIP/2.0\r\n\r\n",
    ];
    for raw in cases {
        let err = parse(raw).unwrap_err();
        assert!(
            status_for(&err).is_some(),
            "{err:?} for {:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(
        parse(b"INVITE sip:a@b SIP/3.0\r\n\r\n").map(|_| ()),
        Err(Error::UnsupportedVersion {
            version: "SIP/3.0".into()
        })
    );
}

#[test]
fn multipart_sdp_part_is_extracted() {
    let body = b"--bnd\r\nContent-Type: application/rs-metadata+xml\r\n\r\n<x/>\r\n--bnd\r\nContent-Type: application/sdp\r\n\r\nv=0\r\ns=-\r\n\r\n--bnd--\r\n";
    let mut raw = format!("INVITE sip:a@b SIP/2.0\r\nContent-Type: multipart/mixed;boundary=\"bnd\"\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    raw.extend_from_slice(body);
    let m = parse(&raw).unwrap();
    assert_eq!(m.sdp_body(), Some(&b"v=0\r\ns=-\r\n"[..]));
    assert_eq!(m.body, body);
}
