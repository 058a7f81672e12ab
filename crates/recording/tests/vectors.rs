//! Format vectors in `fixtures/recording/*.vec`: one harness runs every file and checks that the
//! reader returns exactly the expected verified prefix and then the named error; a second test
//! checks that the deterministic generator below still produces every committed file byte for
//! byte. `CALLSEAL_WRITE_VECTORS=1 cargo test -p callseal-recording --test vectors` rewrites them.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use callseal_recording::keys::{DataKey, EpochId, RecordingId};
use callseal_recording::{Frame, Leg, ReadError, Reader, Writer, WriterConfig};
use common::{OTHER_KEY, TEST_EPOCH, TEST_KEY, TEST_RECORDING, drain};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/recording")
}

/// The frames of the base recording: two legs of 20 ms frames with some arrival jitter, a PT
/// change (comfort noise) on the consultant leg, an explicit flush before frame 12.
fn base_frames() -> Vec<Frame> {
    let jitter = [0i64, 3, -1, 9, 2];
    let mut frames = Vec::new();
    for i in 0..16u32 {
        let j = jitter[i as usize % jitter.len()];
        let caller_ms = (1 + 20 * i64::from(i) + j) as u64;
        let payload: Vec<u8> = (0..24u32).map(|k| (i * 24 + k) as u8).collect();
        frames.push(common::frame(
            Leg::Caller,
            1000 + 160 * i,
            caller_ms,
            0,
            &payload,
        ));
        let (pt, payload) = if i == 9 {
            (13, vec![0x40])
        } else {
            (8, payload.iter().map(|b| b ^ 0x55).collect())
        };
        frames.push(common::frame(
            Leg::Consultant,
            50_000u32.wrapping_add(160 * i),
            u64::from(7 + 20 * i),
            pt,
            &payload,
        ));
    }
    frames
}

const FLUSH_BEFORE: usize = 24; // frame index: before caller frame 12

/// Writes `frames` with the vector settings (100 ms segments).
fn write(key: &[u8; 32], recording: RecordingId, epoch: EpochId, frames: &[Frame]) -> Vec<u8> {
    let config = WriterConfig {
        segment_duration: Duration::from_millis(100),
        ..WriterConfig::default()
    };
    let key = DataKey::from_bytes(*key);
    let mut w = Writer::new(Vec::new(), &key, recording, epoch, config).unwrap();
    for (i, f) in frames.iter().enumerate() {
        if i == FLUSH_BEFORE {
            w.flush().unwrap();
        }
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

/// Byte ranges of the header and of each segment.
fn layout(file: &[u8]) -> (usize, Vec<std::ops::Range<usize>>) {
    let header = usize::from(u16::from_be_bytes([file[10], file[11]]));
    let mut at = header;
    let mut segments = Vec::new();
    while at < file.len() {
        let word = u32::from_be_bytes(file[at..at + 4].try_into().unwrap());
        let end = at + 4 + (word & 0x7fff_ffff) as usize + 16;
        segments.push(at..end);
        at = end;
    }
    (header, segments)
}

struct Vector {
    description: String,
    key: &'static str,
    expect_ids: Option<(RecordingId, EpochId)>,
    expect: String,
    frames: usize,
    data: Vec<u8>,
}

fn flip(mut data: Vec<u8>, at: usize, bit: u8) -> Vec<u8> {
    data[at] ^= 1 << bit;
    data
}

fn splice(file: &[u8], header: usize, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = file[..header].to_vec();
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Every vector, by file stem.
fn generate() -> BTreeMap<String, Vector> {
    let frames = base_frames();
    let good = write(&TEST_KEY, TEST_RECORDING, TEST_EPOCH, &frames);
    let (h, segs) = layout(&good);
    assert_eq!(segs.len(), 4, "the base recording must have 4 segments");
    let seg = |i: usize| &good[segs[i].clone()];
    // Frames in each segment, as the writer cut them.
    let counts = [10usize, 10, 4, 8];
    let before = |i: usize| counts[..i].iter().sum::<usize>();
    let mut v = BTreeMap::new();
    let mut add = |name: &str, description: String, data: Vec<u8>, expect: String, n: usize| {
        let vector = Vector {
            description,
            key: "test",
            expect_ids: None,
            expect,
            frames: n,
            data,
        };
        assert!(v.insert(name.to_owned(), vector).is_none(), "{name} twice");
    };
    add(
        "good",
        "A complete recording: 32 frames in 4 segments (100 ms policy, one flush).".into(),
        good.clone(),
        "ok".into(),
        32,
    );
    add(
        "truncated-empty",
        "An empty file: the writer never got to write the header.".into(),
        Vec::new(),
        "truncated".into(),
        0,
    );
    add(
        "truncated-in-header",
        "Cut in the middle of the header.".into(),
        good[..h / 2].to_vec(),
        "truncated".into(),
        0,
    );
    for i in 0..4 {
        add(
            &format!("truncated-before-segment-{i}"),
            format!(
                "Cut at the segment boundary before segment {i} (a crash between two segment writes)."
            ),
            good[..segs[i].start].to_vec(),
            "truncated".into(),
            before(i),
        );
        let mid = (segs[i].start + segs[i].end) / 2;
        add(
            &format!("truncated-in-segment-{i}"),
            format!("Cut in the middle of segment {i} (a crash during a segment write)."),
            good[..mid].to_vec(),
            "truncated".into(),
            before(i),
        );
    }
    add(
        "truncated-in-prefix-1",
        "Cut two bytes into the prefix of segment 1.".into(),
        good[..segs[1].start + 2].to_vec(),
        "truncated".into(),
        10,
    );
    add(
        "truncated-before-tag-3",
        "The final segment without its tag.".into(),
        good[..good.len() - 16].to_vec(),
        "truncated".into(),
        24,
    );

    // Header bit flips, by field.
    add(
        "header-flip-magic",
        "Bit flip in the magic.".into(),
        flip(good.clone(), 1, 0),
        "not-a-recording".into(),
        0,
    );
    add(
        "header-flip-version",
        "Bit flip in the version (1 becomes 3).".into(),
        flip(good.clone(), 9, 1),
        "unsupported-version 3".into(),
        0,
    );
    add(
        "header-flip-length",
        "Bit flip in the header length.".into(),
        flip(good.clone(), 11, 1),
        "malformed-header".into(),
        0,
    );
    add(
        "header-flip-recording-id",
        "Bit flip in the recording id.".into(),
        flip(good.clone(), 20, 3),
        "header-auth".into(),
        0,
    );
    add(
        "header-flip-epoch",
        "Bit flip in the epoch id.".into(),
        flip(good.clone(), 31, 0),
        "header-auth".into(),
        0,
    );
    add(
        "header-flip-segment-policy",
        "Bit flip in the segment duration.".into(),
        flip(good.clone(), 39, 2),
        "header-auth".into(),
        0,
    );
    add(
        "header-flip-payload-table",
        "Bit flip in the payload-type table (PCMA mapped to PT 9).".into(),
        flip(good.clone(), 43, 0),
        "header-auth".into(),
        0,
    );
    add(
        "header-flip-commitment",
        "Bit flip in the key commitment.".into(),
        flip(good.clone(), h - 40, 5),
        "wrong-key".into(),
        0,
    );
    add(
        "header-flip-mac",
        "Bit flip in the header MAC.".into(),
        flip(good.clone(), h - 1, 7),
        "header-auth".into(),
        0,
    );

    // Segment body, tag and prefix flips.
    for i in [0usize, 1, 3] {
        add(
            &format!("body-flip-segment-{i}"),
            format!("Bit flip in the ciphertext of segment {i}."),
            flip(good.clone(), segs[i].start + 9, 4),
            format!("segment-auth {i}"),
            before(i),
        );
    }
    add(
        "tag-flip-segment-2",
        "Bit flip in the tag of segment 2.".into(),
        flip(good.clone(), segs[2].end - 1, 0),
        "segment-auth 2".into(),
        20,
    );
    add(
        "tag-flip-final",
        "Bit flip in the tag of the final segment.".into(),
        flip(good.clone(), good.len() - 16, 6),
        "segment-auth 3".into(),
        24,
    );
    add(
        "prefix-flip-final-flag-1",
        "Segment 1 marked final in its prefix.".into(),
        flip(good.clone(), segs[1].start, 7),
        "segment-auth 1".into(),
        10,
    );
    add(
        "prefix-flip-final-flag-3",
        "The final segment's final flag cleared.".into(),
        flip(good.clone(), segs[3].start, 7),
        "segment-auth 3".into(),
        24,
    );
    add(
        "prefix-flip-length-1",
        "Segment 1's length changed by one.".into(),
        flip(good.clone(), segs[1].start + 3, 0),
        "segment-auth 1".into(),
        10,
    );
    add(
        "prefix-huge-length-2",
        "Segment 2's length beyond the 1 MiB limit.".into(),
        flip(good.clone(), segs[2].start + 1, 6),
        "segment-auth 2".into(),
        20,
    );

    // Reordering, duplication, removal, splicing.
    add(
        "swapped-segments-1-2",
        "Segments 1 and 2 swapped.".into(),
        splice(&good, h, &[seg(0), seg(2), seg(1), seg(3)]),
        "segment-auth 1".into(),
        10,
    );
    add(
        "duplicated-segment-1",
        "Segment 1 repeated.".into(),
        splice(&good, h, &[seg(0), seg(1), seg(1), seg(2), seg(3)]),
        "segment-auth 2".into(),
        20,
    );
    add(
        "removed-segment-2",
        "Segment 2 left out.".into(),
        splice(&good, h, &[seg(0), seg(1), seg(3)]),
        "segment-auth 2".into(),
        20,
    );
    add(
        "final-segment-first",
        "The final segment moved to the front.".into(),
        splice(&good, h, &[seg(3), seg(0), seg(1), seg(2)]),
        "segment-auth 0".into(),
        0,
    );
    add(
        "segment-2-in-place-of-final",
        "Segment 2 in place of the final segment.".into(),
        splice(&good, h, &[seg(0), seg(1), seg(2), seg(2)]),
        "segment-auth 3".into(),
        24,
    );
    let other_id = RecordingId::from_bytes([0xee; 16]);
    let other = write(&TEST_KEY, other_id, TEST_EPOCH, &frames);
    let (oh, osegs) = layout(&other);
    assert_eq!(oh, h);
    add(
        "spliced-from-other-recording",
        "Segment 1 taken from another recording sealed with the same data key (different id)."
            .into(),
        splice(
            &good,
            h,
            &[seg(0), &other[osegs[1].clone()], seg(2), seg(3)],
        ),
        "segment-auth 1".into(),
        10,
    );
    let mut other_header = other[..oh].to_vec();
    other_header.extend_from_slice(&good[h..]);
    add(
        "header-from-other-recording",
        "The header of another recording (same key, valid on its own) before this file's segments."
            .into(),
        other_header,
        "segment-auth 0".into(),
        0,
    );

    // Trailing data.
    let mut t = good.clone();
    t.push(0);
    add(
        "trailing-byte",
        "One zero byte after the final segment.".into(),
        t,
        "trailing-data".into(),
        32,
    );
    let mut t = good.clone();
    t.extend_from_slice(seg(3));
    add(
        "trailing-final-segment-copy",
        "The final segment written twice.".into(),
        t,
        "trailing-data".into(),
        32,
    );

    // Keys and ids.
    let mut wrong = Vector {
        description: "The good file opened with another key.".into(),
        key: "other",
        expect_ids: None,
        expect: "wrong-key".into(),
        frames: 0,
        data: good.clone(),
    };
    v.insert("wrong-key".into(), wrong);
    // A file whose header was rewritten to another epoch (MAC not recomputable without the key).
    let mut edited = good.clone();
    edited[28..32].copy_from_slice(&(TEST_EPOCH.0 + 1).to_be_bytes());
    v.insert(
        "wrong-epoch-edited".into(),
        Vector {
            description: "The header's epoch id rewritten to the next day.".into(),
            key: "test",
            expect_ids: None,
            expect: "header-auth".into(),
            frames: 0,
            data: edited,
        },
    );
    wrong = Vector {
        description: "An intact file checked against the wrapped key of another epoch.".into(),
        key: "test",
        expect_ids: Some((TEST_RECORDING, EpochId(TEST_EPOCH.0 + 1))),
        expect: "epoch-mismatch".into(),
        frames: 0,
        data: good.clone(),
    };
    v.insert("wrong-epoch-expected".into(), wrong);
    v.insert(
        "wrong-recording-expected".into(),
        Vector {
            description: "An intact file checked against the wrapped key of another recording."
                .into(),
            key: "test",
            expect_ids: Some((other_id, TEST_EPOCH)),
            expect: "recording-mismatch".into(),
            frames: 0,
            data: good.clone(),
        },
    );
    v.insert(
        "good-expected-ids".into(),
        Vector {
            description: "The good file checked against its own recording and epoch ids.".into(),
            key: "test",
            expect_ids: Some((TEST_RECORDING, TEST_EPOCH)),
            expect: "ok".into(),
            frames: 32,
            data: good,
        },
    );
    v
}

fn render(v: &Vector) -> String {
    let mut s = String::new();
    s.push_str("# callseal sealed recording, format version 1: test vector\n");
    s.push_str(&format!("# {}\n", v.description));
    s.push_str(&format!("key: {}\n", v.key));
    if let Some((rid, epoch)) = v.expect_ids {
        s.push_str(&format!("expect-ids: {rid} {epoch}\n"));
    }
    s.push_str(&format!("expect: {}\n", v.expect));
    s.push_str(&format!("frames: {}\n", v.frames));
    s.push_str("data:\n");
    for chunk in v.data.chunks(32) {
        s.push_str(&hex::encode(chunk));
        s.push('\n');
    }
    s
}

fn parse(text: &str) -> Vector {
    let mut v = Vector {
        description: String::new(),
        key: "",
        expect_ids: None,
        expect: String::new(),
        frames: usize::MAX,
        data: Vec::new(),
    };
    let mut in_data = false;
    for line in text.lines() {
        if in_data {
            v.data.extend(hex::decode(line.trim()).expect("hex data"));
        } else if let Some(d) = line.strip_prefix("# ") {
            v.description = d.to_owned();
        } else if let Some(k) = line.strip_prefix("key: ") {
            v.key = match k {
                "test" => "test",
                "other" => "other",
                _ => panic!("unknown key {k}"),
            };
        } else if let Some(ids) = line.strip_prefix("expect-ids: ") {
            let (r, e) = ids.split_once(' ').expect("two ids");
            v.expect_ids = Some((r.parse().unwrap(), e.parse().unwrap()));
        } else if let Some(e) = line.strip_prefix("expect: ") {
            v.expect = e.to_owned();
        } else if let Some(n) = line.strip_prefix("frames: ") {
            v.frames = n.parse().unwrap();
        } else if line == "data:" {
            in_data = true;
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    assert!(
        !v.expect.is_empty() && v.frames != usize::MAX,
        "incomplete vector"
    );
    v
}

fn outcome(e: &Option<ReadError>, frames: usize) -> String {
    let Some(e) = e else { return "ok".into() };
    match e {
        ReadError::Truncated {
            verified_frames, ..
        } => {
            assert_eq!(*verified_frames as usize, frames);
            "truncated".into()
        }
        ReadError::SegmentAuth {
            index,
            verified_before,
        } => {
            assert_eq!(*verified_before as usize, frames);
            format!("segment-auth {index}")
        }
        ReadError::TrailingData {
            verified_frames, ..
        } => {
            assert_eq!(*verified_frames as usize, frames);
            "trailing-data".into()
        }
        ReadError::HeaderAuth => "header-auth".into(),
        ReadError::WrongKey => "wrong-key".into(),
        ReadError::UnsupportedVersion { found } => format!("unsupported-version {found}"),
        ReadError::NotARecording => "not-a-recording".into(),
        ReadError::MalformedHeader { .. } => "malformed-header".into(),
        ReadError::MalformedSegment { index, .. } => format!("malformed-segment {index}"),
        ReadError::RecordingMismatch { .. } => "recording-mismatch".into(),
        ReadError::EpochMismatch { .. } => "epoch-mismatch".into(),
        other => format!("other: {other}"),
    }
}

fn run(v: &Vector) -> (String, Vec<Frame>) {
    let key = DataKey::from_bytes(if v.key == "other" {
        OTHER_KEY
    } else {
        TEST_KEY
    });
    let opened = match v.expect_ids {
        Some((r, e)) => Reader::new_expecting(&v.data[..], &key, r, e),
        None => Reader::new(&v.data[..], &key),
    };
    let (frames, err) = match opened {
        Ok(mut reader) => drain(&mut reader),
        Err(e) => (Vec::new(), Some(e)),
    };
    (outcome(&err, frames.len()), frames)
}

#[test]
fn every_committed_vector_reads_as_expected() {
    let expected_frames = base_frames();
    let mut count = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("vec") {
            continue;
        }
        let v = parse(&std::fs::read_to_string(&path).unwrap());
        let (got, frames) = run(&v);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(got, v.expect, "{name}: {}", v.description);
        assert_eq!(frames.len(), v.frames, "{name}: frame count");
        // Exactly the verified prefix of the original frames, nothing altered.
        assert_eq!(
            &frames[..],
            &expected_frames[..v.frames],
            "{name}: frames differ"
        );
        count += 1;
    }
    assert!(
        count >= 40,
        "only {count} vectors found in {}",
        dir().display()
    );
}

#[test]
fn generator_reproduces_committed_vectors() {
    let generated = generate();
    let write = std::env::var_os("CALLSEAL_WRITE_VECTORS").is_some();
    for (name, v) in &generated {
        // The generator's own expectations must hold before anything is compared or written.
        let (got, frames) = run(v);
        assert_eq!(got, v.expect, "generator: {name}");
        assert_eq!(frames.len(), v.frames, "generator: {name}");
        let path = dir().join(format!("{name}.vec"));
        let text = render(v);
        if write {
            std::fs::write(&path, &text).unwrap();
        } else {
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{} missing: regenerate the vectors", path.display()));
            assert!(
                committed == text,
                "{name}.vec differs from the generator's output"
            );
        }
    }
    // No stale vector without a generator entry.
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("vec") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(generated.contains_key(&stem), "{stem}.vec is not generated");
        }
    }
}

#[test]
fn base_recording_segments_as_designed() {
    let good = write(&TEST_KEY, TEST_RECORDING, TEST_EPOCH, &base_frames());
    let (_, segs) = layout(&good);
    let finals: Vec<bool> = segs.iter().map(|r| good[r.start] & 0x80 != 0).collect();
    assert_eq!(finals, [false, false, false, true]);
    // The frames of each segment: read a file cut after each one.
    let key = common::test_key();
    let counts: Vec<usize> = segs
        .iter()
        .map(|r| common::read_all(&good[..r.end], &key).0.len())
        .collect();
    assert_eq!(counts, [10, 20, 24, 32]);
}
