//! SDP offer/answer against the field cases, at the level of the SDP functions: golden answers
//! where the case gives one (017, 018), asserted values otherwise (008, 016, 029, 031).

mod common;

use std::net::{IpAddr, SocketAddr};

use callseal_call::sdp::*;
use common::*;

fn origin(id: u64, version: u64) -> SdpOrigin {
    SdpOrigin {
        session_id: id,
        version,
        address: "198.51.100.5".parse().expect("ip"),
    }
}

fn local(port: u16) -> LocalMedia {
    LocalMedia {
        address: SocketAddr::new("198.51.100.5".parse().expect("ip"), port),
        srtp_key: None,
    }
}

fn answer(
    offer: &[u8],
    port: u16,
    policy: &SdpPolicy,
    o: SdpOrigin,
) -> Result<AnswerPlan, callseal_call::SdpError> {
    let offer = RemoteSdp::parse(offer).expect("offer parses");
    answer_offer(&offer, local(port), policy, o, Direction::SendRecv)
}

#[test]
fn case_017_rejected_streams_kept_in_place_golden_answer() {
    let plan = answer(
        &case("017-sdp-rejected-stream-port0.offer.sdp"),
        30010,
        &SdpPolicy::default(),
        origin(100, 1),
    )
    .expect("the audio stream is usable");
    assert_eq!(
        String::from_utf8(plan.sdp.to_bytes()).expect("text"),
        case_text("017-sdp-rejected-stream-port0.expected-answer.sdp")
    );
    assert_eq!(plan.audio_index, 0);
    assert_eq!(
        plan.audio.remote,
        Some("203.0.113.70:27170".parse().expect("addr"))
    );
    assert_eq!(
        (plan.audio.codec, plan.audio.tx_pt, plan.audio.rx_event_pt),
        (Codec::Pcma, 8, Some(101))
    );
}

#[test]
fn case_017_port0_stream_with_garbage_does_not_fail_the_offer() {
    // A disabled stream whose attributes would not parse, and an active one with PT 255.
    let offer = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=video 0 RTP/AVP 255\r\na=rtpmap:255 bogus\r\na=fmtp:x y\r\n\
m=audio 5000 RTP/AVP 255 0\r\na=rtpmap:255 NOPE/1\r\n";
    let plan = answer(offer, 30010, &SdpPolicy::default(), origin(1, 1)).expect("usable");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    assert!(
        text.contains("m=video 0 RTP/AVP 255\r\nm=audio 30010 RTP/AVP 0\r\n"),
        "{text}"
    );
    assert_eq!(plan.audio_index, 1);
}

#[test]
fn case_018_sendonly_reinvite_golden_answer_recvonly() {
    let msg =
        callseal_sip::Message::parse(&case("018-hold-sendonly-reinvite.sip")).expect("018 parses");
    let body = msg.sdp_body().expect("SDP body");
    assert!(
        !body.ends_with(b"\n"),
        "the fixture's last line has no CRLF"
    );
    let plan = answer(body, 30020, &SdpPolicy::default(), origin(2000, 2002)).expect("answer");
    assert_eq!(
        String::from_utf8(plan.sdp.to_bytes()).expect("text"),
        case_text("018-hold-sendonly-reinvite.expected-answer.sdp")
    );
    assert_eq!(plan.audio.direction, Direction::RecvOnly);
    assert_eq!(plan.audio.peer_direction, Direction::SendOnly);
    assert_eq!(
        plan.audio.remote,
        Some("203.0.113.11:20000".parse().expect("addr"))
    );
}

#[test]
fn case_018_legacy_c0_hold_and_resume_same_address() {
    let plan = answer(
        &case("018-hold-sendonly-reinvite.legacy-c0.sdp"),
        30020,
        &SdpPolicy::default(),
        origin(2000, 2003),
    )
    .expect("answer");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    // Never 0.0.0.0 in our answer; RFC 2543 hold without attribute = inactive.
    assert!(
        text.contains("c=IN IP4 198.51.100.5\r\n") && !text.contains("0.0.0.0"),
        "{text}"
    );
    assert!(text.contains("a=inactive\r\n"), "{text}");
    assert_eq!(
        plan.audio.remote, None,
        "nothing is sent to a c=0.0.0.0 peer"
    );
    assert_eq!(plan.audio.direction, Direction::Inactive);

    let plan = answer(
        &case("018-hold-sendonly-reinvite.resume-same-address.sdp"),
        30020,
        &SdpPolicy::default(),
        origin(2000, 2004),
    )
    .expect("answer");
    assert_eq!(plan.audio.direction, Direction::SendRecv);
    assert_eq!(
        plan.audio.remote,
        Some("203.0.113.11:20000".parse().expect("addr"))
    );
}

#[test]
fn case_016_static_payload_types_without_rtpmap_and_case_insensitive_names() {
    let plan = answer(
        &case("016-sdp-static-pt-without-rtpmap.sdp"),
        30010,
        &SdpPolicy::default(),
        origin(5, 5),
    )
    .expect("answer");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    // PCMU is first in the offer; its rtpmap is written although the offer had none; G729 is
    // left out; TELEPHONE-EVENT was recognised.
    assert!(text.contains("m=audio 30010 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"), "{text}");
    assert_eq!(plan.audio.rx_event_pt, Some(101));
    assert_eq!(
        plan.audio.remote,
        Some("192.0.2.60:41000".parse().expect("addr"))
    );
}

#[test]
fn case_016_savp_lowercase_with_srtp() {
    let offer = RemoteSdp::parse(&case("016-sdp-static-pt-without-rtpmap.savp-lowercase.sdp"))
        .expect("parses");
    let policy = SdpPolicy {
        srtp: true,
        ..SdpPolicy::default()
    };
    let key: Vec<u8> = (0u8..44).collect();
    let lm = LocalMedia {
        srtp_key: Some(SrtpMasterKey::from_bytes(key.clone())),
        ..local(30010)
    };
    let plan =
        answer_offer(&offer, lm, &policy, origin(6, 6), Direction::SendRecv).expect("answer");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    assert!(text.contains("m=audio 30010 RTP/SAVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n"), "{text}");
    // Our key: the first 30 bytes of the material, base64, tag 1 echoed.
    assert!(
        text.contains(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n"
        ),
        "{text}"
    );
    // `Debug` of the plan never shows a key.
    let dbg = format!("{plan:?}");
    assert!(!dbg.contains("AAECAw") && !dbg.contains("d0Rm"), "{dbg}");
    let (ours, theirs) = plan.srtp.expect("srtp keys");
    assert_eq!(ours.expose_bytes(), &key[..30]);
    assert_eq!(theirs.expose_bytes().len(), 30);
    assert_eq!(
        plan.audio.srtp_suite.as_deref(),
        Some("AES_CM_128_HMAC_SHA1_80")
    );

    // Without SRTP support the only stream is unusable: 488.
    assert_eq!(
        answer_offer(
            &offer,
            local(30010),
            &SdpPolicy::default(),
            origin(6, 6),
            Direction::SendRecv
        )
        .err(),
        Some(callseal_call::SdpError::NoCommonCodec { offered: 1 })
    );
}

#[test]
fn case_016_rtpmap_wins_over_the_static_number() {
    let offer = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMA/8000\r\n";
    let plan = answer(offer, 30010, &SdpPolicy::default(), origin(1, 1)).expect("usable");
    assert_eq!((plan.audio.codec, plan.audio.tx_pt), (Codec::Pcma, 0));
}

#[test]
fn case_008_ipv6_connection_used_or_rejected_when_v4_only() {
    let msg = callseal_sip::Message::parse(&case("008-rfc5118-ipv6-references.good.sip"))
        .expect("008 parses");
    let offer = RemoteSdp::parse(msg.sdp_body().expect("sdp")).expect("sdp parses");
    let policy = SdpPolicy::default();
    let (fam, srtp) = offered_family(&offer, &policy).expect("usable");
    assert_eq!(
        (fam, srtp),
        ("2001:db8::9:1".parse::<IpAddr>().expect("ip"), false)
    );
    let v6 = LocalMedia {
        address: "[2001:db8::5]:30010".parse().expect("addr"),
        srtp_key: None,
    };
    let o = SdpOrigin {
        session_id: 1,
        version: 1,
        address: "2001:db8::5".parse().expect("ip"),
    };
    let plan = answer_offer(&offer, v6, &policy, o, Direction::SendRecv).expect("answer");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    assert!(
        text.contains("c=IN IP6 2001:db8::5\r\n") && text.contains("m=audio 30010 RTP/AVP 0\r\n"),
        "{text}"
    );
    assert_eq!(
        plan.audio.remote,
        Some("[2001:db8::9:1]:49170".parse().expect("addr"))
    );

    let v4_only = SdpPolicy {
        ipv6: false,
        ..SdpPolicy::default()
    };
    assert!(matches!(
        offered_family(&offer, &v4_only),
        Err(callseal_call::SdpError::NoCommonCodec { .. })
    ));
}

#[test]
fn case_029_ptime_30_echoed_unknown_formats_dropped() {
    let plan = answer(
        &case("029-g711-ptime-30.offer.sdp"),
        30010,
        &SdpPolicy::default(),
        origin(9, 9),
    )
    .expect("answer");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    assert!(text.contains("m=audio 30010 RTP/AVP 0 101\r\n"), "{text}");
    assert!(text.contains("a=ptime:30\r\n"), "{text}");
    assert!(
        !text.contains("NSE") && !text.contains("G726") && !text.contains("G729"),
        "{text}"
    );
    assert_eq!(plan.audio.ptime_ms, 30);
}

#[test]
fn case_031_telephone_event_on_96_is_used_both_ways() {
    let plan = answer(
        &case("031-dtmf-telephone-event-pt.caller-offer.sdp"),
        30010,
        &SdpPolicy::default(),
        origin(3, 3),
    )
    .expect("answer");
    let text = String::from_utf8(plan.sdp.to_bytes()).expect("text");
    assert!(text.contains("m=audio 30010 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"), "{text}");
    assert_eq!(
        (plan.audio.rx_event_pt, plan.audio.tx_event_pt),
        (Some(96), Some(96))
    );
}

#[test]
fn offer_to_pbx_and_answer_map_pts_per_direction() {
    let offer = build_offer(
        "198.51.100.5:30020".parse().expect("addr"),
        &SdpPolicy::default(),
        origin(7, 7),
        Codec::Pcmu,
        Direction::SendRecv,
    );
    let text = String::from_utf8(offer.to_bytes()).expect("text");
    assert!(text.contains("m=audio 30020 RTP/AVP 0 8 101\r\n"), "{text}");
    // The PBX answers telephone-event on 100 (RFC 3264 allows a different number).
    let ans = RemoteSdp::parse(
        b"v=0\r\no=P 1 1 IN IP4 203.0.113.10\r\ns=-\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n\
m=audio 24000 RTP/AVP 8 100\r\na=rtpmap:100 telephone-event/8000\r\na=ptime:30\r\na=recvonly\r\n",
    )
    .expect("parses");
    let a = accept_answer(&ans, &offer)
        .expect("accepted")
        .audio
        .expect("audio");
    assert_eq!((a.codec, a.tx_pt, a.rx_pt), (Codec::Pcma, 8, 8));
    assert_eq!((a.tx_event_pt, a.rx_event_pt), (Some(100), Some(101)));
    assert_eq!(a.ptime_ms, 30);
    assert_eq!(a.direction, Direction::SendOnly);
    // Wrong m-line count is an error, not a guess.
    let two = RemoteSdp::parse(
        b"v=0\r\no=P 1 1 IN IP4 203.0.113.10\r\ns=-\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n\
m=audio 24000 RTP/AVP 8\r\nm=video 0 RTP/AVP 31\r\n",
    )
    .expect("parses");
    assert!(matches!(
        accept_answer(&two, &offer),
        Err(callseal_call::SdpError::MLineCountMismatch {
            offered: 1,
            answered: 2
        })
    ));
}

#[test]
fn bad_sdp_is_an_error_that_never_quotes_the_body() {
    for body in [
        &b"\xff\xfe"[..],
        b"v=0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio notaport RTP/AVP 0\r\n",
        b"v=0\r\no=broken\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:SECRETSECRET\r\n",
    ] {
        let err = RemoteSdp::parse(body).expect_err("rejected");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
