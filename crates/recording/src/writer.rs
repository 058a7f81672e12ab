//! The streaming writer: frames in, sealed segments out to any `io::Write`.
//!
//! Frames are encoded into a plaintext buffer held in memory (wiped after use); when the buffer
//! spans the segment duration, when the next frame would not fit in the segment size limit, on
//! [`Writer::flush`], on [`Writer::tick`] and on [`Writer::finish`] it is encrypted in place and
//! written to the sink in one `write_all`. No plaintext byte ever reaches the sink, and none
//! stays in memory once sealed. With a size limit the buffer is allocated once at its full size
//! and never grows: what a recording holds in memory is known in advance.

use crate::buf::WipedBuf;
use crate::crypto::RecordingKeys;
use crate::format::{
    Header, MAC_LEN, MAX_FRAME_PAYLOAD, MAX_SEGMENT_PLAINTEXT, PREFIX_LEN, SEGMENT_MS_RANGE,
    TAG_LEN, segment_aad, segment_nonce, segment_prefix,
};
use crate::frames::{FrameCodec, Leg, MAX_FRAME_ENCODING};
use crate::keys::{DataKey, EpochId, RecordingId};
use crate::payload::PayloadTypes;
use std::io::{self, Write};
use std::time::Duration;

/// How a [`Writer`] forms segments and what it declares in the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// The longest span of arrival time one segment may cover: a crash loses at most this much
    /// audio. Whole milliseconds from 20 ms to 10 s; default 1 s.
    pub segment_duration: Duration,
    /// Payload type → encoding, stored in the header for the export. Default: RFC 3551 static
    /// G.711 types (0 PCMU, 8 PCMA, 13 CN).
    pub payload_types: PayloadTypes,
    /// The most plaintext bytes one segment holds: a segment is sealed early when the next
    /// frame would not fit. The writer's plaintext buffer is this big (plus 20 bytes of prefix
    /// and tag), allocated once. From [`MIN_SEGMENT_BYTES`] (one frame of the largest payload)
    /// to [`MAX_SEGMENT_PLAINTEXT`] (the default, where the segment duration alone decides).
    /// 8 KiB holds about half a second of stereo G.711 and costs ~0.3 % more file size than
    /// 1 s segments.
    pub max_segment_bytes: usize,
}

/// The smallest [`WriterConfig::max_segment_bytes`]: room for one frame with the largest payload.
pub const MIN_SEGMENT_BYTES: usize = MAX_FRAME_ENCODING;

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            segment_duration: Duration::from_secs(1),
            payload_types: PayloadTypes::g711(),
            max_segment_bytes: MAX_SEGMENT_PLAINTEXT,
        }
    }
}

/// Errors of the writer. Messages contain no key material and no audio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The sink refused a write. The writer is now poisoned: the file holds the header and every
    /// segment completed before, and reads as truncated after them.
    #[error(
        "writing the sealed recording failed ({source}); the file keeps every segment sealed before this one, check the disk and start a new recording"
    )]
    Io {
        /// The sink's error.
        #[source]
        source: io::Error,
    },
    /// An earlier write failed; nothing more is accepted.
    #[error(
        "an earlier write to this recording failed, so it accepts no more audio; start a new recording"
    )]
    Poisoned,
    /// [`Writer::close`] already wrote the final segment.
    #[error("the recording is already finished; start a new recording for more audio")]
    Finished,
    /// A payload longer than [`MAX_FRAME_PAYLOAD`].
    #[error("an RTP payload of {len} bytes exceeds the {max}-byte limit of a recorded frame")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A payload type above 127 (RTP payload types are 7 bits, RFC 3550 §5.1).
    #[error("payload type {pt} is not an RTP payload type (0 to 127)")]
    InvalidPayloadType {
        /// The refused value.
        pt: u8,
    },
    /// The configuration cannot be written in a version 1 header.
    #[error("invalid recording configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
}

/// Counters of a writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Segments sealed and written.
    pub segments: u64,
    /// Frames in those segments.
    pub frames: u64,
    /// Frames accepted but not yet sealed.
    pub pending_frames: u64,
    /// Bytes written to the sink (header included).
    pub bytes_written: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Poisoned,
    Finished,
}

/// Seals the frames of one recording into `W`. See the crate documentation for an example.
///
/// A writer dropped without [`Writer::finish`] or [`Writer::close`] leaves a file that reads as
/// truncated after its last sealed segment: the crash case, with at most one segment lost.
pub struct Writer<W: Write> {
    sink: W,
    keys: RecordingKeys,
    header_mac: [u8; MAC_LEN],
    segment_ms: u64,
    /// Plaintext bytes one segment may hold (the configured limit).
    max_plaintext: usize,
    buf: WipedBuf,
    codec: FrameCodec,
    /// Arrival (ms) of the first frame of the pending segment.
    pending_since: Option<u64>,
    next_index: u64,
    stats: WriterStats,
    state: State,
}

impl<W: Write> Writer<W> {
    /// Derives the recording's keys from `key` and writes the header to `sink` at once. The
    /// writer does not keep `key`: drop it (it zeroizes itself) once it is wrapped.
    pub fn new(
        mut sink: W,
        key: &DataKey,
        recording: RecordingId,
        epoch: EpochId,
        config: WriterConfig,
    ) -> Result<Self, WriteError> {
        let segment_ms = u32::try_from(config.segment_duration.as_millis())
            .ok()
            .filter(|ms| SEGMENT_MS_RANGE.contains(ms))
            .ok_or(WriteError::InvalidConfig {
                reason: "the segment duration must be between 20 ms and 10 s",
            })?;
        if !config
            .segment_duration
            .subsec_nanos()
            .is_multiple_of(1_000_000)
        {
            return Err(WriteError::InvalidConfig {
                reason: "the segment duration must be a whole number of milliseconds",
            });
        }
        let max_plaintext = config.max_segment_bytes;
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_PLAINTEXT).contains(&max_plaintext) {
            return Err(WriteError::InvalidConfig {
                reason: "the segment size limit must be between one largest frame (4115 bytes) and 1 MiB",
            });
        }
        let header = Header {
            recording,
            epoch,
            segment_ms,
            payload_types: config.payload_types,
        };
        let keys = RecordingKeys::derive(key, recording);
        let mut bytes = header.encode_fields();
        bytes.extend_from_slice(keys.commitment());
        let header_mac = keys.header_mac(&bytes);
        bytes.extend_from_slice(&header_mac);
        sink.write_all(&bytes)
            .map_err(|source| WriteError::Io { source })?;
        // Two legs of G.711 for one segment plus a quarter for frame headers and late frames,
        // or the size limit if that is less (then the buffer never grows).
        let estimate = (20 * segment_ms as usize).min(max_plaintext);
        let mut buf = WipedBuf::with_capacity(PREFIX_LEN + estimate + TAG_LEN);
        buf.vec().extend_from_slice(&[0; PREFIX_LEN]);
        Ok(Self {
            sink,
            keys,
            header_mac,
            segment_ms: u64::from(segment_ms),
            max_plaintext,
            buf,
            codec: FrameCodec::default(),
            pending_since: None,
            next_index: 0,
            stats: WriterStats {
                bytes_written: bytes.len() as u64,
                ..WriterStats::default()
            },
            state: State::Open,
        })
    }

    /// Adds one RTP frame. `arrival` is the time since the recording started on the caller's
    /// monotonic clock (kept at millisecond resolution); `payload` is the RTP payload after SRTP
    /// decryption. Seals the pending segment first if it already spans the segment duration.
    pub fn push_frame(
        &mut self,
        leg: Leg,
        rtp_timestamp: u32,
        arrival: Duration,
        payload_type: u8,
        payload: &[u8],
    ) -> Result<(), WriteError> {
        self.check_open()?;
        if payload_type > 127 {
            return Err(WriteError::InvalidPayloadType { pt: payload_type });
        }
        if payload.len() > MAX_FRAME_PAYLOAD {
            return Err(WriteError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_FRAME_PAYLOAD,
            });
        }
        let arrival_ms = u64::try_from(arrival.as_millis()).unwrap_or(u64::MAX);
        let due = self
            .pending_since
            .is_some_and(|since| arrival_ms.saturating_sub(since) >= self.segment_ms);
        let plaintext = self.buf.len() - PREFIX_LEN;
        let most = frame_encoding_bound(payload.len());
        if due || (plaintext > 0 && plaintext + most > self.max_plaintext) {
            self.seal(false)?;
        }
        // Room for this frame and the tag, never beyond the limit: the buffer grows only if the
        // segment duration alone decides and a segment outgrows the estimate.
        self.buf
            .reserve_within(most + TAG_LEN, PREFIX_LEN + self.max_plaintext + TAG_LEN);
        self.codec.encode(
            self.buf.vec(),
            leg,
            rtp_timestamp,
            arrival_ms,
            payload_type,
            payload,
        );
        self.pending_since.get_or_insert(arrival_ms);
        self.stats.pending_frames += 1;
        Ok(())
    }

    /// When [`Writer::tick`] would next seal: one segment duration after the pending
    /// segment's first frame (same clock as `arrival`); `None` while nothing is pending. A
    /// timer set to this instant seals silence's and hold's pending audio exactly on time; while
    /// frames flow they seal their own segments and the timer finds nothing to do (a shell
    /// that keeps a timer heap wakes about once per segment duration).
    pub fn seal_due(&self) -> Option<Duration> {
        self.pending_since
            .map(|since| Duration::from_millis(since.saturating_add(self.segment_ms)))
    }

    /// Seals the pending segment if its first frame arrived at least one segment duration
    /// before `now` (same clock as `arrival`). Call it from a timer so that silence or hold does
    /// not leave audio unsealed. Returns whether a segment was sealed.
    pub fn tick(&mut self, now: Duration) -> Result<bool, WriteError> {
        self.check_open()?;
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        match self.pending_since {
            Some(since) if now_ms.saturating_sub(since) >= self.segment_ms => {
                self.seal(false)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Seals the pending frames now (if there are any) and flushes the sink.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.check_open()?;
        if self.pending_since.is_some() {
            self.seal(false)?;
        }
        self.flush_sink()
    }

    /// Writes the final segment (with the pending frames, possibly none) and flushes the sink;
    /// the writer then refuses more frames. For shutdown paths that hold the writer by reference.
    pub fn close(&mut self) -> Result<(), WriteError> {
        self.check_open()?;
        self.seal(true)?;
        self.flush_sink()?;
        self.state = State::Finished;
        Ok(())
    }

    /// [`Writer::close`], then returns the sink (e.g. to `sync_all` a file).
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.close()?;
        Ok(self.sink)
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.sink
    }

    /// The sink, mutably: e.g. to hand the sealed bytes it buffered to another thread. The
    /// writer only ever appends to it; what the caller takes out is the caller's to store.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.sink
    }

    fn check_open(&self) -> Result<(), WriteError> {
        match self.state {
            State::Open => Ok(()),
            State::Poisoned => Err(WriteError::Poisoned),
            State::Finished => Err(WriteError::Finished),
        }
    }

    fn flush_sink(&mut self) -> Result<(), WriteError> {
        self.sink.flush().map_err(|source| {
            self.state = State::Poisoned;
            WriteError::Io { source }
        })
    }

    /// Encrypts the buffer in place as segment `next_index` and writes it in one piece.
    fn seal(&mut self, last: bool) -> Result<(), WriteError> {
        let len = self.buf.len() - PREFIX_LEN;
        let prefix = segment_prefix(len, last);
        let aad = segment_aad(&self.header_mac, prefix);
        let nonce = segment_nonce(self.next_index, last);
        let bytes = self.buf.as_mut_slice();
        bytes[..PREFIX_LEN].copy_from_slice(&prefix);
        let Some(tag) = self.keys.seal(&nonce, &aad, &mut bytes[PREFIX_LEN..]) else {
            // Unreachable below RFC 8439's 256 GiB limit; never write the plaintext.
            self.buf.wipe();
            self.state = State::Poisoned;
            return Err(WriteError::InvalidConfig {
                reason: "segment too long to encrypt",
            });
        };
        self.buf
            .reserve_within(TAG_LEN, PREFIX_LEN + self.max_plaintext + TAG_LEN);
        self.buf.vec().extend_from_slice(&tag);
        let result = self.sink.write_all(self.buf.as_slice());
        // The whole used region is ciphertext now (encrypted in place): clearing is enough, and
        // avoids a volatile wipe of every segment on the hot path.
        self.buf.vec().clear();
        self.buf.vec().extend_from_slice(&[0; PREFIX_LEN]);
        if let Err(source) = result {
            self.state = State::Poisoned;
            return Err(WriteError::Io { source });
        }
        self.next_index += 1;
        self.codec = FrameCodec::default();
        self.pending_since = None;
        self.stats.segments += 1;
        self.stats.frames += self.stats.pending_frames;
        self.stats.pending_frames = 0;
        self.stats.bytes_written += (PREFIX_LEN + len + TAG_LEN) as u64;
        Ok(())
    }
}

/// The most bytes a frame with a payload of `len` bytes encodes to: control, pt, ts (5-byte
/// varint at most), arrival (10-byte varint), length (2-byte varint), payload.
fn frame_encoding_bound(len: usize) -> usize {
    MAX_FRAME_ENCODING - MAX_FRAME_PAYLOAD + len
}

impl<W: Write> std::fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(max_segment_bytes: usize) -> Writer<Vec<u8>> {
        let config = WriterConfig {
            max_segment_bytes,
            ..WriterConfig::default()
        };
        let key = DataKey::from_bytes([9; 32]);
        Writer::new(
            Vec::new(),
            &key,
            RecordingId::from_bytes([1; 16]),
            EpochId(1),
            config,
        )
        .unwrap()
    }

    /// Pushes `seconds` of stereo 20 ms G.711 with late frames, so that some 1 s windows hold
    /// 51 frames of a leg.
    fn push_call(w: &mut Writer<Vec<u8>>, seconds: u32, mut watch: impl FnMut(&Writer<Vec<u8>>)) {
        let late = [0u64, 0, 1, 0, 9, 0, 14, 0, 2, 0, 0, 3];
        for i in 0..seconds * 50 {
            let ms = 20 * u64::from(i);
            let j = late[i as usize % late.len()];
            w.push_frame(
                Leg::Caller,
                160 * i,
                Duration::from_millis(ms + j),
                0,
                &[7; 160],
            )
            .unwrap();
            w.push_frame(
                Leg::Consultant,
                160 * i,
                Duration::from_millis(ms + 5),
                8,
                &[8; 160],
            )
            .unwrap();
            watch(w);
        }
    }

    #[test]
    fn with_a_size_limit_the_buffer_is_allocated_once_and_never_grows() {
        let mut w = writer(8192);
        let full = PREFIX_LEN + 8192 + TAG_LEN;
        assert_eq!(w.buf.capacity(), full);
        push_call(&mut w, 20, |w| assert_eq!(w.buf.capacity(), full));
        // About two segments a second: half a second of stereo G.711 is ~16 100 bytes / 2.
        let segments = w.stats().segments;
        assert!((38..=41).contains(&segments), "{segments} segments in 20 s");
    }

    #[test]
    fn without_a_limit_a_second_of_late_frames_fits_the_first_allocation() {
        // The buffer used to double (to ~40 KiB) the first time a segment held 101 frames.
        let mut w = writer(MAX_SEGMENT_PLAINTEXT);
        let first = w.buf.capacity();
        push_call(&mut w, 20, |w| assert_eq!(w.buf.capacity(), first));
        assert!(first < 21 * 1024, "{first}");
    }

    #[test]
    fn a_limit_outside_its_range_is_refused() {
        for bad in [0, MIN_SEGMENT_BYTES - 1, MAX_SEGMENT_PLAINTEXT + 1] {
            let config = WriterConfig {
                max_segment_bytes: bad,
                ..WriterConfig::default()
            };
            let key = DataKey::from_bytes([9; 32]);
            let made = Writer::new(
                Vec::new(),
                &key,
                RecordingId::from_bytes([1; 16]),
                EpochId(1),
                config,
            );
            assert!(
                matches!(made, Err(WriteError::InvalidConfig { .. })),
                "{bad}"
            );
        }
    }
}
