//! Prompt playout and generated digits on simulated time: pacing by the caller of the core,
//! repeat with a gap, barge-in, stop, replacement, late wake-ups, the prompt → relay switch,
//! RFC 4733 generation and the in-band fallback.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use callseal_media::dtmf::{EventDetector, InbandDetector};
use callseal_media::{
    Codec, Digit, Leg, LegConfig, MediaEvent, MediaSession, PayloadMap, Playback, Prompt,
    PromptOutcome, Transmit,
};
use common::*;

/// Runs the session's timers to completion (or `limit`), returning every transmit with the
/// time it was produced.
fn run(s: &mut MediaSession, t0: Instant, limit: Duration) -> Vec<(Duration, Transmit)> {
    let mut out: Vec<(Duration, Transmit)> = drain_transmits(s)
        .into_iter()
        .map(|t| (Duration::ZERO, t))
        .collect();
    while let Some(at) = s.poll_timeout() {
        if at.duration_since(t0) > limit {
            break;
        }
        s.handle_timeout(at);
        out.extend(
            drain_transmits(s)
                .into_iter()
                .map(|t| (at.duration_since(t0), t)),
        );
    }
    out
}

fn ramp(n: usize) -> Prompt {
    Prompt::from_samples(
        (0..n)
            .map(|i| i16::try_from(i % 1000).unwrap() * 16 + 100)
            .collect(),
    )
}

#[test]
fn frames_are_paced_by_poll_timeout_and_encoded_in_the_send_codec() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcma);
    let prompt = ramp(800); // 100 ms
    s.play_prompt(t0, Leg::Caller, Playback::once(prompt.clone()))
        .unwrap();
    assert!(s.is_playing(Leg::Caller));
    let sent = run(&mut s, t0, ms(10_000));
    let times: Vec<u128> = sent.iter().map(|(at, _)| at.as_millis()).collect();
    assert_eq!(times, [0, 20, 40, 60, 80]);
    let frames: Vec<_> = sent.iter().map(|(_, t)| fields(&t.payload)).collect();
    let payload: Vec<u8> = frames.iter().flat_map(|f| f.5.clone()).collect();
    let expected: Vec<u8> = prompt
        .samples()
        .iter()
        .map(|&x| Codec::Pcma.encode(x))
        .collect();
    assert_eq!(payload, expected);
    assert!(frames.iter().all(|f| f.1 == 8 && f.4 == CALLER_STREAM.ssrc));
    assert_eq!(
        frames.iter().map(|f| f.0).collect::<Vec<_>>(),
        [true, false, false, false, false]
    );
    assert_eq!(
        drain_events(&mut s),
        [MediaEvent::PromptFinished {
            leg: Leg::Caller,
            outcome: PromptOutcome::Completed
        }]
    );
    assert!(!s.is_playing(Leg::Caller));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn repeat_plays_again_after_the_gap() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    let playback = Playback {
        prompt: ramp(320),
        barge_in: true,
        repeat: 2,
        gap: ms(40),
    };
    s.play_prompt(t0, Leg::Caller, playback).unwrap();
    let sent = run(&mut s, t0, ms(10_000));
    // 3 × 320 samples + 2 × 320 samples of gap = 1600 samples = 10 frames.
    assert_eq!(sent.len(), 10);
    let payload: Vec<u8> = sent
        .iter()
        .flat_map(|(_, t)| fields(&t.payload).5)
        .collect();
    let one: Vec<u8> = ramp(320)
        .samples()
        .iter()
        .map(|&x| Codec::Pcmu.encode(x))
        .collect();
    let silence = vec![Codec::Pcmu.silence(); 320];
    let expected = [one.clone(), silence.clone(), one.clone(), silence, one].concat();
    assert_eq!(payload, expected);
    let finished: Vec<_> = drain_events(&mut s);
    assert_eq!(finished.len(), 1);
}

#[test]
fn a_digit_barges_in_and_relay_resumes_with_the_marker() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let te = PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), te))
        .unwrap();
    s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), te))
        .unwrap();
    s.set_bridge(true);
    s.set_dtmf_forwarding(false);
    s.play_prompt(t0, Leg::Caller, Playback::once(ramp(8000)))
        .unwrap();
    let before = run(&mut s, t0, ms(100));
    assert_eq!(before.len(), 6);
    // Caller presses 1 at 110 ms.
    let key = rtp(true, 101, 7, 5000, 0x1111, &[1, 0x0a, 0, 160]);
    s.handle_packet(t0 + ms(110), Leg::Caller, addr(CALLER), &key);
    let events = drain_events(&mut s);
    assert!(events.contains(&MediaEvent::PromptFinished {
        leg: Leg::Caller,
        outcome: PromptOutcome::BargedIn { digit: Digit::D1 }
    }));
    assert!(!s.is_playing(Leg::Caller));
    assert!(
        drain_transmits(&mut s).is_empty(),
        "digit not forwarded during consent"
    );
    // PBX audio now reaches the caller, continuing the stream.
    s.handle_packet(
        t0 + ms(130),
        Leg::Pbx,
        addr(PBX),
        &rtp(false, 0, 900, 90_000, 0x2222, &[0xff; 160]),
    );
    let relayed: Vec<_> = drain_transmits(&mut s)
        .iter()
        .map(|t| fields(&t.payload))
        .collect();
    assert_eq!(relayed.len(), 1);
    let last_prompt = fields(&before.last().unwrap().1.payload);
    assert!(relayed[0].0, "marker on the switch");
    assert_eq!(relayed[0].2, last_prompt.2.wrapping_add(1));
    // Last frame at 100 ms, relay at 130 ms: +240 units.
    assert_eq!(relayed[0].3, last_prompt.3 + 240);
}

#[test]
fn without_barge_in_the_prompt_continues_but_the_digit_is_reported() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let te = PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), te))
        .unwrap();
    let playback = Playback {
        barge_in: false,
        ..Playback::once(ramp(1600))
    };
    s.play_prompt(t0, Leg::Caller, playback).unwrap();
    s.handle_packet(
        t0 + ms(10),
        Leg::Caller,
        addr(CALLER),
        &rtp(true, 101, 1, 5, 3, &[2, 10, 0, 160]),
    );
    let events = drain_events(&mut s);
    assert!(events.iter().any(|e| matches!(
        e,
        MediaEvent::DtmfDigit {
            digit: Digit::D2,
            ..
        }
    )));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, MediaEvent::PromptFinished { .. }))
    );
    assert!(s.is_playing(Leg::Caller));
}

#[test]
fn stop_and_replace_report_stopped() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.play_prompt(t0, Leg::Caller, Playback::once(ramp(8000)))
        .unwrap();
    s.play_prompt(t0 + ms(5), Leg::Caller, Playback::once(ramp(8000)))
        .unwrap();
    assert_eq!(
        drain_events(&mut s),
        [MediaEvent::PromptFinished {
            leg: Leg::Caller,
            outcome: PromptOutcome::Stopped
        }]
    );
    s.stop_prompt(Leg::Caller);
    s.stop_prompt(Leg::Caller);
    assert_eq!(
        drain_events(&mut s).len(),
        1,
        "stopping nothing reports nothing"
    );
    assert_eq!(s.poll_timeout(), None);
    // Playing on an unconfigured leg is a clear error.
    let mut bare = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let err = bare
        .play_prompt(t0, Leg::Pbx, Playback::once(ramp(10)))
        .unwrap_err();
    assert!(err.to_string().contains("configure it"), "{err}");
}

#[test]
fn a_late_wakeup_skips_frames_instead_of_bursting() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.play_prompt(t0, Leg::Caller, Playback::once(ramp(8000)))
        .unwrap();
    let first = fields(&drain_transmits(&mut s)[0].payload);
    // The shell was stalled for 500 ms.
    s.handle_timeout(t0 + ms(500));
    let sent: Vec<_> = drain_transmits(&mut s)
        .iter()
        .map(|t| fields(&t.payload))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(s.stats(Leg::Caller).frames_skipped, 24);
    let (marker, _, seq, ts, _, payload) = &sent[0];
    assert!(*marker);
    assert_eq!(*seq, first.2 + 1);
    assert_eq!(*ts, first.3 + 4000, "re-based on the wallclock");
    // The audio is the part of the prompt due at 500 ms.
    let due: Vec<u8> = ramp(8000).samples()[4000..4160]
        .iter()
        .map(|&x| Codec::Pcmu.encode(x))
        .collect();
    assert_eq!(*payload, due);
    // A wake-up within 200 ms of the due time still sends every frame.
    s.handle_timeout(t0 + ms(660));
    assert_eq!(drain_transmits(&mut s).len(), 8);
}

#[test]
fn generated_digit_is_rfc4733_on_the_leg_pt_and_detectable() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    s.configure_leg(
        t0,
        Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcmu)),
    )
    .unwrap();
    let pbx = PayloadMap::g711(Codec::Pcma).with_telephone_event(126);
    s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), pbx))
        .unwrap();
    s.send_dtmf(t0, Leg::Pbx, Digit::Hash, ms(100)).unwrap();
    let sent = run(&mut s, t0, ms(10_000));
    let times: Vec<u128> = sent.iter().map(|(at, _)| at.as_millis()).collect();
    assert_eq!(times, [0, 20, 40, 60, 80, 100, 120]);
    let mut detector = EventDetector::new(false);
    let mut found = Vec::new();
    for (_, t) in &sent {
        let (marker, pt, _, ts, ssrc, payload) = fields(&t.payload);
        assert_eq!((pt, ts, ssrc), (126, PBX_STREAM.timestamp, PBX_STREAM.ssrc));
        found.extend(detector.on_packet(t0, ssrc, marker, ts, &payload).unwrap());
    }
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digit, Digit::Hash);
}

#[test]
fn without_telephone_event_the_digit_is_sent_in_band() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcma);
    s.send_dtmf(t0, Leg::Caller, Digit::D8, ms(120)).unwrap();
    let sent = run(&mut s, t0, ms(10_000));
    assert_eq!(sent.len(), 6);
    let mut inband = InbandDetector::new();
    let mut keys = Vec::new();
    for (_, t) in &sent {
        let (_, pt, ..) = fields(&t.payload);
        assert_eq!(pt, 8, "in-band tones travel on the audio PT");
        let pcm: Vec<i16> = fields(&t.payload)
            .5
            .iter()
            .map(|&c| Codec::Pcma.decode(c))
            .collect();
        inband.push_samples(&pcm, |d| keys.push(d));
    }
    // Trailing silence so the detector sees the end of the tone.
    inband.push_samples(&[0; 410], |d| keys.push(d));
    assert_eq!(keys, [Digit::D8]);
    // Regenerated digits are not prompts: no PromptFinished.
    assert!(drain_events(&mut s).is_empty());
}
