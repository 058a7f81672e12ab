//! Properties over random inputs: the outgoing stream stays continuous whatever it switches
//! between (field case 026 in general form), generated key presses are detected exactly once
//! at any duration and ptime, telephone-event blocks round-trip, G.711 transcoding is decode
//! then encode, and the session never emits invalid RTP.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use callseal_media::dtmf::{EventDetector, EventGenerator, TelephoneEvent};
use callseal_media::outbound::OutboundStream;
use callseal_media::rtp::RtpView;
use callseal_media::{Codec, Digit, Leg, MediaSession, StreamInit};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// Wait this many ms, then send one locally generated frame of `samples`.
    Local { wait: u64, samples: u32 },
    /// Wait, then relay `count` in-order packets of upstream source `ssrc` (20 ms apart).
    Relay { wait: u64, ssrc: u32, count: u8 },
    /// The stream is interrupted (prompt stopped, hold).
    Interrupt,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0u64..200, prop::sample::select(vec![80u32, 160, 240]))
                .prop_map(|(wait, samples)| Step::Local { wait, samples }),
            (0u64..500, 0u32..4, 1u8..10).prop_map(|(wait, ssrc, count)| Step::Relay {
                wait,
                ssrc,
                count
            }),
            Just(Step::Interrupt),
        ],
        1..40,
    )
}

proptest! {
    #[test]
    fn outgoing_stream_is_continuous_across_any_switches(
        init in (any::<u32>(), any::<u16>(), any::<u32>()),
        plan in steps(),
        upstream_bases in prop::collection::vec((any::<u16>(), any::<u32>()), 4),
    ) {
        let t0 = Instant::now();
        let mut out = OutboundStream::new(StreamInit { ssrc: init.0, sequence: init.1, timestamp: init.2 }, 8000);
        let mut now = t0;
        let mut upstream: Vec<(u16, u32)> = upstream_bases;
        // (seq, ts, samples, marker, switched)
        let mut sent: Vec<(u16, u32, u32, bool, bool)> = Vec::new();
        let mut last_source: Option<Option<u32>> = None;
        let mut interrupted = false;
        for step in plan {
            match step {
                Step::Local { wait, samples } => {
                    now += Duration::from_millis(wait);
                    let h = out.local(now, samples);
                    let switched = interrupted || last_source != Some(None);
                    sent.push((h.sequence, h.timestamp, samples, h.marker, switched));
                    last_source = Some(None);
                }
                Step::Relay { wait, ssrc, count } => {
                    now += Duration::from_millis(wait);
                    for i in 0..count {
                        if i > 0 {
                            now += Duration::from_millis(20);
                        }
                        let (seq, ts) = &mut upstream[ssrc as usize];
                        let h = out.relay(now, ssrc, *seq, *ts, false, 160);
                        let switched = interrupted || last_source != Some(Some(ssrc));
                        sent.push((h.sequence, h.timestamp, 160, h.marker, switched));
                        *seq = seq.wrapping_add(1);
                        *ts = ts.wrapping_add(160);
                        last_source = Some(Some(ssrc));
                        interrupted = false;
                    }
                    continue;
                }
                Step::Interrupt => {
                    out.interrupt();
                    interrupted = true;
                    continue;
                }
            }
            interrupted = false;
        }
        let Some(first) = sent.first() else {
            return Ok(());
        };
        prop_assert_eq!(first.0, init.1);
        for w in sent.windows(2) {
            let (a, b) = (w[0], w[1]);
            // RFC 3550 §5.1: +1 per packet, timestamps forward by at least the previous
            // packet's duration; M=1 exactly where what is sent changed.
            prop_assert_eq!(b.0, a.0.wrapping_add(1));
            let advance = b.1.wrapping_sub(a.1) as i32;
            prop_assert!(advance >= a.2 as i32, "ts advanced {} < {}", advance, a.2);
            prop_assert_eq!(b.3, b.4);
        }
    }

    #[test]
    fn a_generated_key_press_is_detected_exactly_once(
        code in 0u8..16,
        duration_ms in 40u64..3000,
        ptime_ms in prop::sample::select(vec![10u64, 20, 30, 40, 60]),
        lose in prop::collection::vec(any::<bool>(), 0..200),
        ts in any::<u32>(),
    ) {
        let digit = Digit::from_event_code(code).unwrap();
        let mut g = EventGenerator::new(digit, Duration::from_millis(duration_ms), Duration::from_millis(ptime_ms), 10);
        let packets: Vec<_> = std::iter::from_fn(|| g.next_packet()).collect();
        prop_assert_eq!(packets.iter().filter(|p| p.event.end).count(), 3);
        prop_assert_eq!(u64::from(packets.last().unwrap().event.duration), duration_ms * 8);
        let t0 = Instant::now();
        let mut d = EventDetector::new(false);
        let mut found = Vec::new();
        // Any subset lost (including the marked start), as long as one packet arrives.
        let mut delivered = 0;
        for (i, p) in packets.iter().enumerate() {
            if lose.get(i).copied().unwrap_or(false) && i + 1 < packets.len() {
                continue;
            }
            delivered += 1;
            let now = t0 + Duration::from_millis(ptime_ms * i as u64);
            found.extend(d.on_packet(now, 42, p.marker, ts, &p.event.to_bytes()).unwrap());
        }
        prop_assert!(delivered > 0);
        prop_assert_eq!(found.len(), 1);
        prop_assert_eq!(found[0].digit, digit);
        prop_assert_eq!(found[0].rtp_timestamp, ts);
    }

    #[test]
    fn telephone_event_blocks_round_trip(bytes in any::<[u8; 4]>()) {
        let e = TelephoneEvent::parse(&bytes).unwrap();
        // The R bit (0x40) is reserved and written as zero (RFC 4733 §2.3).
        let mut expected = bytes;
        expected[1] &= !0x40;
        prop_assert_eq!(e.to_bytes(), expected);
    }

    #[test]
    fn transcoding_is_decode_then_encode(codes in prop::collection::vec(any::<u8>(), 0..400)) {
        for (from, to) in [(Codec::Pcmu, Codec::Pcma), (Codec::Pcma, Codec::Pcmu)] {
            let mut t = codes.clone();
            from.transcode_in_place(to, &mut t);
            let expected: Vec<u8> = codes.iter().map(|&c| to.encode(from.decode(c))).collect();
            prop_assert_eq!(t, expected);
        }
    }

    #[test]
    fn the_session_emits_only_valid_rtp_whatever_it_receives(
        datagrams in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..200)), 1..30),
        valid in prop::collection::vec((0u8..3, any::<u16>(), any::<u32>(), 0u32..3), 0..30),
    ) {
        let t0 = Instant::now();
        let mut s = MediaSession::new(session_config(
            StreamInit { ssrc: 1, sequence: 65_500, timestamp: 0 },
            StreamInit { ssrc: 2, sequence: 0, timestamp: u32::MAX - 1000 },
        ));
        let te = callseal_media::PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
        s.configure_leg(t0, Leg::Caller, callseal_media::LegConfig::new(Some(addr(CALLER)), te)).unwrap();
        s.configure_leg(t0, Leg::Pbx, callseal_media::LegConfig::new(Some(addr(PBX)), te)).unwrap();
        s.set_bridge(true);
        let mut now = t0;
        let mut packets: Vec<(bool, Vec<u8>)> = datagrams;
        for (kind, seq, ts, ssrc) in valid {
            let (pt, payload): (u8, Vec<u8>) = match kind {
                0 => (0, vec![0x7f; 160]),
                1 => (101, vec![5, 0x8a, 0, 160]),
                _ => (0, vec![]),
            };
            packets.push((seq % 2 == 0, rtp(seq % 3 == 0, pt, seq, ts, ssrc, &payload)));
        }
        for (from_caller, p) in &packets {
            now += Duration::from_millis(7);
            let (leg, from) = if *from_caller { (Leg::Caller, addr(CALLER)) } else { (Leg::Pbx, addr(PBX)) };
            s.handle_packet(now, leg, from, p);
            s.handle_timeout(now);
        }
        for t in drain_transmits(&mut s) {
            let v = RtpView::parse(&t.payload);
            prop_assert!(v.is_ok());
            let v = v.unwrap();
            prop_assert_eq!(v.ssrc(), if t.leg == Leg::Caller { 1 } else { 2 });
            prop_assert!(v.payload_type() == 0 || v.payload_type() == 101);
        }
    }
}
