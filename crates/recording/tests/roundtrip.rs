//! Property tests: whatever frames go in come out, in order and unchanged; the sealed bytes never
//! contain the plaintext; the file size is exactly header + segments.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use callseal_recording::keys::{DataKey, EpochId, RecordingId};
use callseal_recording::{Frame, Leg, Reader, WriteError, Writer, WriterConfig};
use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Debug)]
struct Step {
    frame: Frame,
    flush_before: bool,
    tick_before: Option<u64>,
}

/// (consultant?, timestamp or "follow the stride" below 1000, arrival delta, payload type,
/// payload, flush before?, tick before at arrival + n ms)
type RawStep = (bool, u32, u64, u8, Vec<u8>, bool, Option<u64>);

fn arb_step() -> impl Strategy<Value = RawStep> {
    (
        any::<bool>(),
        prop_oneof![any::<u32>(), 0u32..1000],
        prop_oneof![0u64..40, 0u64..3000, Just(0)],
        prop_oneof![Just(0u8), Just(8), Just(13), 0u8..=127],
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), 160..=160),
            proptest::collection::vec(any::<u8>(), 4000..=4096),
        ],
        proptest::bool::weighted(0.05),
        proptest::option::weighted(0.05, 0u64..5000),
    )
}

/// Builds frames whose arrival mostly advances (by `delta`) and whose timestamps either follow a
/// stride or jump, from the raw tuples.
fn build(raw: Vec<RawStep>) -> Vec<Step> {
    let mut arrival = 0u64;
    let mut ts = [0u32; 2];
    raw.into_iter()
        .map(
            |(consultant, ts_raw, delta, pt, payload, flush_before, tick)| {
                arrival += delta;
                let leg = if consultant {
                    Leg::Consultant
                } else {
                    Leg::Caller
                };
                let i = usize::from(consultant);
                ts[i] = if ts_raw < 1000 {
                    ts[i].wrapping_add(160)
                } else {
                    ts_raw
                };
                Step {
                    frame: common::frame(leg, ts[i], arrival, pt, &payload),
                    flush_before,
                    tick_before: tick.map(|t| arrival + t),
                }
            },
        )
        .collect()
}

fn seal(steps: &[Step], segment_ms: u64, key: &DataKey) -> (Vec<u8>, u64) {
    let config = WriterConfig {
        segment_duration: Duration::from_millis(segment_ms),
        ..WriterConfig::default()
    };
    let mut w = Writer::new(
        Vec::new(),
        key,
        RecordingId::from_bytes([0x42; 16]),
        EpochId(7),
        config,
    )
    .unwrap();
    for s in steps {
        if s.flush_before {
            w.flush().unwrap();
        }
        if let Some(t) = s.tick_before {
            w.tick(Duration::from_millis(t)).unwrap();
        }
        let f = &s.frame;
        w.push_frame(
            f.leg,
            f.rtp_timestamp,
            f.arrival,
            f.payload_type,
            &f.payload,
        )
        .unwrap();
    }
    let segments = w.stats().segments + 1;
    (w.finish().unwrap(), segments)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip(raw in proptest::collection::vec(arb_step(), 0..300), segment_ms in 20u64..2000) {
        let steps = build(raw);
        let key = common::test_key();
        let (file, segments) = seal(&steps, segment_ms, &key);
        let mut reader = Reader::new(&file[..], &key).unwrap();
        prop_assert_eq!(reader.header().segment_duration(), Duration::from_millis(segment_ms));
        let (frames, err) = common::drain(&mut reader);
        prop_assert_eq!(err, None);
        prop_assert_eq!(reader.segments_verified(), segments);
        prop_assert_eq!(reader.bytes_read(), file.len() as u64);
        let expected: Vec<Frame> = steps.into_iter().map(|s| s.frame).collect();
        prop_assert_eq!(frames, expected);
    }

    #[test]
    fn sealed_bytes_never_contain_the_plaintext(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 12..64), 1..60)
    ) {
        let key = common::test_key();
        let steps: Vec<Step> = payloads.iter().enumerate().map(|(i, p)| Step {
            frame: common::frame(Leg::Caller, 160 * i as u32, 20 * i as u64, 0, p),
            flush_before: i % 7 == 3,
            tick_before: None,
        }).collect();
        let (file, _) = seal(&steps, 100, &key);
        for p in &payloads {
            // Any 12-byte window of the plaintext appearing by chance has probability ~2^-96.
            prop_assert!(!file.windows(12).any(|w| w == &p[..12]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any damage to a sealed file: the reader returns a prefix of the frames written (never an
    /// altered or foreign frame), then an error; only the intact file reads to a clean end.
    #[test]
    fn damaged_files_return_a_prefix_then_an_error(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..3),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let key = common::test_key();
        let steps: Vec<Step> = (0..40u32).map(|i| Step {
            frame: common::frame(
                if i % 2 == 0 { Leg::Caller } else { Leg::Consultant },
                160 * (i / 2),
                20 * u64::from(i / 2),
                if i % 5 == 0 { 8 } else { 0 },
                &[(i * 3) as u8; 40],
            ),
            flush_before: false,
            tick_before: None,
        }).collect();
        let (good, _) = seal(&steps, 100, &key);
        let mut file = good.clone();
        for (at, mask) in &flips {
            let i = at.index(file.len());
            file[i] ^= mask;
        }
        if let Some(c) = cut {
            file.truncate(c.index(file.len()));
        }
        file.extend_from_slice(&extra);
        let (frames, err) = common::read_all(&file, &key);
        let written: Vec<Frame> = steps.into_iter().map(|s| s.frame).collect();
        prop_assert!(frames.len() <= written.len());
        prop_assert_eq!(&frames[..], &written[..frames.len()]);
        prop_assert_eq!(err.is_none(), file == good);
    }
}

#[test]
fn writer_and_reader_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Writer<std::io::BufWriter<std::fs::File>>>();
    send::<Reader<std::fs::File>>();
}

#[test]
fn one_second_segments_of_g711_hold_overhead_under_two_percent() {
    // 60 s of stereo G.711 at 20 ms with ±3 ms jitter: the size target of the format.
    let key = common::test_key();
    let jitter = [0u64, 3, 1, 2, 0, 3];
    let steps: Vec<Step> = (0..3000u32)
        .flat_map(|i| {
            let base = 20 * u64::from(i) + 5;
            let j = jitter[i as usize % jitter.len()];
            [
                Step {
                    frame: common::frame(Leg::Caller, 160 * i, base + j, 0, &[0x7e; 160]),
                    flush_before: false,
                    tick_before: None,
                },
                Step {
                    frame: common::frame(
                        Leg::Consultant,
                        7 + 160 * i,
                        base + 3 - j,
                        8,
                        &[0x55; 160],
                    ),
                    flush_before: false,
                    tick_before: None,
                },
            ]
        })
        .collect();
    let (file, segments) = seal(&steps, 1000, &key);
    let payload = 6000 * 160;
    let overhead = (file.len() - payload) as f64 / payload as f64;
    assert!((60..=62).contains(&segments), "{segments} segments");
    assert!(overhead < 0.02, "overhead {:.3} %", overhead * 100.0);
}

#[test]
fn writer_refuses_bad_input_without_poisoning() {
    let key = common::test_key();
    let mut w = Writer::new(
        Vec::new(),
        &key,
        RecordingId::from_bytes([1; 16]),
        EpochId(1),
        WriterConfig::default(),
    )
    .unwrap();
    assert!(matches!(
        w.push_frame(Leg::Caller, 0, Duration::ZERO, 128, &[]),
        Err(WriteError::InvalidPayloadType { pt: 128 })
    ));
    assert!(matches!(
        w.push_frame(Leg::Caller, 0, Duration::ZERO, 0, &[0; 4097]),
        Err(WriteError::PayloadTooLarge {
            len: 4097,
            max: 4096
        })
    ));
    w.push_frame(Leg::Caller, 0, Duration::ZERO, 0, &[1])
        .unwrap();
    w.close().unwrap();
    assert!(matches!(
        w.push_frame(Leg::Caller, 0, Duration::ZERO, 0, &[1]),
        Err(WriteError::Finished)
    ));
    let (frames, err) = common::read_all(w.get_ref(), &key);
    assert_eq!((frames.len(), err), (1, None));
    for bad in [
        Duration::from_millis(19),
        Duration::from_millis(10_001),
        Duration::from_micros(1500),
    ] {
        let config = WriterConfig {
            segment_duration: bad,
            ..WriterConfig::default()
        };
        assert!(matches!(
            Writer::new(
                Vec::new(),
                &key,
                RecordingId::from_bytes([1; 16]),
                EpochId(1),
                config
            ),
            Err(WriteError::InvalidConfig { .. })
        ));
    }
}
