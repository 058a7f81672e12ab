//! Field cases 025, 026, 027, 029, 031 and 032 (fixtures/cases): each input file is fed to the
//! parser or to a session on simulated time and the correct values are asserted.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use callseal_media::rtp::{RtpError, RtpView};
use callseal_media::{
    Codec, Digit, DtmfSource, FrameKind, Leg, LegConfig, MediaEvent, MediaSession, PayloadMap,
    Playback, Prompt, PromptOutcome, StreamInit,
};
use common::*;

// ---------------------------------------------------------------------------------------------
// 025: SSRC change mid-call on the same 5-tuple.

#[test]
fn case_025_new_ssrc_plays_at_once_with_its_own_state_and_the_straggler_is_dropped() {
    let packets = hex_case("025-rtp-ssrc-change-midcall.hex");
    assert_eq!(packets.len(), 7);
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcma);
    let sink = MemorySink::default();
    s.start_recording(t0, Box::new(sink.clone()));
    s.set_bridge(true);
    for (i, (_, p)) in packets.iter().enumerate() {
        s.handle_packet(t0 + ms(20 * i as u64), Leg::Pbx, addr(PBX), p);
    }
    let sent: Vec<_> = drain_transmits(&mut s)
        .iter()
        .map(|t| fields(&t.payload))
        .collect();
    // Six packets relayed at once (nothing held back or judged too old), the straggler dropped.
    assert_eq!(sent.len(), 6);
    let seqs: Vec<u16> = sent.iter().map(|f| f.2).collect();
    assert_eq!(
        seqs,
        (500..506).collect::<Vec<u16>>(),
        "one continuous outgoing sequence"
    );
    assert!(sent.iter().all(|f| f.4 == CALLER_STREAM.ssrc && f.1 == 8));
    let markers: Vec<bool> = sent.iter().map(|f| f.0).collect();
    assert_eq!(markers, [true, false, false, true, false, false]);
    let ts: Vec<u32> = sent.iter().map(|f| f.3).collect();
    let base = CALLER_STREAM.timestamp;
    // Within a source the upstream spacing (160) is kept; at the switch the timestamp advances
    // by the 20 ms of wallclock since the previous packet.
    assert_eq!(ts, (0..6).map(|i| base + 160 * i).collect::<Vec<u32>>());

    let events = drain_events(&mut s);
    let changes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::SsrcChanged {
                previous, current, ..
            } => Some((*previous, *current)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [(None, 0x1A2B_3C4D), (Some(0x1A2B_3C4D), 0x9E8D_7C6B)]
    );

    let stats = s.stats(Leg::Pbx);
    assert_eq!(stats.packets_received, 7);
    assert_eq!(stats.ssrc_changes, 1);
    assert_eq!(stats.dropped_stale_ssrc, 1);
    // Per-SSRC loss: no packet of either source is missing.
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.jitter_units, 0);

    // The recorder sees each frame with its own SSRC and timestamp, straggler excluded.
    let rec = sink.recorded();
    let tapped: Vec<(u32, u32)> = rec.iter().map(|f| (f.ssrc, f.rtp_timestamp)).collect();
    assert_eq!(
        tapped,
        [
            (0x1A2B_3C4D, 3_406_400),
            (0x1A2B_3C4D, 3_406_560),
            (0x1A2B_3C4D, 3_406_720),
            (0x9E8D_7C6B, 911_000),
            (0x9E8D_7C6B, 911_160),
            (0x9E8D_7C6B, 911_320),
        ]
    );
    assert!(
        rec.iter()
            .all(|f| f.kind == FrameKind::Audio(Codec::Pcma) && f.payload.len() == 160)
    );
}

#[test]
fn case_025_old_ssrc_may_take_over_again_once_the_new_one_fell_silent() {
    let packets = hex_case("025-rtp-ssrc-change-midcall.hex");
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcma);
    for (i, (_, p)) in packets[..6].iter().enumerate() {
        s.handle_packet(t0 + ms(20 * i as u64), Leg::Pbx, addr(PBX), p);
    }
    // The old source returns 2 s after the new one's last packet: a transfer back.
    s.handle_packet(t0 + ms(2100), Leg::Pbx, addr(PBX), &packets[6].1);
    let stats = s.stats(Leg::Pbx);
    assert_eq!(stats.dropped_stale_ssrc, 0);
    assert_eq!(stats.ssrc_changes, 2);
    assert_eq!(stats.lost, 0);
}

// ---------------------------------------------------------------------------------------------
// 026: prompt → relay switch keeps seq/ts continuous and sets M.

#[test]
fn case_026_prompt_then_relay_is_option_a_byte_for_byte() {
    let packets = hex_case("026-rtp-timestamp-jump-prompt-to-relay.hex");
    assert_eq!(packets.len(), 6);
    let gateway = StreamInit {
        ssrc: 0x5EED_1234,
        sequence: 1000,
        timestamp: 160_000,
    };
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(gateway, PBX_STREAM));
    let pcmu = PayloadMap::g711(Codec::Pcmu);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), pcmu))
        .unwrap();
    s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), pcmu))
        .unwrap();
    s.set_bridge(true);
    // 60 ms of silence: three 20 ms frames.
    s.play_prompt(
        t0,
        Leg::Caller,
        Playback::once(Prompt::from_samples(vec![0; 480])),
    )
    .unwrap();
    let mut sent = drain_transmits(&mut s);
    while let Some(at) = s.poll_timeout() {
        s.handle_timeout(at);
        sent.extend(drain_transmits(&mut s));
    }
    assert_eq!(sent.len(), 3);
    for (t, (what, expected)) in sent.iter().zip(&packets[..3]) {
        assert_eq!(hex::encode(&t.payload), hex::encode(expected), "{what}");
        assert_eq!(t.destination, addr(CALLER));
    }
    assert!(drain_events(&mut s).contains(&MediaEvent::PromptFinished {
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed
    }));
    // The PBX's first packet arrives 120 ms after the last prompt frame, on its own SSRC,
    // seq and ts (the input of the BAD line), without marker.
    let (_, option_b) = &packets[5];
    let mut from_pbx = option_b.clone();
    from_pbx[1] &= 0x7f;
    s.handle_packet(t0 + ms(160), Leg::Pbx, addr(PBX), &from_pbx);
    let relayed = drain_transmits(&mut s);
    assert_eq!(relayed.len(), 1);
    let (_, good_a) = &packets[4];
    let (_, bad) = &packets[3];
    assert_eq!(hex::encode(&relayed[0].payload), hex::encode(good_a));
    assert_ne!(relayed[0].payload, *bad);
}

// ---------------------------------------------------------------------------------------------
// 027: padding, CSRC, extensions, truncation.

#[test]
fn case_027_every_packet_is_sliced_or_refused_correctly() {
    let packets = hex_case("027-rtp-padding-csrc-extension.hex");
    assert_eq!(packets.len(), 9);
    let results: Vec<_> = packets.iter().map(|(_, p)| RtpView::parse(p)).collect();
    let ok = |i: usize| results[i].as_ref().expect("accepted");
    // (a) 160 payload bytes + 4 padding bytes.
    assert_eq!(ok(0).payload(), &[0xff; 160][..]);
    assert_eq!(ok(0).payload_offset(), 12);
    // (b) P=1 and nothing after the header.
    assert_eq!(
        results[1],
        Err(RtpError::BadPadding {
            count: 0,
            available: 0
        })
    );
    // (c) padding count 255 in a 33-byte packet.
    assert_eq!(
        results[2],
        Err(RtpError::BadPadding {
            count: 0xff,
            available: 21
        })
    );
    // (d) extension of length 0: payload at 16.
    assert_eq!(ok(3).payload_offset(), 16);
    assert_eq!(ok(3).payload().len(), packets[3].1.len() - 16);
    // (e) one-byte extension, one word: payload at 20, element id 1 = audio level 0x85.
    assert_eq!(ok(4).payload_offset(), 20);
    let e = ok(4).to_rtc_packet().expect("structured");
    assert_eq!(e.header.get_extension(1).as_deref(), Some(&[0x85u8][..]));
    assert_eq!(&e.payload[..], ok(4).payload());
    // (f) two CSRCs + two-byte extension of two words: payload at 32.
    assert_eq!(ok(5).payload_offset(), 32);
    assert_eq!(ok(5).csrc_count(), 2);
    let f = ok(5).to_rtc_packet().expect("structured");
    assert_eq!(f.header.csrc, [0xaaaa_0001, 0xaaaa_0002]);
    assert_eq!(
        f.header.get_extension(1).as_deref(),
        Some(&[0x7f, 0x7f][..])
    );
    assert_eq!(f.header.get_extension(2).as_deref(), Some(&[0x55][..]));
    assert_eq!(ok(5).payload(), &packets[5].1[32..]);
    // (g) CC=15 in 20 bytes.
    assert_eq!(
        results[6],
        Err(RtpError::CsrcTruncated {
            csrc_count: 15,
            needed: 72,
            len: 20
        })
    );
    // (h) extension of 0x100 words.
    assert!(matches!(
        results[7],
        Err(RtpError::ExtensionTruncated { needed: 1040, .. })
    ));
    // (i) version 1.
    assert_eq!(results[8], Err(RtpError::BadVersion { version: 1 }));
}

#[test]
fn case_027_session_drops_and_counts_malformed_and_taps_correct_slices() {
    let packets = hex_case("027-rtp-padding-csrc-extension.hex");
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    let sink = MemorySink::default();
    s.start_recording(t0, Box::new(sink.clone()));
    s.set_bridge(true);
    for (i, (_, p)) in packets.iter().enumerate() {
        s.handle_packet(t0 + ms(20 * i as u64), Leg::Caller, addr(CALLER), p);
    }
    let stats = s.stats(Leg::Caller);
    // (i) is not RTP at all (version 1): the demultiplexer counts it as malformed too.
    assert_eq!(stats.malformed, 5, "b, c, g, h, i");
    assert_eq!(stats.packets_received, 4, "a, d, e, f");
    let rec = sink.recorded();
    let lens: Vec<usize> = rec.iter().map(|f| f.payload.len()).collect();
    assert_eq!(
        lens,
        [
            160,
            packets[3].1.len() - 16,
            packets[4].1.len() - 20,
            packets[5].1.len() - 32
        ]
    );
    assert!(rec.iter().all(|f| f.payload.iter().all(|&b| b == 0xff)));
    // Relayed with a plain 12-byte header and exactly the payload slice: CSRCs, extensions
    // and padding stay on the incoming leg.
    let sent = drain_transmits(&mut s);
    assert_eq!(sent.len(), 4);
    for (t, r) in sent.iter().zip(&rec) {
        assert_eq!(t.payload[0], 0x80);
        assert_eq!(t.payload.len(), 12 + r.payload.len());
        assert_eq!(t.payload[12..], r.payload[..]);
    }
}

// ---------------------------------------------------------------------------------------------
// 029: ptime 30 and a mid-stream change to 20 ms.

#[test]
fn case_029_packet_duration_comes_from_the_length() {
    let packets = hex_case("029-g711-ptime-30.hex");
    assert_eq!(packets.len(), 4);
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcma);
    let sink = MemorySink::default();
    s.start_recording(t0, Box::new(sink.clone()));
    s.set_bridge(true);
    // Arrivals paced by each packet's own duration: 30, 30, 30 ms, then the 20 ms packet.
    for (at, (_, p)) in [0u64, 30, 60, 90].iter().zip(&packets) {
        s.handle_packet(t0 + ms(*at), Leg::Caller, addr(CALLER), p);
    }
    let rec = sink.recorded();
    let frames: Vec<(u32, usize)> = rec
        .iter()
        .map(|f| (f.rtp_timestamp, f.payload.len()))
        .collect();
    assert_eq!(
        frames,
        [
            (480_000, 240),
            (480_240, 240),
            (480_480, 240),
            (480_720, 160)
        ]
    );
    let stats = s.stats(Leg::Caller);
    assert_eq!((stats.lost, stats.jitter_units, stats.late), (0, 0, 0));
    // Passed through unchanged in size, timestamps re-based but spaced as received.
    let sent: Vec<_> = drain_transmits(&mut s)
        .iter()
        .map(|t| fields(&t.payload))
        .collect();
    let spacing: Vec<u32> = sent.windows(2).map(|w| w[1].3 - w[0].3).collect();
    assert_eq!(spacing, [240, 240, 240]);
    assert_eq!(
        sent.iter().map(|f| f.5.len()).collect::<Vec<_>>(),
        [240, 240, 240, 160]
    );
}

#[test]
fn case_029_prompt_to_a_ptime_30_peer_is_framed_at_30_ms() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let mut caller = LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcma));
    caller.ptime = ms(30);
    s.configure_leg(t0, Leg::Caller, caller).unwrap();
    s.configure_leg(
        t0,
        Leg::Pbx,
        LegConfig::new(Some(addr(PBX)), PayloadMap::g711(Codec::Pcma)),
    )
    .unwrap();
    let tone = Prompt::tone(&[440.0], ms(300), 3000.0);
    s.play_prompt(t0, Leg::Caller, Playback::once(tone))
        .unwrap();
    s.play_prompt(
        t0,
        Leg::Pbx,
        Playback::once(Prompt::tone(&[440.0], ms(300), 3000.0)),
    )
    .unwrap();
    let mut caller_frames = Vec::new();
    let mut pbx_frames = Vec::new();
    let mut wakeups = Vec::new();
    loop {
        for t in drain_transmits(&mut s) {
            let f = fields(&t.payload);
            match t.leg {
                Leg::Caller => caller_frames.push(f),
                Leg::Pbx => pbx_frames.push(f),
            }
        }
        let Some(at) = s.poll_timeout() else { break };
        wakeups.push(at.duration_since(t0));
        s.handle_timeout(at);
    }
    assert_eq!(caller_frames.len(), 10);
    assert!(caller_frames.iter().all(|f| f.5.len() == 240));
    let spacing: Vec<u32> = caller_frames.windows(2).map(|w| w[1].3 - w[0].3).collect();
    assert!(spacing.iter().all(|&d| d == 240), "{spacing:?}");
    // The other leg keeps its own 20 ms framing.
    assert_eq!(pbx_frames.len(), 15);
    assert!(pbx_frames.iter().all(|f| f.5.len() == 160));
    // The shell is woken at every 20 and 30 ms boundary, never in between.
    assert!(
        wakeups.iter().all(
            |d| d.as_millis() % 10 == 0 && (d.as_millis() % 20 == 0 || d.as_millis() % 30 == 0)
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 031: telephone-event on PT 96 from the caller, PT 101 towards the PBX.

fn case_031_session(t0: Instant) -> MediaSession {
    let pbx_stream = StreamInit {
        ssrc: 0x7777_7777,
        sequence: 9200,
        timestamp: 480_000,
    };
    let mut s = MediaSession::new(session_config(CALLER_STREAM, pbx_stream));
    let caller = PayloadMap::g711(Codec::Pcmu).with_telephone_event(96);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), caller))
        .unwrap();
    let pbx = PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
    s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), pbx))
        .unwrap();
    s
}

#[test]
fn case_031_event_on_the_negotiated_pt_is_detected_once_and_rewritten_to_the_pbx_pt() {
    let packets = hex_case("031-dtmf-telephone-event-pt.hex");
    assert_eq!(packets.len(), 7);
    let t0 = Instant::now();
    let mut s = case_031_session(t0);
    s.set_bridge(true);
    for (i, (_, p)) in packets[..6].iter().enumerate() {
        s.handle_packet(t0 + ms(20 * i as u64), Leg::Caller, addr(CALLER), p);
    }
    let digits: Vec<_> = drain_events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, MediaEvent::DtmfDigit { .. }))
        .collect();
    assert_eq!(
        digits,
        [MediaEvent::DtmfDigit {
            leg: Leg::Caller,
            digit: Digit::D7,
            source: DtmfSource::TelephoneEvent,
            rtp_timestamp: Some(8160),
        }]
    );
    let sent = drain_transmits(&mut s);
    assert_eq!(sent.len(), 6);
    // The first event packet is exactly what the case says the gateway must emit.
    let (what, expected) = &packets[6];
    assert_eq!(
        hex::encode(&sent[1].payload),
        hex::encode(expected),
        "{what}"
    );
    // All event packets on PT 101, with the event start timestamp.
    for t in &sent[1..] {
        let f = fields(&t.payload);
        assert_eq!((f.1, f.3, f.4), (101, 480_160, 0x7777_7777));
    }
    assert_eq!(fields(&sent[0].payload).1, 0, "audio keeps the audio PT");
}

#[test]
fn case_031_pt_101_is_not_assumed_and_static_pts_cannot_carry_events() {
    let packets = hex_case("031-dtmf-telephone-event-pt.hex");
    let t0 = Instant::now();
    let mut s = case_031_session(t0);
    // The caller sending events on 101 (not what the gateway's SDP said): not a digit.
    let mut on_101 = packets[1].1.clone();
    on_101[1] = 0x80 | 101;
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &on_101);
    assert!(
        !drain_events(&mut s)
            .iter()
            .any(|e| matches!(e, MediaEvent::DtmfDigit { .. }))
    );
    assert_eq!(s.stats(Leg::Caller).dropped_payload_type, 1);
    // Binding telephone-event to PT 10 (L16 stereo) is refused.
    let bad = PayloadMap::g711(Codec::Pcmu).with_telephone_event(10);
    let err = s
        .configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), bad))
        .unwrap_err();
    assert!(err.to_string().contains("payload type 10"), "{err}");
    // The refusal left the leg as it was: PT 96 still works.
    s.handle_packet(t0 + ms(20), Leg::Caller, addr(CALLER), &packets[1].1);
    assert!(
        drain_events(&mut s)
            .iter()
            .any(|e| matches!(e, MediaEvent::DtmfDigit { .. }))
    );
}

#[test]
fn case_031_events_are_dropped_towards_a_leg_without_telephone_event() {
    let packets = hex_case("031-dtmf-telephone-event-pt.hex");
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let caller = PayloadMap::g711(Codec::Pcmu).with_telephone_event(96);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), caller))
        .unwrap();
    s.configure_leg(
        t0,
        Leg::Pbx,
        LegConfig::new(Some(addr(PBX)), PayloadMap::g711(Codec::Pcmu)),
    )
    .unwrap();
    s.set_bridge(true);
    for (i, (_, p)) in packets[..6].iter().enumerate() {
        s.handle_packet(t0 + ms(20 * i as u64), Leg::Caller, addr(CALLER), p);
    }
    let sent = drain_transmits(&mut s);
    assert_eq!(sent.len(), 1, "only the audio packet");
    assert!(sent.iter().all(|t| fields(&t.payload).1 == 0));
}

// ---------------------------------------------------------------------------------------------
// 032: end retransmissions, the same key twice, broken senders.

fn case_032_digits(merge: bool, prompt: bool) -> (Vec<(char, Option<u32>)>, Vec<MediaEvent>) {
    let packets = hex_case("032-dtmf-end-retransmit-repeat.hex");
    assert_eq!(packets.len(), 17);
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let mut caller = LegConfig::new(
        Some(addr(CALLER)),
        PayloadMap::g711(Codec::Pcmu).with_telephone_event(101),
    );
    caller.merge_contiguous_events = merge;
    s.configure_leg(t0, Leg::Caller, caller).unwrap();
    if prompt {
        let long = Prompt::from_samples(vec![0; 8000 * 10]);
        s.play_prompt(t0, Leg::Caller, Playback::once(long))
            .unwrap();
    }
    let mut events = Vec::new();
    for (i, (_, p)) in packets.iter().enumerate() {
        let now = t0 + ms(20 * i as u64);
        s.handle_timeout(now);
        s.handle_packet(now, Leg::Caller, addr(CALLER), p);
        events.extend(drain_events(&mut s));
    }
    let digits = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::DtmfDigit {
                digit,
                rtp_timestamp,
                ..
            } => Some((digit.as_char(), *rtp_timestamp)),
            _ => None,
        })
        .collect();
    (digits, events)
}

#[test]
fn case_032_one_digit_per_event_timestamp() {
    let (digits, _) = case_032_digits(false, false);
    assert_eq!(
        digits,
        [
            ('5', Some(80_000)),
            ('5', Some(81_600)),
            // Broken sender A, strict reading: every new timestamp is a new event.
            ('3', Some(90_000)),
            ('3', Some(90_160)),
            ('3', Some(90_320)),
            // Broken sender B: no marker, still a new event.
            ('9', Some(95_000)),
        ]
    );
}

#[test]
fn case_032_per_trunk_merge_reports_broken_sender_a_once() {
    let (digits, _) = case_032_digits(true, false);
    let keys: String = digits.iter().map(|d| d.0).collect();
    assert_eq!(keys, "5539");
}

#[test]
fn case_032_digit_during_the_prompt_barges_in_once() {
    let (digits, events) = case_032_digits(false, true);
    assert_eq!(digits.len(), 6, "detection runs while the prompt plays");
    let finished: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, MediaEvent::PromptFinished { .. }))
        .collect();
    assert_eq!(
        finished,
        [&MediaEvent::PromptFinished {
            leg: Leg::Caller,
            outcome: PromptOutcome::BargedIn { digit: Digit::D5 }
        }]
    );
}

#[test]
fn case_032_durations_are_in_timestamp_units() {
    // The first event's end copies carry 800 units = 100 ms at 8 kHz.
    let packets = hex_case("032-dtmf-end-retransmit-repeat.hex");
    let view = RtpView::parse(&packets[4].1).unwrap();
    let e = callseal_media::dtmf::TelephoneEvent::parse(view.payload()).unwrap();
    assert!(e.end);
    assert_eq!(Duration::from_micros(u64::from(e.duration) * 125), ms(100));
}
