//! The legs outside the dialog cases: caller offers (cases 008, 016, 031) through the
//! `CallManager`, the B-leg identity, privacy of debug output, and request handling.

mod common;

use callseal_call::*;
use callseal_sip::{HeaderName, Message};
use common::*;

#[test]
fn case_008_ipv6_caller_gets_an_ipv6_port_and_answer() {
    let mut h = H::new(pbx_config());
    let invite = Message::parse(&case("008-rfc5118-ipv6-references.good.sip")).expect("parses");
    let (_, cmds) = h.request(invite, "[2001:db8::9:1]:5060");
    assert_eq!(summary(&cmds), ["AllocateMedia Caller V6"]);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("[2001:db8::5]:30010"),
        srtp_key: None,
    });
    let ok = find_response(&cmds, 200).expect("200");
    let sdp = sdp_text(ok);
    assert!(
        sdp.contains("c=IN IP6 2001:db8::5\r\n") && sdp.contains("m=audio 30010 RTP/AVP 0\r\n"),
        "{sdp}"
    );
    assert_eq!(
        audio(&cmds, Leg::Caller).remote,
        Some(addr("[2001:db8::9:1]:49170"))
    );

    // A v4-only relay rejects the v6 stream with 488 and allocates nothing.
    let mut cfg = pbx_config();
    cfg.sdp.ipv6 = false;
    let mut h = H::new(cfg);
    let invite = Message::parse(&case("008-rfc5118-ipv6-references.good.sip")).expect("parses");
    let (_, cmds) = h.request(invite, "[2001:db8::9:1]:5060");
    assert_eq!(summary(&cmds), ["Respond 488 INVITE"]);
    let warning = find_response(&cmds, 488)
        .and_then(|r| r.headers.text("Warning"))
        .expect("Warning");
    assert!(
        warning.starts_with("304 callseal \"no usable audio stream"),
        "{warning}"
    );
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn case_016_and_031_caller_pts_and_telephone_event_mapped_per_leg() {
    let mut h = H::new(pbx_config());
    let sdp = case_text("031-dtmf-telephone-event-pt.caller-offer.sdp");
    let (call, ok) = answered_call(&mut h, "te-031", &sdp);
    assert!(sdp_text(&ok).contains("m=audio 30010 RTP/AVP 0 96\r\n"));
    let invite = consent_and_invite(&mut h, call, '1');
    // The B-leg offer puts the caller's codec first and uses our own telephone-event PT.
    let offer = sdp_text(&invite);
    assert!(
        offer.contains("m=audio 30020 RTP/AVP 0 8 101\r\n"),
        "{offer}"
    );
    let pbx_sdp = PBX_SDP
        .replace("RTP/AVP 8 101", "RTP/AVP 0 101")
        .replace("a=rtpmap:8 PCMA", "a=rtpmap:0 PCMU");
    let cmds = h.response(pbx_response(&invite, 200, "p31", Some(&pbx_sdp)));
    let b = audio(&cmds, Leg::Pbx);
    assert_eq!(
        (b.tx_event_pt, b.rx_event_pt, b.tx_pt),
        (Some(101), Some(101), 0)
    );
}

#[test]
fn case_016_srtp_caller_gets_keys_in_media_params_only() {
    let mut cfg = pbx_config();
    cfg.sdp.srtp = true;
    let mut h = H::new(cfg);
    let sdp = case_text("016-sdp-static-pt-without-rtpmap.savp-lowercase.sdp");
    let (_, cmds) = h.request(caller_invite("savp-016", "+15555550101", &sdp), CALLER);
    assert_eq!(summary(&cmds), ["AllocateMedia Caller V4 srtp"]);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let key = sdp::SrtpMasterKey::from_bytes(vec![0x11; 44]);
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: Some(key),
    });
    let p = media_params(&cmds, Leg::Caller).expect("params");
    let keys = p.srtp.as_ref().expect("srtp");
    assert_eq!(keys.suite, "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(keys.local.expose_bytes(), &[0x11; 30][..]);
    assert_eq!(keys.remote.expose_bytes().len(), 30);
    let dbg = format!("{cmds:?}");
    assert!(
        !dbg.contains("inline:") && !dbg.contains("ERERER"),
        "keys leak into Debug: {dbg}"
    );
}

#[test]
fn b_leg_identity_is_replaced_per_mode_and_nothing_else_crosses() {
    for (mode, user) in [
        (IdentityMode::Pseudonym, None),
        (IdentityMode::Masked, Some("*********01")),
        (IdentityMode::Passthrough, Some("+15555550101")),
    ] {
        let mut cfg = pbx_config();
        cfg.identity = mode;
        let mut h = H::new(cfg);
        let (call, _ok) = answered_call(&mut h, &format!("id-{mode:?}"), CALLER_SDP);
        let invite = consent_and_invite(&mut h, call, '1');
        let from = invite.headers.from().expect("From");
        let shown = match &from.uri {
            callseal_sip::Uri::Sip(u) => u.user.clone().expect("user"),
            other => panic!("{other}"),
        };
        match user {
            None => {
                let code = CallerNumber::new("+15555550101", &Pepper::from_bytes([7; 32]))
                    .code()
                    .to_string();
                assert_eq!(shown, code);
                assert!(shown.starts_with("C-") && shown.len() == 11);
            }
            Some(u) => assert_eq!(shown, u),
        }
        assert_eq!(from.display.as_deref(), Some(shown.as_str()));
        let wire = String::from_utf8(invite.to_bytes()).expect("text");
        assert!(
            !wire.contains("Alice"),
            "display name of the caller leaked: {wire}"
        );
        assert!(!wire.contains("P-Asserted-Identity"), "{wire}");
        assert!(!wire.contains("example.com>;tag=caller"), "{wire}");
        if mode == IdentityMode::Pseudonym {
            assert!(!wire.contains("5555550101"), "{wire}");
        }
        assert_eq!(
            invite.request_uri().map(ToString::to_string).as_deref(),
            Some("sip:consult@pbx.example.com")
        );
    }
}

#[test]
fn pbx_rejection_and_timeouts_end_the_call_with_a_bye_to_the_caller() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "rej-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '2');
    let cmds = h.response(pbx_response(&invite, 486, "pbx-busy", None));
    assert_eq!(summary(&cmds), ["Send BYE"]);
    let (bye, _) = find_sip_request(&cmds, "BYE").expect("BYE");
    let reason = bye.headers.reasons().next().expect("Reason");
    assert_eq!(reason.cause(), Some(500));
    let cmds = h.response(Message::response_to(
        bye,
        callseal_sip::StatusCode::OK,
        None,
    ));
    assert_eq!(
        summary(&cmds),
        ["ReleaseMedia", "CallRecord PbxRejected { status: 486 }"]
    );

    // No answer within the ring timeout: CANCEL + BYE to the caller.
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "ring-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '2');
    let _ = h.response(pbx_response(&invite, 180, "pbx-ring", None));
    let cmds = h.fire();
    assert_eq!(summary(&cmds), ["Send CANCEL", "Send BYE"]);

    // The PBX cannot be reached at all (Timer B).
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "tb-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '2');
    let branch = invite
        .headers
        .top_via()
        .and_then(|v| v.branch())
        .expect("branch")
        .to_owned();
    h.core.handle_sip(
        h.now,
        SipEvent::RequestFailed {
            branch,
            method: callseal_sip::Method::Invite,
            failure: TransactionFailure::Timeout,
        },
    );
    assert_eq!(summary(&h.drain()), ["Send BYE"]);
}

#[test]
fn out_of_dialog_requests_and_bad_invites() {
    let mut h = H::new(pbx_config());
    let opt = Message::parse(b"OPTIONS sip:198.51.100.5 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-o1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:198.51.100.5>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").expect("parses");
    let (_, cmds) = h.request(opt, "192.0.2.9:5060");
    assert_eq!(summary(&cmds), ["Respond 200 OPTIONS"]);
    // An INVITE with unparseable SDP: 488, no call state.
    let (_, cmds) = h.request(
        caller_invite("bad-1", "+1555", "v=0\r\nm=audio x\r\n"),
        CALLER,
    );
    assert_eq!(summary(&cmds), ["Respond 488 INVITE"]);
    // A merged request (same Call-ID and From-tag, new transaction): 482.
    let _ = h.request(caller_invite("dup-1", "+1555", CALLER_SDP), CALLER);
    let (_, cmds) = h.request(caller_invite("dup-1", "+1555", CALLER_SDP), CALLER);
    assert_eq!(summary(&cmds), ["Respond 482 INVITE"]);
    assert_eq!(h.core.active_calls(), 1);
}

#[test]
fn privacy_header_keeps_passthrough_from_revealing_the_number() {
    let mut cfg = pbx_config();
    cfg.identity = IdentityMode::Passthrough;
    let mut h = H::new(cfg);
    let mut invite = caller_invite("priv-1", "+15555550101", CALLER_SDP);
    invite.headers.push(
        HeaderName::Other("Privacy".into()),
        callseal_sip::HeaderValue::Text("id".into()),
    );
    let (_, cmds) = h.request(invite, CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let _ = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    let invite = consent_and_invite(&mut h, call, '1');
    let wire = String::from_utf8(invite.to_bytes()).expect("text");
    assert!(!wire.contains("5555550101"), "{wire}");
}

#[test]
fn debug_output_of_sip_commands_holds_no_body_and_no_number() {
    let mut cfg = pbx_config();
    cfg.sdp.srtp = true;
    let mut h = H::new(cfg);
    let sdp = case_text("016-sdp-static-pt-without-rtpmap.savp-lowercase.sdp");
    let invite = caller_invite("dbg-1", "+15555550101", &sdp);
    let ev_dbg = format!(
        "{:?}",
        SipEvent::Request {
            tx: None,
            request: invite.clone(),
            source: addr(CALLER)
        }
    );
    let (_, cmds) = h.request(invite, CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let key = sdp::SrtpMasterKey::from_bytes(vec![0x11; 44]);
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: Some(key),
    });
    let ok = find_response(&cmds, 200).expect("200");
    assert!(
        sdp_text(ok).contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ERER"),
        "the wire has our key"
    );
    let dbg = format!("{cmds:?} {ev_dbg}");
    for secret in ["inline", "ERER", "17, 17, 17", "5555550101", "d0Rm"] {
        assert!(!dbg.contains(secret), "{secret} in {dbg}");
    }
    assert!(dbg.contains("200 (CSeq 1 INVITE)"), "{dbg}");
}

#[test]
fn tcp_contact_carries_the_transport() {
    let mut cfg = pbx_config();
    cfg.transport = "TCP".into();
    let mut h = H::new(cfg);
    let (_, cmds) = h.request(caller_invite("tcp-1", "+1555", CALLER_SDP), CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    let ok = find_response(&cmds, 200).expect("200");
    assert_eq!(
        ok.headers.contact().map(|c| c.uri.to_string()).as_deref(),
        Some("sip:callseal@198.51.100.5:5060;transport=tcp")
    );
}

#[test]
fn sip_info_dtmf_answers_the_consent_question_and_require_gets_420() {
    let mut h = H::new(pbx_config());
    let (call, ok) = answered_call(&mut h, "info-1", CALLER_SDP);
    let mut info = caller_request(&ok, "INFO", 2, None);
    info.set_body(
        Some(callseal_sip::MediaType::parse("application/dtmf-relay").expect("ct")),
        b"Signal=1\r\nDuration=160\r\n".to_vec(),
    );
    let (_, cmds) = h.request(info, CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INFO", "StopPrompt", "PlayPrompt confirm-yes"]
    );
    assert_eq!(h.core.state(call), Some(State::Confirming));

    let mut inv = caller_invite("req-1", "+1555", CALLER_SDP);
    inv.headers.push(
        HeaderName::Require,
        callseal_sip::HeaderValue::Tokens(["100rel"].into_iter().collect()),
    );
    let (_, cmds) = h.request(inv, CALLER);
    assert_eq!(summary(&cmds), ["Respond 420 INVITE"]);
    let r = find_response(&cmds, 420).expect("420");
    let wire = String::from_utf8(r.to_bytes()).expect("text");
    assert!(wire.contains("Unsupported: 100rel\r\n"), "{wire}");
}

#[test]
fn delayed_offer_invite_gets_our_offer_and_the_ack_brings_the_answer() {
    let mut h = H::new(pbx_config());
    let mut inv = caller_invite("late-1", "+15555550101", CALLER_SDP);
    inv.set_body(None, Vec::new());
    let (_, cmds) = h.request(inv, CALLER);
    assert_eq!(summary(&cmds), ["AllocateMedia Caller V4"]);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INVITE"],
        "no prompt before the answer"
    );
    let ok = find_response(&cmds, 200).expect("200").clone();
    let offer = sdp_text(&ok);
    assert!(
        offer.contains("m=audio 30010 RTP/AVP 8 0 101\r\n") && offer.contains("a=sendrecv"),
        "{offer}"
    );
    assert_eq!(h.core.state(call), Some(State::AwaitingAck));
    let answer = CALLER_SDP.replace("RTP/AVP 8 0 101", "RTP/AVP 0 101");
    let (_, cmds) = h.request(caller_request(&ok, "ACK", 1, Some(&answer)), CALLER);
    assert_eq!(
        summary(&cmds),
        ["ConfigureMedia Caller", "PlayPrompt consent barge-in"]
    );
    let a = &media_params(&cmds, Leg::Caller).expect("params").audio;
    assert_eq!(
        (a.codec, a.tx_pt, a.rx_pt, a.rx_event_pt),
        (sdp::Codec::Pcmu, 0, 0, Some(101))
    );
    assert_eq!(a.remote, Some(addr("192.0.2.50:40000")));

    // An ACK without the answer ends such a call.
    let mut inv = caller_invite("late-2", "+15555550101", CALLER_SDP);
    inv.set_body(None, Vec::new());
    let (_, cmds) = h.request(inv, CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30012"),
        srtp_key: None,
    });
    let ok = find_response(&cmds, 200).expect("200").clone();
    let (_, cmds) = h.request(caller_request(&ok, "ACK", 1, None), CALLER);
    assert_eq!(summary(&cmds), ["Send BYE"]);
}
