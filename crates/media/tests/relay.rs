//! Relay legs: strict source latching with the NAT window, RTCP admission, payload-type
//! rewriting and transcoding per direction, comfort noise only where negotiated, hold, media
//! timeout and statistics.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Instant;

use callseal_media::g711::{alaw_encode, ulaw_decode};
use callseal_media::{
    Codec, FrameKind, Leg, LegConfig, MediaDirection, MediaEvent, MediaSession, PayloadMap,
    SessionConfig,
};
use common::*;

const NAT: &str = "127.0.2.99:61000";
const ATTACKER: &str = "127.0.9.9:5004";

fn audio(seq: u16) -> Vec<u8> {
    rtp(false, 0, seq, u32::from(seq) * 160, 0xABCD, &[0x55; 160])
}

#[test]
fn unconfigured_leg_admits_nothing() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &audio(1));
    assert_eq!(s.stats(Leg::Caller).dropped_latching, 1);
    assert_eq!(s.stats(Leg::Caller).packets_received, 0);
    assert!(drain_events(&mut s).is_empty());
}

#[test]
fn first_valid_packet_in_the_window_latches_then_the_source_is_strict() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.set_bridge(true);
    // Garbage from anywhere never latches.
    s.handle_packet(t0, Leg::Caller, addr(ATTACKER), &[0x80, 0, 1]);
    assert_eq!(s.latched_peer(Leg::Caller), None);
    // The caller behind NAT: not the signalled address, but inside the window.
    s.handle_packet(t0 + ms(10), Leg::Caller, addr(NAT), &audio(1));
    assert_eq!(s.latched_peer(Leg::Caller), Some(addr(NAT)));
    assert!(drain_events(&mut s).contains(&MediaEvent::Latched {
        leg: Leg::Caller,
        address: addr(NAT)
    }));
    // Now everything else is dropped, including the signalled address.
    s.handle_packet(t0 + ms(20), Leg::Caller, addr(ATTACKER), &audio(2));
    s.handle_packet(t0 + ms(30), Leg::Caller, addr(CALLER), &audio(3));
    s.handle_packet(t0 + ms(40), Leg::Caller, addr(NAT), &audio(4));
    let stats = s.stats(Leg::Caller);
    assert_eq!(stats.dropped_latching, 2);
    assert_eq!(stats.packets_received, 2);
    assert_eq!(stats.malformed, 1);
    // Audio towards the caller goes to the latched address.
    s.handle_packet(t0 + ms(50), Leg::Pbx, addr(PBX), &audio(9));
    let to_caller: Vec<_> = drain_transmits(&mut s)
        .into_iter()
        .filter(|t| t.leg == Leg::Caller)
        .collect();
    assert_eq!(to_caller.len(), 1);
    assert_eq!(to_caller[0].destination, addr(NAT));
}

#[test]
fn after_the_window_only_the_signalled_address_may_latch() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    let late = t0 + ms(2500);
    s.handle_packet(late, Leg::Caller, addr(NAT), &audio(1));
    assert_eq!(s.latched_peer(Leg::Caller), None);
    s.handle_packet(late, Leg::Caller, addr(CALLER), &audio(2));
    assert_eq!(s.latched_peer(Leg::Caller), Some(addr(CALLER)));
    assert_eq!(s.stats(Leg::Caller).dropped_latching, 1);
}

#[test]
fn a_new_remote_reopens_the_window_and_the_same_remote_keeps_the_latch() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.handle_packet(t0, Leg::Caller, addr(NAT), &audio(1));
    let pcmu = PayloadMap::g711(Codec::Pcmu);
    // Re-INVITE with the same address (e.g. a session refresh): still latched.
    s.configure_leg(
        t0 + ms(5000),
        Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), pcmu),
    )
    .unwrap();
    assert_eq!(s.latched_peer(Leg::Caller), Some(addr(NAT)));
    s.handle_packet(t0 + ms(5010), Leg::Caller, addr(ATTACKER), &audio(2));
    assert_eq!(s.stats(Leg::Caller).dropped_latching, 1);
    // Re-INVITE to a new address: the window opens again and the new source latches.
    let moved = addr("127.0.2.81:42002");
    s.configure_leg(
        t0 + ms(6000),
        Leg::Caller,
        LegConfig::new(Some(moved), pcmu),
    )
    .unwrap();
    s.handle_packet(t0 + ms(6010), Leg::Caller, moved, &audio(3));
    assert_eq!(s.latched_peer(Leg::Caller), Some(moved));
}

#[test]
fn rtcp_is_admitted_from_the_peer_ip_on_any_port_and_terminated() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.set_bridge(true);
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &audio(1));
    drain_transmits(&mut s);
    // Receiver report, then BYE, from the RTCP port (RTP port + 1).
    let rr_bye = hex::decode("80c900010000abcd81cb00010000abcd").unwrap();
    s.handle_packet(t0 + ms(5), Leg::Caller, addr("127.0.2.80:42001"), &rr_bye);
    s.handle_packet(t0 + ms(6), Leg::Caller, addr(ATTACKER), &rr_bye);
    // Truncated RTCP from the peer: malformed.
    s.handle_packet(t0 + ms(7), Leg::Caller, addr(CALLER), &rr_bye[..6]);
    let stats = s.stats(Leg::Caller);
    assert_eq!(stats.rtcp_received, 1);
    assert_eq!(stats.dropped_latching, 1);
    assert_eq!(stats.malformed, 1);
    assert!(drain_transmits(&mut s).is_empty(), "RTCP is not forwarded");
}

#[test]
fn pcmu_to_pcma_is_transcoded_with_the_rewritten_pt() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let pcmu = PayloadMap::g711(Codec::Pcmu);
    let pcma = PayloadMap::g711(Codec::Pcma);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), pcmu))
        .unwrap();
    s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), pcma))
        .unwrap();
    s.set_bridge(true);
    let payload: Vec<u8> = (0..=255).collect();
    s.handle_packet(
        t0,
        Leg::Caller,
        addr(CALLER),
        &rtp(true, 0, 1, 0, 7, &payload),
    );
    let sent = drain_transmits(&mut s);
    assert_eq!(sent.len(), 1);
    let (_, pt, _, _, ssrc, out) = fields(&sent[0].payload);
    assert_eq!((pt, ssrc), (8, PBX_STREAM.ssrc));
    let expected: Vec<u8> = payload
        .iter()
        .map(|&c| alaw_encode(ulaw_decode(c)))
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn comfort_noise_is_forwarded_only_where_negotiated() {
    let cn = [0x40u8]; // RFC 3389 noise level only
    for (pbx_cn, expected) in [(None, 0usize), (Some(13u8), 1)] {
        let t0 = Instant::now();
        let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
        let caller = PayloadMap::g711(Codec::Pcma).with_comfort_noise(13);
        let mut pbx = PayloadMap::g711(Codec::Pcma);
        pbx.comfort_noise = pbx_cn;
        s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), caller))
            .unwrap();
        s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), pbx))
            .unwrap();
        s.set_bridge(true);
        let sink = MemorySink::default();
        s.start_recording(t0, Box::new(sink.clone()));
        s.handle_packet(t0, Leg::Caller, addr(CALLER), &rtp(true, 13, 1, 0, 7, &cn));
        let sent = drain_transmits(&mut s);
        assert_eq!(sent.len(), expected, "PBX CN {pbx_cn:?}");
        if let Some(t) = sent.first() {
            assert_eq!(fields(&t.payload).1, 13);
        }
        // The recorder gets CN either way, marked as such.
        assert_eq!(sink.recorded()[0].kind, FrameKind::ComfortNoise);
        // CN from the PBX, which did not negotiate it, is not accepted at all.
        s.handle_packet(t0, Leg::Pbx, addr(PBX), &rtp(true, 13, 1, 0, 8, &cn));
        let dropped = s.stats(Leg::Pbx).dropped_payload_type;
        assert_eq!(dropped, if pbx_cn.is_some() { 0 } else { 1 });
    }
}

#[test]
fn hold_sends_nothing_to_the_held_leg_and_resume_rebases_with_the_marker() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.set_bridge(true);
    s.handle_packet(t0, Leg::Pbx, addr(PBX), &audio(1));
    s.handle_packet(t0 + ms(20), Leg::Pbx, addr(PBX), &audio(2));
    assert_eq!(drain_transmits(&mut s).len(), 2);
    // The caller put the call on hold (a=sendonly): the gateway answers recvonly.
    s.set_direction(t0 + ms(50), Leg::Caller, MediaDirection::RecvOnly)
        .unwrap();
    for i in 3..8 {
        s.handle_packet(t0 + ms(20 * u64::from(i)), Leg::Pbx, addr(PBX), &audio(i));
    }
    // Music on hold from the caller still reaches the PBX.
    s.handle_packet(t0 + ms(150), Leg::Caller, addr(CALLER), &audio(100));
    let during: Vec<_> = drain_transmits(&mut s);
    assert_eq!(during.len(), 1);
    assert_eq!(during[0].leg, Leg::Pbx);
    s.set_direction(t0 + ms(155), Leg::Caller, MediaDirection::SendRecv)
        .unwrap();
    s.handle_packet(t0 + ms(160), Leg::Pbx, addr(PBX), &audio(8));
    let after: Vec<_> = drain_transmits(&mut s)
        .iter()
        .map(|t| fields(&t.payload))
        .collect();
    assert_eq!(after.len(), 1);
    let (marker, _, seq, ts, _, _) = after[0];
    assert!(marker);
    assert_eq!(
        seq,
        CALLER_STREAM.sequence + 2,
        "no sequence numbers spent on hold"
    );
    // 140 ms of wallclock since the last packet sent (at 20 ms).
    assert_eq!(ts, CALLER_STREAM.timestamp + 160 + 1120);
    // Inactive: what the caller sends is counted and dropped.
    s.set_direction(t0 + ms(190), Leg::Caller, MediaDirection::Inactive)
        .unwrap();
    s.handle_packet(t0 + ms(200), Leg::Caller, addr(CALLER), &audio(101));
    assert_eq!(s.stats(Leg::Caller).dropped_direction, 1);
    assert!(drain_transmits(&mut s).is_empty());
}

#[test]
fn c_zero_address_means_nothing_is_sent() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.set_bridge(true);
    s.configure_leg(
        t0,
        Leg::Caller,
        LegConfig::new(None, PayloadMap::g711(Codec::Pcmu)),
    )
    .unwrap();
    s.handle_packet(t0, Leg::Pbx, addr(PBX), &audio(1));
    assert!(drain_transmits(&mut s).is_empty());
}

#[test]
fn unbridged_legs_are_isolated() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.handle_packet(t0, Leg::Pbx, addr(PBX), &audio(1));
    assert!(drain_transmits(&mut s).is_empty());
    s.set_bridge(true);
    s.handle_packet(t0 + ms(20), Leg::Pbx, addr(PBX), &audio(2));
    assert_eq!(drain_transmits(&mut s).len(), 1);
}

#[test]
fn media_timeout_fires_once_on_simulated_time_and_rearms_on_traffic() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig {
        media_timeout: Some(ms(5000)),
        ..session_config(CALLER_STREAM, PBX_STREAM)
    });
    s.configure_leg(
        t0,
        Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcmu)),
    )
    .unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + ms(5000)));
    s.handle_packet(t0 + ms(1000), Leg::Caller, addr(CALLER), &audio(1));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(6000)));
    s.handle_timeout(t0 + ms(5999));
    assert!(
        !drain_events(&mut s)
            .iter()
            .any(|e| matches!(e, MediaEvent::MediaTimeout { .. }))
    );
    s.handle_timeout(t0 + ms(6000));
    let timeouts: Vec<_> = drain_events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, MediaEvent::MediaTimeout { .. }))
        .collect();
    assert_eq!(
        timeouts,
        [MediaEvent::MediaTimeout {
            leg: Leg::Caller,
            silent_for: ms(5000)
        }]
    );
    assert_eq!(s.poll_timeout(), None, "reported once");
    s.handle_packet(t0 + ms(9000), Leg::Caller, addr(CALLER), &audio(2));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(14_000)));
}

#[test]
fn statistics_count_loss_late_bytes_and_jitter() {
    let t0 = Instant::now();
    let mut s = g711_session(t0, Codec::Pcmu);
    s.set_bridge(true);
    // seq 1, 2, 4, 5, then 3 late; arrivals on time except seq 5, 10 ms late.
    for (seq, at) in [(1u16, 0u64), (2, 20), (4, 60), (5, 90), (3, 95)] {
        s.handle_packet(t0 + ms(at), Leg::Caller, addr(CALLER), &audio(seq));
    }
    let st = s.stats(Leg::Caller);
    assert_eq!(st.packets_received, 5);
    assert_eq!(st.bytes_received, 5 * 172);
    assert_eq!(st.lost, 0, "the late packet filled the gap");
    assert_eq!(st.late, 1);
    assert!(st.jitter_units > 0);
    let pbx = s.stats(Leg::Pbx);
    assert_eq!(pbx.packets_sent, 5);
    assert_eq!(pbx.bytes_sent, 5 * 172);
    drain_transmits(&mut s);
    // Packet loss without reordering.
    let t1 = t0 + ms(1000);
    let mut s = g711_session(t1, Codec::Pcmu);
    for seq in [10u16, 11, 14, 15] {
        s.handle_packet(t1, Leg::Caller, addr(CALLER), &audio(seq));
    }
    assert_eq!(s.stats(Leg::Caller).lost, 2);
}

#[test]
fn telephone_events_on_their_own_ssrc_are_detected_without_taking_over_the_leg() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    let te = PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), te))
        .unwrap();
    s.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(addr(PBX)), te))
        .unwrap();
    s.set_bridge(true);
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &audio(1));
    s.handle_packet(
        t0 + ms(10),
        Leg::Caller,
        addr(CALLER),
        &rtp(true, 101, 9, 77, 0xE0E0, &[4, 10, 0, 160]),
    );
    s.handle_packet(t0 + ms(20), Leg::Caller, addr(CALLER), &audio(2));
    let events = drain_events(&mut s);
    assert!(events.iter().any(|e| matches!(
        e,
        MediaEvent::DtmfDigit {
            digit: callseal_media::Digit::D4,
            ..
        }
    )));
    let changes = events
        .iter()
        .filter(|e| matches!(e, MediaEvent::SsrcChanged { .. }))
        .count();
    assert_eq!(changes, 1, "only the first audio source");
    let sent: Vec<_> = drain_transmits(&mut s)
        .iter()
        .map(|t| fields(&t.payload))
        .collect();
    assert_eq!(
        sent.len(),
        2,
        "both audio packets relayed, the side-stream event not"
    );
    assert_eq!(sent[1].2, sent[0].2 + 1);
    let st = s.stats(Leg::Caller);
    assert_eq!((st.ssrc_changes, st.dropped_stale_ssrc, st.lost), (0, 0, 0));
}

#[test]
fn a_session_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<MediaSession>();
    assert_send::<callseal_media::Prompt>();
    let t0 = Instant::now();
    let s = g711_session(t0, Codec::Pcmu);
    let stats = std::thread::spawn(move || s.stats(Leg::Caller))
        .join()
        .unwrap();
    assert_eq!(stats.packets_received, 0);
}

#[test]
fn no_media_timeout_while_the_peer_is_not_expected_to_send() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig {
        media_timeout: Some(ms(5000)),
        ..session_config(CALLER_STREAM, PBX_STREAM)
    });
    let pcmu = PayloadMap::g711(Codec::Pcmu);
    s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), pcmu))
        .unwrap();
    // The caller holds with a=inactive after 1 s, for a minute.
    s.set_direction(t0 + ms(1000), Leg::Caller, MediaDirection::Inactive)
        .unwrap();
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + ms(60_000));
    assert!(drain_events(&mut s).is_empty());
    // Resume: the silence clock starts again at the resume.
    s.set_direction(t0 + ms(61_000), Leg::Caller, MediaDirection::SendRecv)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + ms(66_000)));
    // The same for a legacy c=0.0.0.0 hold, through a re-INVITE.
    s.configure_leg(t0 + ms(62_000), Leg::Caller, LegConfig::new(None, pcmu))
        .unwrap();
    assert_eq!(s.poll_timeout(), None);
    s.configure_leg(
        t0 + ms(90_000),
        Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), pcmu),
    )
    .unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + ms(95_000)));
    assert!(
        s.set_direction(t0, Leg::Pbx, MediaDirection::Inactive)
            .is_err()
    );
}
