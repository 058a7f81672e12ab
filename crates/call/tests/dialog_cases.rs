//! Field cases that concern dialogs, driven through the `CallManager` with the fixture
//! messages (ids the gateway generated are substituted in; Content-Length is unchanged).

mod common;

use callseal_call::sdp::Direction;
use callseal_call::*;
use callseal_sip::{HeaderName, Message, NameAddr};
use common::*;

/// A bridged call whose PBX leg answered with To-tag `pbx_tag`; returns (call, caller 200, our INVITE).
fn bridged(h: &mut H, id: &str, pbx_tag: &str) -> (CallHandle, Message, Message) {
    let (call, ok) = answered_call(h, id, CALLER_SDP);
    let invite = consent_and_invite(h, call, '1');
    let cmds = h.response(pbx_response(&invite, 200, pbx_tag, Some(PBX_SDP)));
    assert_eq!(
        summary(&cmds),
        ["Ack", "ConfigureMedia Pbx", "BridgeMedia", "StartRecording"]
    );
    (call, ok, invite)
}

fn ours(invite: &Message) -> (String, String, String) {
    let call_id = invite.headers.call_id().expect("call-id").to_owned();
    let tag = invite
        .headers
        .from()
        .and_then(NameAddr::tag)
        .expect("tag")
        .to_owned();
    let branch = invite
        .headers
        .top_via()
        .and_then(|v| v.branch())
        .expect("branch")
        .to_owned();
    (call_id, tag, branch)
}

/// Replaces `pairs` in a fixture and parses it.
fn patched(name: &str, pairs: &[(&str, &str)]) -> Message {
    let mut text = case_text(name);
    for (from, to) in pairs {
        text = text.replace(from, to);
    }
    Message::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fixture message with its SDP body replaced by another fixture's (Content-Length fixed).
fn with_body(msg: &str, sdp: &[u8], pairs: &[(&str, &str)]) -> Message {
    let mut text = case_text(msg);
    for (from, to) in pairs {
        text = text.replace(from, to);
    }
    let head = text.split("\r\n\r\n").next().expect("head").to_owned();
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.starts_with("Content-Length:") {
                format!("Content-Length: {}", sdp.len())
            } else {
                l.to_owned()
            }
        })
        .collect();
    let mut bytes = head.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(sdp);
    Message::parse(&bytes).expect("rebuilt message parses")
}

fn audio(cmds: &[Command], leg: Leg) -> &callseal_call::sdp::NegotiatedAudio {
    &media_params(cmds, leg)
        .unwrap_or_else(|| panic!("ConfigureMedia {leg:?} in {:?}", summary(cmds)))
        .audio
}

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
fn case_018_hold_passed_through_with_sdp_rewritten_per_leg() {
    let mut h = H::new(pbx_config());
    let (call, ok, invite) = bridged(&mut h, "hold-018", "pbx-tag-018");
    let (call_id, tag, _) = ours(&invite);
    let subst = [
        ("hold018-c1@203.0.113.10", call_id.as_str()),
        ("gw-tag-018", tag.as_str()),
    ];

    // 1. The PBX holds (sendonly, last line without CRLF): answered recvonly at once.
    let reinvite = patched("018-hold-sendonly-reinvite.sip", &subst);
    let (_, cmds) = h.request(reinvite, PBX);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INVITE", "ConfigureMedia Pbx", "Send INVITE"]
    );
    let answer = sdp_text(find_response(&cmds, 200).expect("200"));
    let golden = case_text("018-hold-sendonly-reinvite.expected-answer.sdp");
    assert_eq!(
        with_origin(&answer, "o=- 2000 2002 IN IP4 198.51.100.5"),
        golden
    );
    let b = audio(&cmds, Leg::Pbx);
    assert_eq!(
        (b.direction, b.remote),
        (Direction::RecvOnly, Some(addr("203.0.113.11:20000")))
    );
    // ... and passed to the caller as our own sendonly re-offer (same port, version + 1).
    let (to_caller, dest) = find_sip_request(&cmds, "INVITE").expect("re-INVITE");
    assert_eq!(dest, addr(CALLER));
    let reoffer = sdp_text(to_caller);
    assert!(
        reoffer.contains("m=audio 30010 RTP/AVP 8 101\r\n") && reoffer.contains("a=sendonly\r\n"),
        "{reoffer}"
    );
    let first = sdp_text(&ok);
    let version = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("o="))
            .and_then(|l| l.split(' ').nth(2))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("version")
    };
    assert_eq!(version(&reoffer), version(&first) + 1);
    assert_eq!(
        to_caller.request_uri().map(ToString::to_string).as_deref(),
        Some("sip:alice@192.0.2.50:5060")
    );

    // The caller answers recvonly: ACK, and the gateway only sends to the caller.
    let caller_answer = CALLER_SDP.replace("a=sendrecv", "a=recvonly");
    let resp = caller_answer_to(to_caller, &caller_answer);
    let cmds = h.response(resp);
    assert_eq!(summary(&cmds), ["Ack", "ConfigureMedia Caller"]);
    assert_eq!(audio(&cmds, Leg::Caller).direction, Direction::SendOnly);

    // 2. RFC 2543 hold (c=0.0.0.0, no attribute): inactive, nothing sent to the PBX.
    let legacy = with_body(
        "018-hold-sendonly-reinvite.sip",
        &case("018-hold-sendonly-reinvite.legacy-c0.sdp"),
        &[
            subst[0],
            subst[1],
            ("CSeq: 102", "CSeq: 103"),
            ("z9hG4bK-hold018", "z9hG4bK-hold018b"),
        ],
    );
    let (_, cmds) = h.request(legacy, PBX);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INVITE", "ConfigureMedia Pbx", "Send INVITE"]
    );
    let answer = sdp_text(find_response(&cmds, 200).expect("200"));
    assert!(
        answer.contains("a=inactive") && !answer.contains("0.0.0.0"),
        "{answer}"
    );
    let b = audio(&cmds, Leg::Pbx);
    assert_eq!((b.direction, b.remote), (Direction::Inactive, None));
    let (to_caller, _) = find_sip_request(&cmds, "INVITE").expect("re-INVITE");
    assert!(sdp_text(to_caller).contains("a=inactive\r\n"));
    let cmds = h.response(caller_answer_to(
        to_caller,
        &CALLER_SDP.replace("a=sendrecv", "a=inactive"),
    ));
    assert_eq!(summary(&cmds), ["Ack", "ConfigureMedia Caller"]);

    // 3. Resume to the same address: media is re-applied, the caller is resumed too.
    let resume = with_body(
        "018-hold-sendonly-reinvite.sip",
        &case("018-hold-sendonly-reinvite.resume-same-address.sdp"),
        &[
            subst[0],
            subst[1],
            ("CSeq: 102", "CSeq: 104"),
            ("z9hG4bK-hold018", "z9hG4bK-hold018c"),
        ],
    );
    let (_, cmds) = h.request(resume, PBX);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INVITE", "ConfigureMedia Pbx", "Send INVITE"]
    );
    let b = audio(&cmds, Leg::Pbx);
    assert_eq!(
        (b.direction, b.remote),
        (Direction::SendRecv, Some(addr("203.0.113.11:20000")))
    );
    let (to_caller, _) = find_sip_request(&cmds, "INVITE").expect("re-INVITE");
    assert!(sdp_text(to_caller).contains("a=sendrecv\r\n"));
    let cmds = h.response(caller_answer_to(to_caller, CALLER_SDP));
    assert_eq!(audio(&cmds, Leg::Caller).direction, Direction::SendRecv);

    // 4. The same offer again changes nothing but is still answered and re-applied; the
    // version stays (RFC 3264 §8) and no re-INVITE goes to the caller.
    let again = with_body(
        "018-hold-sendonly-reinvite.sip",
        &case("018-hold-sendonly-reinvite.resume-same-address.sdp"),
        &[
            subst[0],
            subst[1],
            ("CSeq: 102", "CSeq: 105"),
            ("z9hG4bK-hold018", "z9hG4bK-hold018d"),
        ],
    );
    let (_, cmds2) = h.request(again, PBX);
    assert_eq!(
        summary(&cmds2),
        ["Respond 200 INVITE", "ConfigureMedia Pbx"]
    );
    let _ = call;
}

#[test]
fn case_018_caller_hold_goes_to_the_pbx_and_glare_gets_491() {
    let mut h = H::new(pbx_config());
    let (_call, ok, _invite) = bridged(&mut h, "hold-a", "pbx-a");
    let hold = CALLER_SDP
        .replace("a=sendrecv", "a=sendonly")
        .replace("o=- 1 1", "o=- 1 2");
    let (_, cmds) = h.request(caller_request(&ok, "INVITE", 2, Some(&hold)), CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INVITE", "ConfigureMedia Caller", "Send INVITE"]
    );
    assert!(sdp_text(find_response(&cmds, 200).expect("200")).contains("a=recvonly"));
    let (to_pbx, dest) = find_sip_request(&cmds, "INVITE").expect("re-INVITE");
    assert_eq!(dest, addr(PBX));
    assert!(sdp_text(to_pbx).contains("a=sendonly\r\n"));
    assert_eq!(to_pbx.headers.cseq().map(|c| c.seq), Some(2));
    // The caller re-INVITEs again before the PBX answered ours: glare on the PBX leg does not
    // block the caller leg, but a second direction change waits for the first to finish.
    let resume = CALLER_SDP.replace("o=- 1 1", "o=- 1 3");
    let (_, cmds) = h.request(caller_request(&ok, "INVITE", 3, Some(&resume)), CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 INVITE", "ConfigureMedia Caller"]
    );
    // The PBX answers the first: ACK, then the pending change goes out.
    let cmds = h.response(pbx_response(
        to_pbx,
        200,
        "pbx-a",
        Some(&PBX_SDP.replace("a=sendrecv", "a=recvonly")),
    ));
    assert_eq!(summary(&cmds), ["Ack", "ConfigureMedia Pbx", "Send INVITE"]);
    let (to_pbx2, _) = find_sip_request(&cmds, "INVITE").expect("second re-INVITE");
    assert!(sdp_text(to_pbx2).contains("a=sendrecv\r\n"));
    // A re-INVITE from the PBX while ours is pending: 491 (RFC 3261 §14.2).
    let (call_id, tag, _) = ours(to_pbx2);
    let crossing = patched(
        "018-hold-sendonly-reinvite.sip",
        &[
            ("hold018-c1@203.0.113.10", &call_id),
            ("gw-tag-018", &tag),
            ("pbx-tag-018", "pbx-a"),
        ],
    );
    let (_, cmds) = h.request(crossing, PBX);
    assert_eq!(summary(&cmds), ["Respond 491 INVITE"]);
}

fn caller_answer_to(reinvite: &Message, sdp: &str) -> Message {
    let mut r = Message::response_to(reinvite, callseal_sip::StatusCode::OK, None);
    r.set_body(
        Some(callseal_sip::MediaType::sdp()),
        sdp.as_bytes().to_vec(),
    );
    Message::parse(&r.to_bytes()).expect("parses")
}

#[test]
fn case_020_early_media_from_183_then_different_sdp_in_200() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "early-020", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let (call_id, tag, branch) = ours(&invite);
    let subst = [
        ("early020-b1@198.51.100.5", call_id.as_str()),
        ("gw-b-020", tag.as_str()),
        ("z9hG4bK-early020", branch.as_str()),
    ];

    let cmds = h.response(patched("020-early-media-183-then-200.183.sip", &subst));
    assert_eq!(
        summary(&cmds),
        ["ConfigureMedia Pbx", "BridgeMedia"],
        "early media relayed"
    );
    assert_eq!(
        audio(&cmds, Leg::Pbx).remote,
        Some(addr("203.0.113.20:30000"))
    );
    assert_eq!(h.core.state(call), Some(State::CallingPbx));

    let cmds = h.response(patched("020-early-media-183-then-200.200.sip", &subst));
    assert_eq!(
        summary(&cmds),
        ["Ack", "ConfigureMedia Pbx", "StartRecording"],
        "bridge already runs"
    );
    assert_eq!(
        audio(&cmds, Leg::Pbx).remote,
        Some(addr("203.0.113.30:40000"))
    );
    assert_eq!(h.core.state(call), Some(State::Bridged));
    let ack = find_ack(&cmds).expect("ACK");
    assert_eq!(
        ack.request_uri().map(ToString::to_string).as_deref(),
        Some("sip:pbx@203.0.113.10:5060")
    );
    // A retransmitted 200 is ACKed again and changes nothing else.
    let cmds = h.response(patched("020-early-media-183-then-200.200.sip", &subst));
    assert_eq!(summary(&cmds), ["Ack"]);
}

#[test]
fn case_020_183_with_port0_keeps_local_media_and_no_bridge() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "early-0", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let (call_id, tag, branch) = ours(&invite);
    let subst = [
        ("early020-b1@198.51.100.5", call_id.as_str()),
        ("gw-b-020", tag.as_str()),
        ("z9hG4bK-early020", branch.as_str()),
    ];
    let m = with_body(
        "020-early-media-183-then-200.183.sip",
        &case("020-early-media-183-then-200.183-port0.sdp"),
        &subst,
    );
    let cmds = h.response(m);
    assert!(cmds.is_empty(), "{:?}", summary(&cmds));
    // The 200 without SDP after it: no usable answer exists, the call is ended cleanly.
    let mut ok200 = patched("020-early-media-183-then-200.200.sip", &subst);
    ok200.set_body(None, Vec::new());
    let ok200 = Message::parse(&ok200.to_bytes()).expect("parses");
    let cmds = h.response(ok200);
    assert_eq!(summary(&cmds)[0], "Ack");
    assert!(summary(&cmds).contains(&"Send BYE".to_owned()));
}

#[test]
fn case_020_forked_early_dialogs_the_200s_tag_decides() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "fork-020", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let a = PBX_SDP.to_owned();
    let b = PBX_SDP
        .replace("203.0.113.20", "203.0.113.21")
        .replace("30000", "31000");
    let _ = h.response(pbx_response(&invite, 183, "fork-a", Some(&a)));
    let _ = h.response(pbx_response(&invite, 183, "fork-b", Some(&b)));
    // 200 from fork b, without SDP: its own early answer is used.
    let cmds = h.response(pbx_response(&invite, 200, "fork-b", None));
    assert_eq!(
        summary(&cmds),
        ["Ack", "ConfigureMedia Pbx", "StartRecording"]
    );
    assert_eq!(
        audio(&cmds, Leg::Pbx).remote,
        Some(addr("203.0.113.21:31000"))
    );
}

#[test]
fn case_022_200_after_cancel_is_acked_then_byed_never_forwarded() {
    let mut cfg = pbx_config();
    cfg.target = Target::Pbx {
        uri: callseal_sip::Uri::parse("sip:+15555550100@pbx.example.com").expect("uri"),
        next_hop: addr(PBX),
    };
    let mut h = H::new(cfg);
    let (call, ok) = answered_call(&mut h, "race-022", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let (call_id, tag, branch) = ours(&invite);
    let subst = [
        ("race022-b1@198.51.100.5", call_id.as_str()),
        ("gw-b-022", tag.as_str()),
        ("z9hG4bK-race022-inv", branch.as_str()),
    ];
    let _ = h.response(pbx_response(&invite, 180, "pbx-tag-022", None));

    // The caller hangs up while the PBX rings: 200 to the BYE, CANCEL to the PBX.
    let (_, cmds) = h.request(caller_request(&ok, "BYE", 2, None), CALLER);
    assert_eq!(summary(&cmds), ["Respond 200 BYE", "Send CANCEL"]);
    // The transaction layer builds the CANCEL of case 022 step 1 from the INVITE's client
    // transaction (RFC 3261 §9.1): we name that transaction by its branch.
    let (invite_branch, dest) = cmds
        .iter()
        .find_map(|c| match c {
            Command::Sip(SipCommand::Cancel {
                invite_branch,
                destination,
            }) => Some((invite_branch.clone(), *destination)),
            _ => None,
        })
        .expect("Cancel");
    assert_eq!((invite_branch.as_str(), dest), (branch.as_str(), addr(PBX)));
    let expected = patched("022-cancel-200-race.1-gw-sends-cancel.sip", &subst);
    assert_eq!(
        expected.headers.top_via().and_then(|v| v.branch()),
        Some(branch.as_str())
    );
    assert_eq!(expected.headers.call_id(), invite.headers.call_id());
    assert_eq!(expected.start, {
        let mut s = invite.start.clone();
        if let callseal_sip::StartLine::Request { method, .. } = &mut s {
            *method = callseal_sip::Method::Cancel;
        }
        s
    });

    // The PBX's 200 crosses the CANCEL: ACK it, then BYE it; nothing to the caller.
    let cmds = h.response(patched(
        "022-cancel-200-race.2-pbx-200-invite-arrives.sip",
        &subst,
    ));
    assert_eq!(summary(&cmds), ["Ack", "Send BYE"]);
    let ack = find_ack(&cmds).expect("ACK");
    let exp_ack = patched("022-cancel-200-race.4-expected-ack.sip", &subst);
    assert_eq!(ack.start, exp_ack.start);
    assert_eq!(ack.headers.cseq(), exp_ack.headers.cseq());
    assert_eq!(ack.headers.to(), exp_ack.headers.to());
    assert_eq!(ack.headers.call_id(), exp_ack.headers.call_id());
    assert_ne!(
        ack.headers.top_via().and_then(|v| v.branch()),
        Some(branch.as_str()),
        "new branch"
    );
    let (bye, dest) = find_sip_request(&cmds, "BYE").expect("BYE");
    assert_eq!(dest, addr(PBX));
    let exp_bye = patched("022-cancel-200-race.5-expected-bye.sip", &subst);
    assert_eq!(bye.start, exp_bye.start);
    assert_eq!(bye.headers.cseq(), exp_bye.headers.cseq());
    assert_eq!(bye.headers.to(), exp_bye.headers.to());
    assert_eq!(
        bye.headers.reasons().collect::<Vec<_>>(),
        exp_bye.headers.reasons().collect::<Vec<_>>()
    );
    let bye = bye.clone();

    // The 481 to the CANCEL changes nothing; the BYE's 200 ends the call.
    let cmds = h.response(patched(
        "022-cancel-200-race.3-pbx-answers-cancel.sip",
        &subst,
    ));
    assert!(cmds.is_empty(), "{:?}", summary(&cmds));
    let cmds = h.response(pbx_response(&bye, 200, "pbx-tag-022", None));
    assert_eq!(
        summary(&cmds),
        ["ReleaseMedia", "CallRecord AnsweredAfterCancel"]
    );
    let r = call_record(&cmds).expect("record");
    assert!(!r.recorded, "never recorded");
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn case_022_cancel_waits_for_a_provisional_response() {
    let mut h = H::new(pbx_config());
    let (call, ok) = answered_call(&mut h, "race-b", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let (_, cmds) = h.request(caller_request(&ok, "BYE", 2, None), CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 BYE"],
        "RFC 3261 §9.1: no CANCEL before a 1xx"
    );
    let cmds = h.response(pbx_response(&invite, 100, "x", None));
    assert_eq!(summary(&cmds), ["Send CANCEL"]);
    let cmds = h.response(pbx_response(&invite, 487, "pbx-r", None));
    assert_eq!(
        summary(&cmds),
        ["ReleaseMedia", "CallRecord AbandonedBeforeAnswer"]
    );
}

#[test]
fn case_024_bye_for_unknown_dialog_gets_481_and_no_from_tag_400() {
    let mut h = H::new(pbx_config());
    let (_, cmds) = h.request(
        Message::parse(&case("024-bye-unknown-dialog-481.stale-dialog.sip")).expect("parses"),
        CALLER,
    );
    assert_eq!(summary(&cmds), ["Respond 481 BYE"]);
    let (_, cmds) = h.request(
        Message::parse(&case("024-bye-unknown-dialog-481.no-from-tag.sip")).expect("parses"),
        "203.0.113.46:5060",
    );
    assert_eq!(summary(&cmds), ["Respond 400 BYE"]);
    assert_eq!(h.core.active_calls(), 0);

    // A BYE for a dialog that existed but ended: 481, and the live call next to it is untouched.
    let (call, ok, _invite) = bridged(&mut h, "stale-2", "pbx-s");
    let mut wrong = caller_request(&ok, "BYE", 2, None);
    if let Some(to) = wrong.headers.to_mut() {
        to.set_tag("gw-tag-024-already-gone");
    }
    let (_, cmds) = h.request(wrong, CALLER);
    assert_eq!(summary(&cmds), ["Respond 481 BYE"]);
    assert_eq!(h.core.state(call), Some(State::Bridged));
    // A stray ACK never gets a response.
    let mut ack = caller_request(&ok, "ACK", 1, None);
    ack.headers.set(
        HeaderName::CallId,
        callseal_sip::HeaderValue::Text("nobody@x".into()),
    );
    let (_, cmds) = h.request(ack, CALLER);
    assert!(cmds.is_empty());
}

#[test]
fn case_024_481_to_our_reinvite_ends_the_call() {
    let mut h = H::new(pbx_config());
    let (call, ok, _invite) = bridged(&mut h, "gone-024", "pbx-g");
    let _ = h.event(Event::RecordingStarted {
        call,
        recording: RecordingRef([2; 16]),
    });
    let hold = CALLER_SDP.replace("a=sendrecv", "a=sendonly");
    let (_, cmds) = h.request(caller_request(&ok, "INVITE", 2, Some(&hold)), CALLER);
    let (to_pbx, _) = find_sip_request(&cmds, "INVITE").expect("re-INVITE");
    let cmds = h.response(pbx_response(to_pbx, 481, "pbx-g", None));
    assert_eq!(summary(&cmds), ["StopRecording Failure", "Send BYE"]);
    let (bye, dest) = find_sip_request(&cmds, "BYE").expect("BYE");
    assert_eq!(dest, addr(CALLER));
    let cmds = h.response(Message::response_to(
        bye,
        callseal_sip::StatusCode::OK,
        None,
    ));
    assert_eq!(summary(&cmds), ["ReleaseMedia", "CallRecord MediaFailure"]);
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
        callseal_sip::HeaderValue::Tokens(vec!["100rel".into()]),
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

#[test]
fn reinvite_without_sdp_gets_the_current_session_and_the_ack_answer_applies() {
    let mut h = H::new(pbx_config());
    let (_call, _ok, invite) = bridged(&mut h, "late-re", "pbx-l");
    let (call_id, tag, _) = ours(&invite);
    let mut re = patched(
        "018-hold-sendonly-reinvite.sip",
        &[
            ("hold018-c1@203.0.113.10", &call_id),
            ("gw-tag-018", &tag),
            ("pbx-tag-018", "pbx-l"),
        ],
    );
    re.set_body(None, Vec::new());
    let re = Message::parse(&re.to_bytes()).expect("parses");
    let (_, cmds) = h.request(re.clone(), PBX);
    assert_eq!(summary(&cmds), ["Respond 200 INVITE"]);
    let offer = sdp_text(find_response(&cmds, 200).expect("200"));
    assert!(
        offer.contains("m=audio 30020 RTP/AVP 8 0 101\r\n") && offer.contains("a=sendrecv"),
        "{offer}"
    );
    // The PBX's ACK carries its answer: sendonly (hold) — applied and passed to the caller.
    let hold = case("018-hold-sendonly-reinvite.sip");
    let body = Message::parse(&hold)
        .expect("parses")
        .sdp_body()
        .expect("sdp")
        .to_vec();
    let text = format!(
        "ACK sip:callseal@198.51.100.5:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-lateack\r\n\
         From: <sip:consult@pbx.example.com>;tag=pbx-l\r\nTo: <sip:x@gw>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: 102 ACK\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(&body);
    let (_, cmds) = h.request(Message::parse(&bytes).expect("ACK parses"), PBX);
    assert_eq!(summary(&cmds), ["ConfigureMedia Pbx", "Send INVITE"]);
    assert_eq!(audio(&cmds, Leg::Pbx).direction, Direction::RecvOnly);
}
