//! The recording tap: nothing before it starts, every frame of both legs while it runs
//! (bridged or not), nothing the moment it stops, and a failing sink stops it with an event.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Instant;

use callseal_media::{Codec, FrameKind, Leg, LegConfig, MediaEvent, PayloadMap, TapSinkError};
use common::*;

fn caller_audio(seq: u16) -> Vec<u8> {
    rtp(
        false,
        8,
        seq,
        1000 + 160 * u32::from(seq),
        0xC,
        &[seq as u8; 160],
    )
}

fn pbx_audio(seq: u16) -> Vec<u8> {
    rtp(
        false,
        8,
        seq,
        9000 + 160 * u32::from(seq),
        0xB,
        &[0x80 | seq as u8; 160],
    )
}

#[test]
fn frames_of_both_legs_are_tapped_only_between_start_and_stop() {
    let t0 = Instant::now();
    let mut s = callseal_media::MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let te = PayloadMap::g711(Codec::Pcma).with_telephone_event(101);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), te))
        .unwrap();
    s.configure_leg(
        t0,
        Leg::Pbx,
        LegConfig::new(Some(addr(PBX)), PayloadMap::g711(Codec::Pcma)),
    )
    .unwrap();
    // Before consent: nothing reaches a sink (there is none) while the legs talk.
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &caller_audio(1));
    let sink = MemorySink::default();
    let started = t0 + ms(20);
    s.start_recording(started, Box::new(sink.clone()));
    assert!(s.is_recording());
    s.handle_packet(t0 + ms(40), Leg::Caller, addr(CALLER), &caller_audio(2));
    s.handle_packet(t0 + ms(45), Leg::Pbx, addr(PBX), &pbx_audio(1));
    s.handle_packet(
        t0 + ms(50),
        Leg::Caller,
        addr(CALLER),
        &rtp(true, 101, 3, 1480, 0xC, &[9, 10, 0, 160]),
    );
    // Malformed and foreign packets never reach the sink.
    s.handle_packet(t0 + ms(55), Leg::Caller, addr(CALLER), &[0x80, 8, 0]);
    s.handle_packet(t0 + ms(56), Leg::Pbx, addr("127.0.9.9:1"), &pbx_audio(2));
    let back = s.stop_recording();
    assert!(back.is_some());
    assert!(!s.is_recording());
    s.handle_packet(t0 + ms(60), Leg::Caller, addr(CALLER), &caller_audio(4));
    s.handle_packet(t0 + ms(65), Leg::Pbx, addr(PBX), &pbx_audio(3));

    let rec = sink.recorded();
    let summary: Vec<_> = rec
        .iter()
        .map(|f| {
            (
                f.leg,
                f.sequence,
                f.rtp_timestamp,
                f.since_start.as_millis(),
                f.payload_type,
                f.kind,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Leg::Caller, 2, 1320, 20, 8, FrameKind::Audio(Codec::Pcma)),
            (Leg::Pbx, 1, 9160, 25, 8, FrameKind::Audio(Codec::Pcma)),
            (Leg::Caller, 3, 1480, 30, 101, FrameKind::TelephoneEvent),
        ]
    );
    assert_eq!(rec[0].payload, vec![2; 160]);
    assert_eq!(rec[1].payload, vec![0x81; 160]);
    assert_eq!(rec[2].payload, vec![9, 10, 0, 160]);
    assert_eq!(rec[0].ssrc, 0xC);
}

#[test]
fn a_failing_sink_stops_the_tap_and_is_handed_back() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcma);
    s.set_bridge(true);
    let sink = MemorySink {
        fail_after: Some(2),
        ..MemorySink::default()
    };
    s.start_recording(t0, Box::new(sink.clone()));
    for seq in 1..6 {
        s.handle_packet(
            t0 + ms(20 * u64::from(seq)),
            Leg::Caller,
            addr(CALLER),
            &caller_audio(seq),
        );
    }
    assert_eq!(sink.recorded().len(), 2);
    let failures: Vec<_> = drain_events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, MediaEvent::RecordingFailed { .. }))
        .collect();
    assert_eq!(
        failures,
        [MediaEvent::RecordingFailed {
            error: TapSinkError {
                reason: "disk full".into()
            }
        }]
    );
    assert!(!s.is_recording());
    // The relay was not affected by the recorder's failure.
    assert_eq!(drain_transmits(&mut s).len(), 5);
    assert!(s.stop_recording().is_some());
    assert!(s.stop_recording().is_none());
}
