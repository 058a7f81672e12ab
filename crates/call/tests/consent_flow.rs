//! The consent flow on simulated time: every test asserts the exact command list.

mod common;

use std::time::Duration;

use callseal_call::*;
use common::*;

#[test]
fn consent_yes_full_call_records_both_legs_and_deposits_evidence() {
    let mut h = H::new(pbx_config());
    let (call, ok) = answered_call(&mut h, "yes-1", CALLER_SDP);
    // The caller's answer: anchored on the gateway, PCMA (offerer's order), te 101 echoed.
    let sdp = sdp_text(&ok);
    assert!(sdp.contains("c=IN IP4 198.51.100.5\r\n"), "{sdp}");
    assert!(sdp.contains("m=audio 30010 RTP/AVP 8 101\r\n"), "{sdp}");

    let invite = consent_and_invite(&mut h, call, '1');
    let cmds = h.response(pbx_response(&invite, 180, "pbx-1", None));
    assert!(cmds.is_empty(), "{:?}", summary(&cmds));
    h.advance(Duration::from_secs(3));
    let cmds = h.response(pbx_response(&invite, 200, "pbx-1", Some(PBX_SDP)));
    assert_eq!(
        summary(&cmds),
        ["Ack", "ConfigureMedia Pbx", "BridgeMedia", "StartRecording"]
    );
    let Command::StartRecording { epoch, .. } = cmds[3] else {
        unreachable!()
    };
    // Day 20_791 + 30 days of retention, one-day epochs.
    assert_eq!(epoch, 20_821);

    let rec = RecordingRef([5; 16]);
    let cmds = h.event(Event::RecordingStarted {
        call,
        recording: rec,
    });
    assert_eq!(summary(&cmds), ["DepositKey"]);
    let Command::DepositKey {
        recording,
        epoch,
        evidence,
        caller,
        line,
        ..
    } = &cmds[0]
    else {
        unreachable!()
    };
    assert_eq!((*recording, *epoch), (rec, 20_821));
    assert_eq!(line, "+15555550100");
    let expected = CallerNumber::new("+15555550101", &Pepper::from_bytes([7; 32])).code();
    assert_eq!(*caller, expected);
    assert_eq!(evidence.prompt_sha256, [0xab; 32]);
    assert_eq!(evidence.digit, Some('1'));
    assert_eq!(evidence.decision, Decision::Consented);
    assert_eq!(evidence.decided_at_unix_ms, T0_UNIX_MS);
    assert_eq!(evidence.prompt_plays, 1);

    // Caller hangs up: 200 to the caller, BYE to the PBX, recording finalised.
    h.advance(Duration::from_secs(60));
    let (_, cmds) = h.request(caller_request(&ok, "BYE", 2, None), CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 BYE", "StopRecording CallEnded", "Send BYE"]
    );
    let (bye, dest) = find_sip_request(&cmds, "BYE").expect("BYE");
    assert_eq!(dest, addr(PBX));
    assert_eq!(bye.headers.cseq().map(|c| c.seq), Some(2));
    let cmds = h.response(pbx_response(bye, 200, "pbx-1", None));
    assert_eq!(summary(&cmds), ["ReleaseMedia", "CallRecord Completed"]);
    let r = call_record(&cmds).expect("record");
    assert_eq!(r.consent, Some(Decision::Consented));
    assert!(r.recorded && !r.withdrawn);
    assert_eq!(r.ended_at_unix_ms, T0_UNIX_MS + 63_000);
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn decline_reaches_the_pbx_without_recording() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "no-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '2');
    let cmds = h.response(pbx_response(&invite, 200, "pbx-2", Some(PBX_SDP)));
    assert_eq!(summary(&cmds), ["Ack", "ConfigureMedia Pbx", "BridgeMedia"]);
    // The PBX hangs up (survey off): BYE to the caller.
    let bye = pbx_bye(&invite, "pbx-2", 5);
    let (_, cmds) = h.request(bye, PBX);
    assert_eq!(summary(&cmds), ["Respond 200 BYE", "Send BYE"]);
    let (caller_bye, dest) = find_sip_request(&cmds, "BYE").expect("BYE");
    assert_eq!(dest, addr(CALLER));
    let caller_ok = Message::response_to(caller_bye, callseal_sip::StatusCode::OK, None);
    let cmds = h.response(caller_ok);
    assert_eq!(summary(&cmds), ["ReleaseMedia", "CallRecord Completed"]);
    let r = call_record(&cmds).expect("record");
    assert_eq!(r.consent, Some(Decision::Declined));
    assert!(!r.recorded);
}

#[test]
fn no_input_repeats_then_times_out_as_decline() {
    let mut cfg = pbx_config();
    cfg.consent.repeats = 1;
    cfg.consent.digit_timeout = Duration::from_secs(5);
    let mut h = H::new(cfg);
    let (call, _ok) = answered_call(&mut h, "to-1", CALLER_SDP);
    h.advance(Duration::from_secs(20));
    let cmds = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    assert!(cmds.is_empty());
    assert_eq!(h.core.state(call), Some(State::AwaitingDigit { plays: 1 }));
    // Only the 200 retransmission timers are left besides the digit timer: ACK came, so none.
    let cmds = h.fire();
    assert_eq!(summary(&cmds), ["PlayPrompt consent barge-in"]);
    assert_eq!(h.core.state(call), Some(State::PlayingPrompt { plays: 2 }));
    h.advance(Duration::from_secs(20));
    let _ = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    let before = h.now.unix_ms;
    let cmds = h.fire();
    assert_eq!(h.now.unix_ms - before, 5_000, "digit timeout");
    assert_eq!(summary(&cmds), ["PlayPrompt confirm-no"]);
    let cmds = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    assert_eq!(summary(&cmds), ["AllocateMedia Pbx V4"]);
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Pbx,
        local: addr("198.51.100.5:30020"),
        srtp_key: None,
    });
    let (invite, _) = find_sip_request(&cmds, "INVITE").expect("INVITE");
    let invite = invite.clone();
    let cmds = h.response(pbx_response(&invite, 200, "p", Some(PBX_SDP)));
    assert_eq!(
        summary(&cmds),
        ["Ack", "ConfigureMedia Pbx", "BridgeMedia"],
        "no recording"
    );
}

#[test]
fn other_digits_do_not_answer_and_barge_in_ends_the_prompt_early() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "bi-1", CALLER_SDP);
    // '5' is neither answer: ignored, though the media engine barged in on it.
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '5',
    });
    assert!(cmds.is_empty());
    let _ = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::BargedIn,
    });
    assert_eq!(h.core.state(call), Some(State::AwaitingDigit { plays: 1 }));
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '1',
    });
    assert_eq!(
        summary(&cmds),
        ["PlayPrompt confirm-yes"],
        "no StopPrompt: nothing plays"
    );
    // A consent-prompt end racing the digit does not skip the confirmation.
    assert_eq!(h.core.state(call), Some(State::Confirming));
}

#[test]
fn configurable_digits() {
    let mut cfg = pbx_config();
    cfg.consent.consent_digit = '9';
    cfg.consent.decline_digit = '#';
    let mut h = H::new(cfg);
    let (call, _ok) = answered_call(&mut h, "cd-1", CALLER_SDP);
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '1',
    });
    assert!(cmds.is_empty(), "1 is not the consent digit here");
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '#',
    });
    assert_eq!(summary(&cmds), ["StopPrompt", "PlayPrompt confirm-no"]);
}

#[test]
fn hang_up_during_prompt_ends_everything_and_stores_nothing() {
    for (label, stage) in [("prompt", 0), ("awaiting-digit", 1), ("confirming", 2)] {
        let mut h = H::new(pbx_config());
        let (call, ok) = answered_call(&mut h, &format!("hu-{label}"), CALLER_SDP);
        if stage >= 1 {
            let _ = h.event(Event::PromptFinished {
                call,
                leg: Leg::Caller,
                outcome: PromptOutcome::Completed,
            });
        }
        if stage >= 2 {
            let _ = h.event(Event::DtmfDigit {
                call,
                leg: Leg::Caller,
                digit: '1',
            });
        }
        let (_, cmds) = h.request(caller_request(&ok, "BYE", 2, None), CALLER);
        assert_eq!(
            summary(&cmds),
            [
                "Respond 200 BYE",
                "ReleaseMedia",
                "CallRecord AbandonedDuringPrompt"
            ],
            "{label}"
        );
        assert_eq!(h.core.active_calls(), 0);
        assert_eq!(h.core.poll_timeout(), None, "{label}: no timer left");
        // A late prompt end or digit changes nothing: the PBX is never called.
        let cmds = h.event(Event::PromptFinished {
            call,
            leg: Leg::Caller,
            outcome: PromptOutcome::Completed,
        });
        assert!(cmds.is_empty(), "{label}");
    }
}

#[test]
fn cancel_before_the_answer_gets_487_and_frees_the_port() {
    let mut h = H::new(pbx_config());
    let (tx, cmds) = h.request(caller_invite("cx-1", "+15555550101", CALLER_SDP), CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    h.core.handle_sip(h.now, SipEvent::Cancelled { tx });
    let cmds = h.drain();
    assert_eq!(
        summary(&cmds),
        [
            "Respond 487 INVITE",
            "ReleaseMedia",
            "CallRecord AbandonedDuringPrompt"
        ]
    );
    // The allocation answered after the CANCEL is released again, nothing is answered.
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    assert_eq!(summary(&cmds), ["ReleaseMedia"]);
}

#[test]
fn cancel_after_our_200_is_ignored_and_the_call_goes_on() {
    let mut h = H::new(pbx_config());
    let (tx, cmds) = h.request(caller_invite("cx-2", "+15555550101", CALLER_SDP), CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let _ = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    h.core.handle_sip(h.now, SipEvent::Cancelled { tx });
    assert!(h.drain().is_empty());
    assert_eq!(h.core.state(call), Some(State::PlayingPrompt { plays: 1 }));
}

#[test]
fn withdrawal_stops_recording_erases_and_confirms() {
    let mut h = H::new(pbx_config());
    let (call, ok) = answered_call(&mut h, "wd-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let _ = h.response(pbx_response(&invite, 200, "pbx-w", Some(PBX_SDP)));
    let rec = RecordingRef([0x42; 16]);
    let _ = h.event(Event::RecordingStarted {
        call,
        recording: rec,
    });
    // Digits that are not the code, then "*9" split by another digit, then "*9".
    for d in ['5', '*', '3', '9'] {
        assert!(
            h.event(Event::DtmfDigit {
                call,
                leg: Leg::Caller,
                digit: d
            })
            .is_empty()
        );
    }
    // The consultant's digits never withdraw.
    let _ = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Pbx,
        digit: '*',
    });
    assert!(
        h.event(Event::DtmfDigit {
            call,
            leg: Leg::Pbx,
            digit: '9'
        })
        .is_empty()
    );
    assert!(
        h.event(Event::DtmfDigit {
            call,
            leg: Leg::Caller,
            digit: '*'
        })
        .is_empty()
    );
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '9',
    });
    assert_eq!(
        summary(&cmds),
        [
            "StopRecording Withdrawn",
            "EraseRecording",
            "PlayPrompt withdrawn"
        ]
    );
    let Command::EraseRecording { recording } = cmds[1] else {
        unreachable!()
    };
    assert_eq!(recording, rec);
    // Pressing it again does nothing more; the call stays bridged.
    let _ = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '*',
    });
    assert!(
        h.event(Event::DtmfDigit {
            call,
            leg: Leg::Caller,
            digit: '9'
        })
        .is_empty()
    );
    let (_, cmds) = h.request(caller_request(&ok, "BYE", 2, None), CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 BYE", "Send BYE"],
        "no second StopRecording"
    );
    let (bye, _) = find_sip_request(&cmds, "BYE").expect("bye");
    let cmds = h.response(pbx_response(bye, 200, "pbx-w", None));
    let r = call_record(&cmds).expect("record");
    assert!(r.withdrawn && r.recorded);
}

#[test]
fn withdrawal_before_the_recording_started_erases_it_when_it_starts() {
    let mut h = H::new(pbx_config());
    let (call, _ok) = answered_call(&mut h, "wd-2", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let _ = h.response(pbx_response(&invite, 200, "pbx-w2", Some(PBX_SDP)));
    let _ = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '*',
    });
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '9',
    });
    assert_eq!(
        summary(&cmds),
        ["StopRecording Withdrawn", "PlayPrompt withdrawn"]
    );
    let cmds = h.event(Event::RecordingStarted {
        call,
        recording: RecordingRef([1; 16]),
    });
    assert_eq!(
        summary(&cmds),
        ["EraseRecording"],
        "never a DepositKey after withdrawal"
    );
}

#[test]
fn survey_after_consultant_hangs_up_stores_date_and_line_only() {
    let mut cfg = pbx_config();
    cfg.survey.enabled = true;
    cfg.survey.line = "ivf-counselling".into();
    let mut h = H::new(cfg);
    let (call, _ok) = answered_call(&mut h, "sv-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '1');
    let _ = h.response(pbx_response(&invite, 200, "pbx-s", Some(PBX_SDP)));
    let _ = h.event(Event::RecordingStarted {
        call,
        recording: RecordingRef([3; 16]),
    });
    let (_, cmds) = h.request(pbx_bye(&invite, "pbx-s", 7), PBX);
    assert_eq!(
        summary(&cmds),
        [
            "Respond 200 BYE",
            "StopRecording ConsultantHungUp",
            "UnbridgeMedia",
            "PlayPrompt survey barge-in"
        ]
    );
    // Out-of-range digit ignored, then 4.
    assert!(
        h.event(Event::DtmfDigit {
            call,
            leg: Leg::Caller,
            digit: '8'
        })
        .is_empty()
    );
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '4',
    });
    assert_eq!(
        summary(&cmds),
        ["StopPrompt", "RecordSurvey 4", "PlayPrompt thanks"]
    );
    let Command::RecordSurvey { answer } = &cmds[1] else {
        unreachable!()
    };
    assert_eq!(
        answer,
        &SurveyAnswer {
            line: "ivf-counselling".into(),
            date: "2026-12-04".into(),
            answer: 4
        }
    );
    let _ = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Stopped,
    });
    let cmds = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    assert_eq!(summary(&cmds), ["Send BYE"]);
}

#[test]
fn survey_unanswered_times_out_and_caller_hanging_up_first_gets_none() {
    let mut cfg = pbx_config();
    cfg.survey.enabled = true;
    let mut h = H::new(cfg);
    let (call, _ok) = answered_call(&mut h, "sv-2", CALLER_SDP);
    let invite = consent_and_invite(&mut h, call, '2');
    let _ = h.response(pbx_response(&invite, 200, "pbx-s2", Some(PBX_SDP)));
    let _ = h.request(pbx_bye(&invite, "pbx-s2", 7), PBX);
    let _ = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    let cmds = h.fire();
    assert_eq!(summary(&cmds), ["Send BYE"], "no RecordSurvey");

    let mut h2 = H::new({
        let mut c = pbx_config();
        c.survey.enabled = true;
        c
    });
    let (call, ok) = answered_call(&mut h2, "sv-3", CALLER_SDP);
    let invite = consent_and_invite(&mut h2, call, '2');
    let _ = h2.response(pbx_response(&invite, 200, "pbx-s3", Some(PBX_SDP)));
    let (_, cmds) = h2.request(caller_request(&ok, "BYE", 2, None), CALLER);
    assert_eq!(
        summary(&cmds),
        ["Respond 200 BYE", "Send BYE"],
        "caller left: no survey"
    );
}

#[test]
fn echo_mode_bridges_consenting_callers_to_the_echo_endpoint() {
    let mut cfg = pbx_config();
    cfg.target = Target::Echo;
    let mut h = H::new(cfg);
    let (call, ok) = answered_call(&mut h, "echo-1", CALLER_SDP);
    let _ = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit: '1',
    });
    let _ = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::BargedIn,
    });
    let cmds = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    assert_eq!(
        summary(&cmds),
        ["ConnectEcho", "BridgeMedia", "StartRecording"]
    );
    let _ = h.event(Event::RecordingStarted {
        call,
        recording: RecordingRef([8; 16]),
    });
    let (_, cmds) = h.request(caller_request(&ok, "BYE", 2, None), CALLER);
    assert_eq!(
        summary(&cmds),
        [
            "Respond 200 BYE",
            "StopRecording CallEnded",
            "ReleaseMedia",
            "CallRecord Completed"
        ]
    );
}

#[test]
fn missing_ack_ends_the_call_with_a_bye() {
    let mut h = H::new(pbx_config());
    let (tx, cmds) = h.request(caller_invite("ack-1", "+15555550101", CALLER_SDP), CALLER);
    let Command::AllocateMedia { call, .. } = cmds[0] else {
        unreachable!()
    };
    let _ = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    // The transaction layer retransmitted our 200 for 64·T1 (RFC 3261 §13.3.1.4).
    h.advance(Duration::from_secs(32));
    h.core.handle_sip(h.now, SipEvent::AckTimeout { tx });
    let cmds = h.drain();
    assert_eq!(summary(&cmds), ["Send BYE"]);
    let (bye, dest) = find_sip_request(&cmds, "BYE").expect("BYE");
    assert_eq!(dest, addr(CALLER));
    assert_eq!(
        bye.request_uri().map(ToString::to_string).as_deref(),
        Some("sip:alice@192.0.2.50:5060")
    );
    let cmds = h.response(Message::response_to(
        bye,
        callseal_sip::StatusCode::OK,
        None,
    ));
    assert_eq!(summary(&cmds), ["ReleaseMedia", "CallRecord MediaFailure"]);
}

fn pbx_bye(invite: &callseal_sip::Message, pbx_tag: &str, cseq: u32) -> callseal_sip::Message {
    let h = &invite.headers;
    let from = h.from().expect("from");
    let text = format!(
        "BYE sip:callseal@198.51.100.5:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-pbxbye{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:consult@pbx.example.com>;tag={pbx_tag}\r\n\
         To: <{}>;tag={}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} BYE\r\n\
         Content-Length: 0\r\n\r\n",
        from.uri,
        from.tag().expect("tag"),
        h.call_id().expect("call-id"),
    );
    callseal_sip::Message::parse(text.as_bytes()).expect("BYE parses")
}

use callseal_sip::Message;

#[test]
fn shutdown_ends_every_call_and_refuses_new_ones() {
    let mut cfg = pbx_config();
    cfg.max_calls = 3;
    let mut h = H::new(cfg);
    // One bridged and recording, one in the prompt, one still waiting for its port.
    let (c1, ok1) = answered_call(&mut h, "sd-1", CALLER_SDP);
    let invite = consent_and_invite(&mut h, c1, '1');
    let _ = h.response(pbx_response(&invite, 200, "pbx-sd", Some(PBX_SDP)));
    let _ = h.event(Event::RecordingStarted {
        call: c1,
        recording: RecordingRef([4; 16]),
    });
    let (_c2, ok2) = answered_call(&mut h, "sd-2", CALLER_SDP);
    let (_, cmds) = h.request(caller_invite("sd-3", "+1555", CALLER_SDP), CALLER);
    assert_eq!(summary(&cmds), ["AllocateMedia Caller V4"]);
    // max_calls reached: 503 with Retry-After.
    let (_, cmds) = h.request(caller_invite("sd-4", "+1555", CALLER_SDP), CALLER);
    assert_eq!(summary(&cmds), ["Respond 503 INVITE"]);
    assert_eq!(
        find_response(&cmds, 503).and_then(|r| r.headers.text("Retry-After")),
        Some("30")
    );

    h.core.shutdown(h.now);
    let cmds = h.drain();
    assert_eq!(
        summary(&cmds),
        [
            "StopRecording CallEnded",
            "Send BYE",
            "Send BYE", // call 1: both legs
            "Send BYE", // call 2: the caller
            "Respond 503 INVITE",
            "ReleaseMedia",
            "CallRecord Shutdown", // call 3
        ]
    );
    assert_eq!(h.core.active_calls(), 2);
    // The answers come in; nothing is left.
    for c in &cmds {
        if let Command::Sip(SipCommand::Request { request, .. }) = c {
            let _ = h.response(Message::response_to(
                request,
                callseal_sip::StatusCode::OK,
                None,
            ));
        }
    }
    assert_eq!(h.core.active_calls(), 0);
    let (_, cmds) = h.request(caller_invite("sd-5", "+1555", CALLER_SDP), CALLER);
    assert_eq!(summary(&cmds), ["Respond 503 INVITE"]);
    let _ = (ok1, ok2);
}
