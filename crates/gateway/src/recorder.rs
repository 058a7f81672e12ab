//! One sealed recording file per consenting call: `<recordings>/<recording-id>.csrec`.
//!
//! The media session's recording tap pushes every received frame of both legs into the
//! `recording` crate's [`Writer`], which seals a segment at least every `segment_ms` and
//! whenever [`SEGMENT_BYTES`] of plaintext are pending (about half a second of stereo G.711):
//! that buffer, allocated once, is all the unsealed audio a recording holds. Sealing happens on
//! the packet path, but writing does not: the ciphertext goes to one of a few disk threads (per
//! file in order), so a slow disk never delays another call's packets (see `disk`). Each sealed
//! segment is written at once, so a crash of the process loses only the unsealed audio (at
//! most one segment); written segments are made durable together once per second (group
//! commit), so a power loss loses at most about one segment plus one second more. The data key lives
//! only as long as [`Recorder::create`] runs: it is wrapped to the epoch key and handed to the
//! writer, then zeroized. The file name is the recording id only — nothing about the caller.
//!
//! The writer belongs to the tap alone (the media session owns the tap while recording), so a
//! frame takes no lock and no atomic operation: on the packet path those are full barriers
//! that wait for the frame's own cache misses. The [`Recorder`] handle that the signalling side
//! and the closing thread keep holds only the file's identity and its failure state.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use callseal_media::{RecordingSink, TapFrame, TapSinkError};
use callseal_recording::keys::{DataKey, EpochId, PublicKey, RecordingId, WrappedKey, wrap};
use callseal_recording::{Encoding, Leg as RecLeg, PayloadTypes, WriteError, Writer, WriterConfig};

use crate::error::GatewayError;
use crate::metrics::Metrics;

mod disk;

/// File name extension of sealed recordings.
pub const EXTENSION: &str = "csrec";

/// The path of a recording's file.
pub fn recording_path(dir: &Path, id: &RecordingId) -> PathBuf {
    dir.join(format!("{id}.{EXTENSION}"))
}

/// The most plaintext one segment holds (8 KiB: ~0.5 s of stereo 20 ms G.711). The
/// recording's plaintext buffer is this size; a segment buffer on its way to disk as well.
/// Smaller costs file size (~45 bytes a segment) and a write per segment; larger costs memory
/// per call.
pub const SEGMENT_BYTES: usize = 8 * 1024;

/// The writer's sink: sealed bytes (never plaintext) waiting to be handed to the disk thread,
/// in a buffer from the disk threads' pool (empty and unallocated between segments).
#[derive(Default)]
struct Sealed(Vec<u8>);

impl std::io::Write for Sealed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A segment goes in a pooled buffer; the header (~110 bytes, once) in its own.
        if self.0.capacity() == 0 && buf.len() > 1024 {
            self.0 = disk::pool::take();
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A recording being written, as the signalling side and the closing thread see it: which
/// file, and whether it failed or was completed. Cheap to clone. The audio goes through the
/// [`Started::tap`] alone.
#[derive(Clone)]
pub struct Recorder(Arc<Shared>);

struct Shared {
    id: RecordingId,
    epoch: EpochId,
    path: PathBuf,
    file: Arc<disk::Target>,
    metrics: Arc<Metrics>,
    /// The tap sealed and handed over the final segment.
    complete: AtomicBool,
    /// `finish` counted the recording as finished (once).
    counted: AtomicBool,
}

/// What starting a recording produced.
pub struct Started {
    /// The handle that finishes or discards the file.
    pub recorder: Recorder,
    /// The media session's end: owns the writer and takes every frame.
    pub tap: Box<dyn RecordingSink>,
    /// The data key wrapped to the epoch public key: all the escrow ever needs.
    pub wrapped: WrappedKey,
}

impl Recorder {
    /// Draws a recording id and data key, wraps the key to `epoch_key`, creates the file
    /// (0600, never over an existing one) and writes the header. `event_pts` are the
    /// telephone-event payload types of the legs, stored in the header's PT table.
    pub fn create(
        dir: &Path,
        epoch: EpochId,
        epoch_key: &PublicKey,
        segment: Duration,
        event_pts: &[u8],
        metrics: Arc<Metrics>,
    ) -> Result<Started, GatewayError> {
        let rec_err = |id: &str, reason: String| GatewayError::Recording {
            id: id.to_owned(),
            reason,
        };
        let id = RecordingId::generate().map_err(|e| GatewayError::Random(e.to_string()))?;
        let key = DataKey::generate().map_err(|e| GatewayError::Random(e.to_string()))?;
        let wrapped = wrap(&key, id, epoch, epoch_key)
            .map_err(|e| rec_err(&id.to_string(), e.to_string()))?;
        let mut payload_types = PayloadTypes::g711();
        for &pt in event_pts {
            payload_types = payload_types
                .with(pt, Encoding::TelephoneEvent)
                .map_err(|e| rec_err(&id.to_string(), e.to_string()))?;
        }
        let path = recording_path(dir, &id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| GatewayError::storage("create recording", &path, e))?;
        let config = WriterConfig {
            segment_duration: segment,
            payload_types,
            max_segment_bytes: SEGMENT_BYTES,
        };
        let mut writer = Writer::new(Sealed::default(), &key, id, epoch, config)
            .map_err(|e| rec_err(&id.to_string(), e.to_string()))?;
        // The writer derived its own keys; ours goes now (DataKey zeroizes on drop).
        drop(key);
        let file = disk::Target::new(file, path.clone(), id.to_bytes());
        // The header, written at once on the disk thread so the file is never empty; the disk
        // thread's next round makes it and the new file's name durable.
        disk::append(&file, std::mem::take(&mut writer.get_mut().0))
            .map_err(|reason| rec_err(&id.to_string(), reason))?;
        metrics.recordings_started.fetch_add(1, Ordering::Relaxed);
        let recorder = Recorder(Arc::new(Shared {
            id,
            epoch,
            path,
            file,
            metrics,
            complete: AtomicBool::new(false),
            counted: AtomicBool::new(false),
        }));
        let tap = Box::new(Tap {
            writer,
            rec: recorder.clone(),
            frames: 0,
        });
        Ok(Started {
            recorder,
            tap,
            wrapped,
        })
    }

    /// The recording id.
    pub fn id(&self) -> RecordingId {
        self.0.id
    }

    /// The epoch its key is wrapped to.
    pub fn epoch(&self) -> EpochId {
        self.0.epoch
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Waits until every sealed byte handed over so far is written and the file fsynced (or
    /// failed).
    pub fn wait_written(&self, limit: Duration) -> Result<(), GatewayError> {
        disk::barrier(&self.0.file, limit).map_err(|reason| self.error(reason))?;
        self.0
            .file
            .failure()
            .map_or(Ok(()), |reason| Err(self.error(reason)))
    }

    /// After the tap was closed ([`RecordingSink::close`]): waits until the final segment is
    /// written and fsynced, so the file reads to its end without `truncated`. Idempotent. A
    /// failure of the tap or the disk is returned (the file's sealed prefix stays readable),
    /// as is a tap that ended without its final segment.
    pub fn finish(&self) -> Result<(), GatewayError> {
        self.wait_written(FINISH_WAIT)?;
        if !self.0.complete.load(Ordering::Acquire) {
            return Err(self.error(
                "the recording ended without its final segment: it reads up to its last sealed \
                 segment, then reports truncation"
                    .into(),
            ));
        }
        if !self.0.counted.swap(true, Ordering::Relaxed) {
            self.0
                .metrics
                .recordings_finished
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Removes the file (consent withdrawn: the escrow shreds the key; the ciphertext has no
    /// further use). The tap must have been dropped, not closed: nothing more is sealed.
    pub fn discard(&self) -> Result<(), GatewayError> {
        match std::fs::remove_file(&self.0.path) {
            Ok(()) => crate::secrets::sync_parent(&self.0.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(GatewayError::storage("remove recording", &self.0.path, e)),
        }
    }

    fn error(&self, reason: String) -> GatewayError {
        GatewayError::Recording {
            id: self.0.id.to_string(),
            reason,
        }
    }
}

/// How long `finish` waits for the disk thread before reporting the recording as failed.
const FINISH_WAIT: Duration = Duration::from_secs(30);

/// The media session's end of a recording: the writer itself.
struct Tap {
    writer: Writer<Sealed>,
    rec: Recorder,
    /// Frames taken since the metrics were last updated (at each sealed segment, so the
    /// counter says how many frames are sealed).
    frames: u64,
}

impl Tap {
    /// After the writer sealed a segment: hands it to the disk thread, publishes the frame
    /// count, and reports a failure of the file's earlier writes.
    fn hand_over(&mut self) -> Result<(), TapSinkError> {
        let shared = &self.rec.0;
        shared
            .metrics
            .recording_frames
            .fetch_add(std::mem::take(&mut self.frames), Ordering::Relaxed);
        disk::append(&shared.file, std::mem::take(&mut self.writer.get_mut().0))
            .and_then(|()| shared.file.failure().map_or(Ok(()), Err))
            .map_err(|reason| self.fail(reason))
    }

    /// Records the failure on the file (no further segment is written) for `finish` to report.
    fn fail(&self, reason: String) -> TapSinkError {
        self.rec.0.file.fail(reason.clone());
        TapSinkError { reason }
    }
}

impl RecordingSink for Tap {
    fn push_frame(&mut self, frame: &TapFrame<'_>) -> Result<(), TapSinkError> {
        let leg = match frame.leg {
            callseal_media::Leg::Caller => RecLeg::Caller,
            callseal_media::Leg::Pbx => RecLeg::Consultant,
        };
        let before = self.writer.stats().segments;
        self.writer
            .push_frame(
                leg,
                frame.rtp_timestamp,
                frame.since_start,
                frame.payload_type,
                frame.payload,
            )
            .map_err(|e| match e {
                // A frame the format cannot hold stops the tap, but what was sealed before it
                // is still written: the file itself has not failed.
                WriteError::PayloadTooLarge { .. } | WriteError::InvalidPayloadType { .. } => {
                    TapSinkError {
                        reason: e.to_string(),
                    }
                }
                e => self.fail(e.to_string()),
            })?;
        // A seal happens before the frame is added: the count published covers sealed frames.
        let sealed = self.writer.stats().segments != before;
        if sealed {
            self.hand_over()?;
        }
        self.frames += 1;
        Ok(())
    }

    fn tick(&mut self, since_start: Duration) -> Result<(), TapSinkError> {
        match self.writer.tick(since_start) {
            Ok(true) => self.hand_over(),
            Ok(false) => match self.rec.0.file.failure() {
                Some(reason) => Err(TapSinkError { reason }),
                None => Ok(()),
            },
            Err(e) => Err(self.fail(e.to_string())),
        }
    }

    fn next_tick(&self) -> Option<Duration> {
        self.writer.seal_due()
    }

    fn close(&mut self) -> Result<(), TapSinkError> {
        self.writer.close().map_err(|e| self.fail(e.to_string()))?;
        self.hand_over()?;
        self.rec.0.complete.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callseal_media::{FrameKind, Leg as MediaLeg};
    use callseal_recording::keys::{SecretKey, unwrap};
    use callseal_recording::{Leg as RLeg, ReadError, Reader};

    fn frame(leg: MediaLeg, ts: u32, ms: u64, payload: &[u8]) -> TapFrame<'_> {
        TapFrame {
            leg,
            ssrc: 7,
            rtp_timestamp: ts,
            sequence: 1,
            arrival: std::time::Instant::now(),
            since_start: Duration::from_millis(ms),
            payload_type: 0,
            kind: FrameKind::Audio(callseal_media::Codec::Pcmu),
            payload,
        }
    }

    fn start(dir: &Path, secret: &SecretKey) -> Started {
        Recorder::create(
            dir,
            EpochId(20_800),
            &secret.public_key(),
            Duration::from_millis(200),
            &[101],
            Arc::new(Metrics::default()),
        )
        .unwrap()
    }

    #[test]
    fn both_legs_are_sealed_and_read_back_with_the_unwrapped_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let Started {
            recorder,
            mut tap,
            wrapped,
        } = start(dir.path(), &secret);
        for i in 0..20u32 {
            tap.push_frame(&frame(
                MediaLeg::Caller,
                i * 160,
                u64::from(i) * 20,
                &[0x11; 160],
            ))
            .unwrap();
            tap.push_frame(&frame(
                MediaLeg::Pbx,
                i * 160,
                u64::from(i) * 20 + 5,
                &[0x22; 160],
            ))
            .unwrap();
        }
        tap.close().unwrap();
        recorder.finish().unwrap();
        recorder.finish().unwrap();
        assert!(
            tap.push_frame(&frame(MediaLeg::Caller, 0, 500, &[0; 160]))
                .is_err(),
            "closed after close"
        );
        let name = recorder
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            name,
            format!("{}.csrec", recorder.id()),
            "named by recording id only"
        );
        assert_eq!(crate::secrets::file_mode(recorder.path()), Some(0o600));

        let key = unwrap(&wrapped, &secret).unwrap();
        let file = std::fs::File::open(recorder.path()).unwrap();
        let mut reader = Reader::new_expecting(file, &key, recorder.id(), EpochId(20_800)).unwrap();
        let (mut caller, mut consultant) = (0, 0);
        while let Some(f) = reader.next_frame().unwrap() {
            match f.leg {
                RLeg::Caller => {
                    assert_eq!(f.payload, vec![0x11; 160]);
                    caller += 1;
                }
                RLeg::Consultant => {
                    assert_eq!(f.payload, vec![0x22; 160]);
                    consultant += 1;
                }
            }
        }
        assert_eq!((caller, consultant), (20, 20));
        // Plaintext never on disk.
        let bytes = std::fs::read(recorder.path()).unwrap();
        assert!(!bytes.windows(32).any(|w| w == [0x11; 32]));
    }

    #[test]
    fn tick_seals_pending_audio_so_a_crash_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let Started {
            recorder,
            mut tap,
            wrapped,
        } = start(dir.path(), &secret);
        tap.push_frame(&frame(MediaLeg::Caller, 0, 0, &[0x33; 160]))
            .unwrap();
        tap.tick(Duration::from_millis(100)).unwrap();
        tap.tick(Duration::from_millis(250)).unwrap();
        recorder.wait_written(Duration::from_secs(5)).unwrap();
        // Simulated crash: the writer is never finished.
        let key = unwrap(&wrapped, &secret).unwrap();
        let file = std::fs::File::open(recorder.path()).unwrap();
        let mut reader = Reader::new(file, &key).unwrap();
        assert_eq!(
            reader.next_frame().unwrap().unwrap().payload,
            vec![0x33; 160]
        );
        assert!(matches!(
            reader.next_frame(),
            Err(ReadError::Truncated { .. })
        ));
    }

    #[test]
    fn sealed_segments_reach_the_file_in_order_without_a_sync_and_read_back_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let Started {
            recorder,
            mut tap,
            wrapped,
        } = start(dir.path(), &secret);
        // 3 s of both legs: six or so segments of at most SEGMENT_BYTES.
        for i in 0..150u32 {
            let payload = [(i % 251) as u8; 160];
            let ms = u64::from(i) * 20;
            tap.push_frame(&frame(MediaLeg::Caller, i * 160, ms, &payload))
                .unwrap();
            tap.push_frame(&frame(MediaLeg::Pbx, i * 160, ms + 3, &payload))
                .unwrap();
        }
        // Published at every sealed segment: the frames in sealed segments.
        let sealed_frames = recorder.0.metrics.recording_frames.load(Ordering::Relaxed);
        assert!(sealed_frames >= 200, "{sealed_frames}");
        // Simulated crash of the process: no finish, no barrier. What was handed over is in the
        // file (the page cache) within moments, whatever the sync round does.
        let key = unwrap(&wrapped, &secret).unwrap();
        let read_all = || {
            let file = std::fs::File::open(recorder.path()).unwrap();
            // The header reaches the file with the first segment, so early reads may find
            // nothing yet.
            let mut reader = match Reader::new(file, &key) {
                Ok(reader) => reader,
                Err(e) => return (0, e),
            };
            let mut n = 0u64;
            let err = loop {
                match reader.next_frame() {
                    Ok(Some(f)) => {
                        let i = (n / 2) as u32;
                        assert_eq!(f.rtp_timestamp, i * 160, "in order");
                        assert_eq!(f.payload, vec![(i % 251) as u8; 160]);
                        n += 1;
                    }
                    Ok(None) => panic!("a crashed recording has no final segment"),
                    Err(e) => break e,
                }
            };
            (n, err)
        };
        let until = std::time::Instant::now() + Duration::from_secs(5);
        let (n, err) = loop {
            let (n, err) = read_all();
            if n >= sealed_frames || std::time::Instant::now() > until {
                break (n, err);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(matches!(err, ReadError::Truncated { .. }), "{err:?}");
        assert_eq!(n, sealed_frames);
    }

    #[test]
    fn a_frame_the_format_cannot_hold_stops_the_tap_but_keeps_what_was_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let Started {
            recorder,
            mut tap,
            wrapped,
        } = start(dir.path(), &secret);
        // 400 ms of the caller: at least one 200 ms segment sealed and handed over.
        for i in 0..20u32 {
            tap.push_frame(&frame(
                MediaLeg::Caller,
                i * 160,
                u64::from(i) * 20,
                &[0x5A; 160],
            ))
            .unwrap();
        }
        let err = tap
            .push_frame(&frame(MediaLeg::Caller, 3200, 400, &[0; 5000]))
            .unwrap_err();
        assert!(err.reason.contains("5000"), "{}", err.reason);
        drop(tap);
        // The earlier segments reach the file; the recording reports its missing end only.
        recorder.wait_written(Duration::from_secs(5)).unwrap();
        let key = unwrap(&wrapped, &secret).unwrap();
        let mut reader = Reader::new(std::fs::File::open(recorder.path()).unwrap(), &key).unwrap();
        let mut n = 0;
        while let Ok(Some(_)) = reader.next_frame() {
            n += 1;
        }
        assert!(n >= 10, "{n} frames kept");
        let err = recorder.finish().unwrap_err().to_string();
        assert!(err.contains("without its final segment"), "{err}");
    }

    #[test]
    fn discard_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let Started { recorder, tap, .. } = start(dir.path(), &secret);
        assert!(recorder.path().exists());
        drop(tap);
        recorder.discard().unwrap();
        assert!(!recorder.path().exists());
        recorder.discard().unwrap();
    }

    #[test]
    fn a_recording_whose_tap_was_never_closed_is_not_reported_finished() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let Started { recorder, tap, .. } = start(dir.path(), &secret);
        drop(tap);
        let err = recorder.finish().unwrap_err().to_string();
        assert!(err.contains("without its final segment"), "{err}");
    }
}
