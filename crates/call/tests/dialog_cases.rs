//! Field cases that concern dialogs, driven through the `CallManager` with the fixture
//! messages (ids the gateway generated are substituted in; Content-Length is unchanged).

mod common;

use callseal_call::sdp::Direction;
use callseal_call::*;
use callseal_sip::{HeaderName, Message};
use common::*;

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
