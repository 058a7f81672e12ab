//! Crash simulation: a writer stopped between segment writes (dropped without `finish`) and in
//! the middle of one (the sink dies after N bytes). The reader must return every frame of every
//! complete segment, then `Truncated`, and lose at most one segment duration of audio.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use callseal_recording::keys::{EpochId, RecordingId};
use callseal_recording::{Frame, Leg, ReadError, Writer, WriterConfig};
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

/// A disk that accepts `budget` more bytes, then fails: what a killed process or a full disk
/// leaves behind is exactly the bytes that were accepted.
#[derive(Clone)]
struct DyingDisk {
    bytes: Rc<RefCell<Vec<u8>>>,
    budget: Rc<RefCell<usize>>,
}

impl Write for DyingDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut budget = self.budget.borrow_mut();
        if *budget == 0 {
            return Err(io::Error::other("the process was killed"));
        }
        let n = buf.len().min(*budget);
        self.bytes.borrow_mut().extend_from_slice(&buf[..n]);
        *budget -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Ten seconds of a call: both legs, 20 ms frames.
fn call() -> Vec<Frame> {
    (0..500u32)
        .flat_map(|i| {
            let ms = 20 * u64::from(i);
            [
                common::frame(Leg::Caller, 160 * i, ms + 1, 0, &[(i % 251) as u8; 160]),
                common::frame(
                    Leg::Consultant,
                    4000 + 160 * i,
                    ms + 9,
                    8,
                    &[(i % 241) as u8; 160],
                ),
            ]
        })
        .collect()
}

fn writer(disk: DyingDisk) -> Writer<DyingDisk> {
    Writer::new(
        disk,
        &common::test_key(),
        RecordingId::from_bytes([0x77; 16]),
        EpochId(3),
        WriterConfig::default(),
    )
    .unwrap()
}

/// Checks a crashed file: a prefix of `pushed` comes back, then `Truncated`, and what is lost
/// spans less than one second of arrival time.
fn check_recovery(file: &[u8], pushed: &[Frame]) -> usize {
    let (frames, err) = common::read_all(file, &common::test_key());
    match err {
        Some(ReadError::Truncated {
            verified_frames, ..
        }) => {
            assert_eq!(verified_frames as usize, frames.len());
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_eq!(
        &frames[..],
        &pushed[..frames.len()],
        "recovered frames are not a prefix"
    );
    let lost = &pushed[frames.len()..];
    if let (Some(first), Some(last)) = (lost.first(), lost.last()) {
        let span = last.arrival - first.arrival;
        assert!(span < Duration::from_secs(1), "lost {span:?} of audio");
    }
    frames.len()
}

#[test]
fn stopped_between_segment_writes() {
    let frames = call();
    // Stop after every 37th frame (and at the very start): the process dies, the writer is
    // dropped without finish(), the disk keeps everything written.
    for stop in (0..frames.len()).step_by(37).chain([0, 1, frames.len()]) {
        let disk = DyingDisk {
            bytes: Rc::default(),
            budget: Rc::new(RefCell::new(usize::MAX)),
        };
        let mut w = writer(disk.clone());
        for f in &frames[..stop] {
            w.push_frame(
                f.leg,
                f.rtp_timestamp,
                f.arrival,
                f.payload_type,
                &f.payload,
            )
            .unwrap();
        }
        let sealed = w.stats().frames as usize;
        drop(w);
        let recovered = check_recovery(&disk.bytes.borrow(), &frames[..stop]);
        assert_eq!(recovered, sealed);
    }
}

/// The gateway's setting: segments end at 8 KiB of plaintext (about half a second) as well as at
/// 1 s. A file cut at any segment boundary (what a power loss leaves when the last rounds never
/// reached the disk) reads back exactly the frames of the segments before the cut, then
/// Truncated; a file cut inside a segment, the segments before it.
#[test]
fn size_limited_segments_cut_at_every_boundary_read_back_exactly() {
    let frames = call();
    let disk = DyingDisk {
        bytes: Rc::default(),
        budget: Rc::new(RefCell::new(usize::MAX)),
    };
    let config = WriterConfig {
        max_segment_bytes: 8192,
        ..WriterConfig::default()
    };
    let mut w = Writer::new(
        disk.clone(),
        &common::test_key(),
        RecordingId::from_bytes([0x78; 16]),
        EpochId(3),
        config,
    )
    .unwrap();
    // (end offset of the file, frames sealed) after every segment.
    let mut boundaries = vec![(disk.bytes.borrow().len(), 0usize)];
    for f in &frames {
        let before = w.stats().segments;
        w.push_frame(
            f.leg,
            f.rtp_timestamp,
            f.arrival,
            f.payload_type,
            &f.payload,
        )
        .unwrap();
        if w.stats().segments != before {
            boundaries.push((disk.bytes.borrow().len(), w.stats().frames as usize));
        }
    }
    drop(w);
    let file = disk.bytes.borrow().clone();
    assert!(
        boundaries.len() > 19,
        "{} segments in 10 s",
        boundaries.len() - 1
    );
    for pair in boundaries.windows(2) {
        let ((start, _), (end, sealed)) = (pair[0], pair[1]);
        assert!(end - start <= 4 + 8192 + 16, "a segment over the limit");
        assert_eq!(check_recovery(&file[..end], &frames[..sealed]), sealed);
        // Cut inside the next segment: the segments before it still read back.
        let (frames_before, _) = common::read_all(&file[..(start + end) / 2], &common::test_key());
        assert_eq!(frames_before[..], frames[..pair[0].1]);
    }
}

#[test]
fn killed_in_the_middle_of_a_segment_write() {
    let frames = call();
    // Where the segments end in an intact file.
    let full = DyingDisk {
        bytes: Rc::default(),
        budget: Rc::new(RefCell::new(usize::MAX)),
    };
    let mut w = writer(full.clone());
    for f in &frames {
        w.push_frame(
            f.leg,
            f.rtp_timestamp,
            f.arrival,
            f.payload_type,
            &f.payload,
        )
        .unwrap();
    }
    w.finish().unwrap();
    let total = full.bytes.borrow().len();
    // Budgets: every 997th byte, plus both sides of some segment boundaries.
    let header = 111;
    let mut budgets: Vec<usize> = (0..total).step_by(997).collect();
    budgets.extend([
        header - 1,
        header,
        header + 1,
        header + 3,
        header + 4,
        total - 17,
        total - 1,
    ]);
    for budget in budgets {
        let disk = DyingDisk {
            bytes: Rc::default(),
            budget: Rc::new(RefCell::new(budget)),
        };
        let mut pushed = Vec::new();
        if budget >= header {
            let mut w = writer(disk.clone());
            for f in &frames {
                match w.push_frame(
                    f.leg,
                    f.rtp_timestamp,
                    f.arrival,
                    f.payload_type,
                    &f.payload,
                ) {
                    Ok(()) => pushed.push(f.clone()),
                    Err(_) => break,
                }
            }
        } else {
            // The header itself did not make it to disk.
            assert!(
                Writer::new(
                    disk.clone(),
                    &common::test_key(),
                    RecordingId::from_bytes([0x77; 16]),
                    EpochId(3),
                    WriterConfig::default()
                )
                .is_err()
            );
        }
        // What reached the disk is a prefix of the intact file, never anything else.
        let written = disk.bytes.borrow().len();
        assert!(written <= budget);
        assert_eq!(&disk.bytes.borrow()[..], &full.bytes.borrow()[..written]);
        check_recovery(&disk.bytes.borrow(), &pushed);
    }
}

#[test]
fn timer_seals_audio_during_silence() {
    let disk = DyingDisk {
        bytes: Rc::default(),
        budget: Rc::new(RefCell::new(usize::MAX)),
    };
    let mut w = writer(disk.clone());
    w.push_frame(Leg::Caller, 0, Duration::from_millis(10), 0, &[1; 160])
        .unwrap();
    // The call goes quiet (hold): no frames, only the gateway's timer, set for when the
    // pending segment is one segment duration old.
    assert_eq!(w.seal_due(), Some(Duration::from_millis(1010)));
    w.push_frame(Leg::Consultant, 0, Duration::from_millis(30), 0, &[2; 160])
        .unwrap();
    assert_eq!(
        w.seal_due(),
        Some(Duration::from_millis(1010)),
        "from the first frame"
    );
    assert!(!w.tick(Duration::from_millis(900)).unwrap());
    assert!(w.tick(Duration::from_millis(1010)).unwrap());
    assert_eq!(w.seal_due(), None, "nothing pending");
    assert!(!w.tick(Duration::from_millis(5000)).unwrap());
    drop(w);
    let (frames, err) = common::read_all(&disk.bytes.borrow(), &common::test_key());
    assert_eq!(frames.len(), 2);
    assert!(matches!(
        err,
        Some(ReadError::Truncated {
            verified_segments: 1,
            ..
        })
    ));
}

#[test]
fn a_failed_write_poisons_the_writer() {
    let disk = DyingDisk {
        bytes: Rc::default(),
        budget: Rc::new(RefCell::new(200)),
    };
    let mut w = writer(disk.clone());
    w.push_frame(Leg::Caller, 0, Duration::ZERO, 0, &[1; 160])
        .unwrap();
    assert!(w.flush().is_err());
    // More room now, but the file has a torn segment: the writer must not append after it.
    *disk.budget.borrow_mut() = usize::MAX;
    assert!(matches!(
        w.push_frame(Leg::Caller, 160, Duration::from_millis(20), 0, &[1; 160]),
        Err(callseal_recording::WriteError::Poisoned)
    ));
    assert!(w.finish().is_err());
    assert_eq!(disk.bytes.borrow().len(), 200);
}
