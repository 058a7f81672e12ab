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

/// A sink that wants its timed check one second after the first frame it holds, as the
/// recording writer does, and logs every check.
#[derive(Clone, Default)]
struct TimedSink {
    pending_since: std::sync::Arc<std::sync::Mutex<Option<std::time::Duration>>>,
    ticks: std::sync::Arc<std::sync::Mutex<Vec<std::time::Duration>>>,
}

impl callseal_media::RecordingSink for TimedSink {
    fn push_frame(&mut self, f: &callseal_media::TapFrame<'_>) -> Result<(), TapSinkError> {
        self.pending_since
            .lock()
            .unwrap()
            .get_or_insert(f.since_start);
        Ok(())
    }
    fn tick(&mut self, since_start: std::time::Duration) -> Result<(), TapSinkError> {
        self.ticks.lock().unwrap().push(since_start);
        *self.pending_since.lock().unwrap() = None;
        Ok(())
    }
    fn next_tick(&self) -> Option<std::time::Duration> {
        self.pending_since
            .lock()
            .unwrap()
            .map(|s| s + std::time::Duration::from_secs(1))
    }
}

#[test]
fn the_sinks_timed_check_is_part_of_the_sessions_deadline_and_runs_only_when_due() {
    let t0 = Instant::now();
    let mut s = callseal_media::MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    s.configure_leg(
        t0,
        Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcma)),
    )
    .unwrap();
    let sink = TimedSink::default();
    s.start_recording(t0, Box::new(sink.clone()));
    // Nothing pending: no deadline for the recording (and none else without a media timeout).
    assert_eq!(s.poll_timeout(), None);
    s.handle_packet(t0 + ms(30), Leg::Caller, addr(CALLER), &caller_audio(1));
    s.handle_packet(t0 + ms(50), Leg::Caller, addr(CALLER), &caller_audio(2));
    // Due one second after the first pending frame, whatever came after it.
    let due = t0 + ms(1030);
    assert_eq!(s.poll_timeout(), Some(due));
    s.handle_timeout(due - ms(1));
    assert!(
        sink.ticks.lock().unwrap().is_empty(),
        "not before it is due"
    );
    s.handle_timeout(due);
    assert_eq!(*sink.ticks.lock().unwrap(), [ms(1030)]);
    assert_eq!(s.poll_timeout(), None, "nothing pending after the check");
    // A stopped tap is never ticked.
    s.handle_packet(t0 + ms(1100), Leg::Caller, addr(CALLER), &caller_audio(3));
    assert!(s.poll_timeout().is_some());
    assert!(s.stop_recording().is_some());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + ms(5000));
    assert_eq!(sink.ticks.lock().unwrap().len(), 1);
}

/// A sink that wants a check at once and never takes it.
struct StuckSink;

impl callseal_media::RecordingSink for StuckSink {
    fn push_frame(&mut self, _: &callseal_media::TapFrame<'_>) -> Result<(), TapSinkError> {
        Ok(())
    }
    fn next_tick(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::ZERO)
    }
}

#[test]
fn a_sink_that_keeps_asking_for_a_check_is_stopped_instead_of_waking_its_shell_for_ever() {
    let t0 = Instant::now();
    let mut s = callseal_media::MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    s.start_recording(t0, Box::new(StuckSink));
    assert_eq!(s.poll_timeout(), Some(t0));
    s.handle_timeout(t0 + ms(1));
    assert!(!s.is_recording());
    assert!(matches!(
        s.poll_event(),
        Some(MediaEvent::RecordingFailed { error }) if error.reason.contains("did not take it")
    ));
    assert_eq!(s.poll_timeout(), None, "no deadline left to spin on");
}
