//! Export to WAV: sample-exact output for a known input, leg layouts, gaps, comfort noise, and
//! the field cases that concern the recorder (fixtures/cases 018, 025, 026, 029).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use callseal_recording::export::{Channels, ExportError, export_wav};
use callseal_recording::g711::{ALAW_TO_LINEAR, ULAW_TO_LINEAR};
use callseal_recording::keys::{EpochId, RecordingId};
use callseal_recording::{
    Encoding, Frame, Leg, PayloadTypes, ReadError, Reader, Writer, WriterConfig,
};
use std::io::Cursor;
use std::path::PathBuf;

fn seal(frames: &[Frame], payload_types: PayloadTypes) -> Vec<u8> {
    let config = WriterConfig {
        payload_types,
        ..WriterConfig::default()
    };
    let mut w = Writer::new(
        Vec::new(),
        &common::test_key(),
        RecordingId::from_bytes([0x10; 16]),
        EpochId(9),
        config,
    )
    .unwrap();
    for f in frames {
        w.push_frame(
            f.leg,
            f.rtp_timestamp,
            f.arrival,
            f.payload_type,
            &f.payload,
        )
        .unwrap();
    }
    w.finish().unwrap()
}

/// Exports and reads the WAV back: (spec, interleaved samples, report or error).
fn export(
    file: &[u8],
    channels: Channels,
) -> (
    hound::WavSpec,
    Vec<i16>,
    Result<callseal_recording::export::ExportReport, ExportError>,
) {
    let reader = Reader::new(file, &common::test_key()).unwrap();
    let mut out = Cursor::new(Vec::new());
    let mut calls = 0;
    let result = export_wav(reader, &mut out, channels, |_| calls += 1);
    assert!(calls >= 1, "progress never reported");
    let wav = hound::WavReader::new(Cursor::new(out.into_inner())).unwrap();
    let spec = wav.spec();
    let samples = wav.into_samples::<i16>().map(|s| s.unwrap()).collect();
    (spec, samples, result)
}

fn mono(file: &[u8], channels: Channels) -> Vec<i16> {
    export(file, channels).1
}

#[test]
fn known_input_exports_sample_exact() {
    let frames = [
        // Caller, µ-law, 4 samples at t = 0.
        common::frame(Leg::Caller, 1000, 0, 0, &[0x00, 0x80, 0xff, 0x7f]),
        // Consultant, A-law, 2 samples, its own timestamp base, arrives 1 ms later (8 samples).
        common::frame(Leg::Consultant, 77, 1, 8, &[0xd5, 0xaa]),
        // Caller again 8 samples after its first frame: 4 samples of gap in between.
        common::frame(Leg::Caller, 1008, 1, 0, &[0x8f, 0x0f]),
        // Consultant comfort noise (ts 79, nothing written), then A-law at ts 80: sample 11.
        common::frame(Leg::Consultant, 79, 1, 13, &[0x40]),
        common::frame(Leg::Consultant, 80, 1, 8, &[0x2a]),
    ];
    let file = seal(&frames, PayloadTypes::g711());
    let (spec, samples, result) = export(&file, Channels::Stereo);
    assert_eq!(
        spec,
        hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int
        }
    );
    let u = |c: u8| ULAW_TO_LINEAR[usize::from(c)];
    let a = |c: u8| ALAW_TO_LINEAR[usize::from(c)];
    let mut left = [0i16; 12];
    let mut right = [0i16; 12];
    left[..4].copy_from_slice(&[u(0x00), u(0x80), u(0xff), u(0x7f)]);
    left[8..10].copy_from_slice(&[u(0x8f), u(0x0f)]);
    right[8..10].copy_from_slice(&[a(0xd5), a(0xaa)]);
    right[11] = a(0x2a);
    let expected: Vec<i16> = left
        .iter()
        .zip(&right)
        .flat_map(|(l, r)| [*l, *r])
        .collect();
    assert_eq!(samples, expected);
    assert_eq!(&expected[..4], &[-32124, 0, 32124, 0]);
    let report = result.unwrap();
    assert_eq!(report.samples_per_channel, 12);
    assert_eq!(report.frames, 5);
    // Single legs are the channels of the stereo export, sample for sample (same origin), each
    // ending with its own last frame.
    assert_eq!(mono(&file, Channels::Caller), &left[..10]);
    assert_eq!(mono(&file, Channels::Consultant), right);
}

#[test]
fn lost_packets_and_comfort_noise_are_silence_in_place() {
    // 1 s of caller audio at 20 ms; packets 10..15 lost, 30..40 replaced by one CN packet.
    let mut frames = Vec::new();
    for i in 0..50u32 {
        if (10..15).contains(&i) || (31..40).contains(&i) {
            continue;
        }
        let (pt, payload) = if i == 30 {
            (13, vec![0x50])
        } else {
            (0, vec![0x80; 160])
        };
        frames.push(common::frame(
            Leg::Caller,
            160 * i,
            20 * u64::from(i),
            pt,
            &payload,
        ));
    }
    let samples = mono(&seal(&frames, PayloadTypes::g711()), Channels::Caller);
    assert_eq!(samples.len(), 8000);
    for (i, chunk) in samples.chunks(160).enumerate() {
        let silent = (10..15).contains(&i) || (30..40).contains(&i);
        let want = if silent { 0 } else { 32124 };
        assert!(chunk.iter().all(|s| *s == want), "packet slot {i}");
    }
}

#[test]
fn telephone_events_and_unknown_types_do_not_move_the_timeline() {
    let pts = PayloadTypes::g711()
        .with(101, Encoding::TelephoneEvent)
        .unwrap();
    let frames = [
        common::frame(Leg::Caller, 0, 0, 0, &[0x80; 160]),
        // RFC 4733 event packets repeat the event's start timestamp while arrival advances.
        common::frame(Leg::Caller, 160, 20, 101, &[1, 0x80, 0, 160]),
        common::frame(Leg::Caller, 160, 900, 101, &[1, 0x80, 0, 160]),
        common::frame(Leg::Caller, 160, 920, 96, &[9; 20]),
        common::frame(Leg::Caller, 320, 40, 0, &[0x80; 160]),
    ];
    let samples = mono(&seal(&frames, pts), Channels::Caller);
    assert_eq!(samples.len(), 480);
    assert!(samples[..160].iter().all(|s| *s == 32124));
    assert!(samples[160..320].iter().all(|s| *s == 0));
    assert!(samples[320..].iter().all(|s| *s == 32124));
}

/// RTP packets of a field case: (timestamp, payload type, payload length) per packet.
fn case_packets(name: &str) -> Vec<(u32, u8, usize)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cases")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let p = hex::decode(l.trim()).unwrap();
            // RFC 3550 §5.1: fixed header 12 bytes + 4 per CSRC (these cases have none).
            assert_eq!(p[0] & 0x3f, 0, "case packet with CSRC/extension/padding");
            let ts = u32::from_be_bytes(p[4..8].try_into().unwrap());
            (ts, p[1] & 0x7f, p.len() - 12)
        })
        .collect()
}

/// Position of the first sample of each marker value `1..` in the export (markers decode to
/// distinct µ-law/A-law levels).
fn starts(samples: &[i16], levels: &[i16]) -> Vec<Option<usize>> {
    levels
        .iter()
        .map(|l| samples.iter().position(|s| s == l))
        .collect()
}

#[test]
fn case_029_ptime_30_placed_by_timestamp_not_by_count() {
    let packets = case_packets("029-g711-ptime-30.hex");
    assert_eq!(
        packets.iter().map(|p| p.2).collect::<Vec<_>>(),
        [240, 240, 240, 160]
    );
    let markers = [0x10u8, 0x20, 0x30, 0x40];
    let frames: Vec<Frame> = packets
        .iter()
        .zip(markers)
        .enumerate()
        .map(|(i, ((ts, pt, len), m))| {
            common::frame(Leg::Caller, *ts, 30 * i as u64, *pt, &vec![m; *len])
        })
        .collect();
    let samples = mono(&seal(&frames, PayloadTypes::g711()), Channels::Caller);
    let levels: Vec<i16> = markers
        .iter()
        .map(|m| ALAW_TO_LINEAR[usize::from(*m)])
        .collect();
    assert_eq!(
        starts(&samples, &levels),
        [Some(0), Some(240), Some(480), Some(720)]
    );
    assert_eq!(
        samples.len(),
        880,
        "3 × 240 + 160 samples, no gap, no overlap"
    );
    assert!(samples.iter().all(|s| *s != 0));
}

#[test]
fn case_025_ssrc_change_continues_on_the_timeline() {
    let packets = case_packets("025-rtp-ssrc-change-midcall.hex");
    assert_eq!(packets.len(), 7);
    // Arrivals: A at 0, 20, 40 ms; B at 60, 80, 100; the A straggler at 105; one more B packet
    // (ts + 160) at 120 ms shows the straggler did not reset B's run.
    let arrivals = [0u64, 20, 40, 60, 80, 100, 105];
    let mut frames: Vec<Frame> = packets
        .iter()
        .zip(arrivals)
        .enumerate()
        .map(|(i, ((ts, pt, len), ms))| {
            common::frame(
                Leg::Consultant,
                *ts,
                ms,
                *pt,
                &vec![0x10 * (i as u8 + 1); *len],
            )
        })
        .collect();
    frames.push(common::frame(
        Leg::Consultant,
        packets[5].0 + 160,
        123,
        8,
        &[0x80; 160],
    ));
    let (_, samples, report) = export(&seal(&frames, PayloadTypes::g711()), Channels::Consultant);
    let levels: Vec<i16> = (1..=7u8)
        .map(|i| ALAW_TO_LINEAR[usize::from(0x10 * i)])
        .chain([ALAW_TO_LINEAR[0x80]])
        .collect();
    let at = starts(&samples, &levels);
    // A back to back; B right after at its arrival (480), then by its own timestamps.
    assert_eq!(
        &at[..6],
        &[
            Some(0),
            Some(160),
            Some(320),
            Some(480),
            Some(640),
            Some(800)
        ]
    );
    // The straggler belongs to A's run (480..640), which B already owns: left out, not
    // written over B, and B's run goes on by its timestamps.
    assert_eq!(at[6], None);
    assert_eq!(report.unwrap().dropped_samples, 160);
    assert_eq!(at[7], Some(960), "B's run was disturbed by the straggler");
    assert_eq!(
        samples.len(),
        1120,
        "the file is not stretched by the unrelated timestamps"
    );
}

#[test]
fn case_026_timestamp_jump_back_does_not_go_negative() {
    let packets = case_packets("026-rtp-timestamp-jump-prompt-to-relay.hex");
    // Prompt packets (ts 160000...), then the BAD relayed packet with ts 9000, then the relay
    // continuing on the PBX clock.
    let mut frames: Vec<Frame> = packets[..4]
        .iter()
        .enumerate()
        .map(|(i, (ts, pt, len))| {
            common::frame(
                Leg::Caller,
                *ts,
                20 * i as u64,
                *pt,
                &vec![0x10 * (i as u8 + 1); *len],
            )
        })
        .collect();
    frames.push(common::frame(
        Leg::Caller,
        packets[3].0 + 160,
        80,
        0,
        &[0x50; 160],
    ));
    let samples = mono(&seal(&frames, PayloadTypes::g711()), Channels::Caller);
    let levels: Vec<i16> = [0x10u8, 0x20, 0x30, 0x40, 0x50]
        .iter()
        .map(|m| ULAW_TO_LINEAR[usize::from(*m)])
        .collect();
    assert_eq!(
        starts(&samples, &levels),
        [Some(0), Some(160), Some(320), Some(480), Some(640)]
    );
    assert_eq!(samples.len(), 800);
}

#[test]
fn case_018_hold_becomes_silence_of_the_right_length() {
    // 1 s of audio, 5 s hold without packets, then 1 s more. Once with the timestamp jumping
    // over the hold, once with it carrying on as if nothing happened (no timestamp gap).
    for ts_gap in [true, false] {
        let mut frames = Vec::new();
        for i in 0..100u32 {
            let ms = if i < 50 {
                20 * u64::from(i)
            } else {
                5000 + 20 * u64::from(i)
            };
            let ts = if ts_gap && i >= 50 {
                40_000 + 160 * i
            } else {
                160 * i
            };
            frames.push(common::frame(Leg::Consultant, ts, ms, 8, &[0xd5; 160]));
        }
        let samples = mono(&seal(&frames, PayloadTypes::g711()), Channels::Consultant);
        assert_eq!(samples.len(), 7 * 8000, "ts_gap {ts_gap}");
        assert!(samples[..8000].iter().all(|s| *s == 8));
        assert!(samples[8000..48_000].iter().all(|s| *s == 0));
        assert!(samples[48_000..].iter().all(|s| *s == 8));
    }
}

#[test]
fn a_truncated_recording_exports_its_verified_prefix() {
    let frames: Vec<Frame> = (0..150u32)
        .map(|i| common::frame(Leg::Caller, 160 * i, 20 * u64::from(i), 0, &[0x80; 160]))
        .collect();
    let file = seal(&frames, PayloadTypes::g711());
    // Cut inside the final segment: the first two 1 s segments survive.
    let cut = &file[..file.len() - 100];
    let (_, samples, result) = export(cut, Channels::Stereo);
    match result {
        Err(ExportError::Incomplete {
            report,
            cause:
                ReadError::Truncated {
                    verified_segments: 2,
                    ..
                },
        }) => {
            assert_eq!(report.samples_per_channel, 16_000);
            assert_eq!(samples.len(), 32_000);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn progress_reports_every_segment() {
    let frames: Vec<Frame> = (0..500u32)
        .map(|i| common::frame(Leg::Caller, 160 * i, 20 * u64::from(i), 0, &[0x80; 160]))
        .collect();
    let file = seal(&frames, PayloadTypes::g711());
    let reader = Reader::new(&file[..], &common::test_key()).unwrap();
    let mut seen = Vec::new();
    let report = export_wav(reader, Cursor::new(Vec::new()), Channels::Caller, |p| {
        seen.push(*p)
    })
    .unwrap();
    // 10 s in 1 s segments, the last one final.
    assert_eq!(report.segments, 10);
    let segs: Vec<u64> = seen.iter().map(|p| p.segments).collect();
    assert_eq!(segs, (1..=10).chain([10]).collect::<Vec<u64>>());
    assert!(seen.windows(2).all(|w| w[0].bytes_read <= w[1].bytes_read));
    assert_eq!(seen.last().unwrap().bytes_read, file.len() as u64);
    assert_eq!(seen.last().unwrap().audio_seconds, 10.0);
}

#[test]
fn a_timeline_beyond_the_wav_limit_is_refused_at_once() {
    // Two frames 40 hours apart (arrival is authenticated, but a faulty writer could do this).
    let frames = [
        common::frame(Leg::Caller, 0, 0, 0, &[0x80; 160]),
        common::frame(Leg::Caller, 160, 40 * 3600 * 1000, 0, &[0x80; 160]),
    ];
    let file = seal(&frames, PayloadTypes::g711());
    let reader = Reader::new(&file[..], &common::test_key()).unwrap();
    let mut out = Cursor::new(Vec::new());
    let result = export_wav(reader, &mut out, Channels::Stereo, |_| {});
    assert!(
        matches!(result, Err(ExportError::TooLong { .. })),
        "{result:?}"
    );
    assert!(
        out.into_inner().len() < 1 << 20,
        "silence was written towards the limit"
    );
}
