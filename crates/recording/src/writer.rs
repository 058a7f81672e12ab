//! The streaming writer: frames in, sealed segments out to any `io::Write`.
//!
//! Frames are encoded into a plaintext buffer held in memory (wiped after use); when the buffer
//! spans the segment duration, on [`Writer::flush`], on [`Writer::tick`] and on
//! [`Writer::finish`] it is encrypted in place and written to the sink in one `write_all`.
//! No plaintext byte ever reaches the sink, and none stays in memory once sealed.

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
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            segment_duration: Duration::from_secs(1),
            payload_types: PayloadTypes::g711(),
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
        // Two legs of G.711 for one segment, plus a little for frame headers.
        let estimate = (16 * segment_ms as usize + 4096).min(MAX_SEGMENT_PLAINTEXT);
        let mut buf = WipedBuf::with_capacity(PREFIX_LEN + estimate + TAG_LEN);
        buf.vec().extend_from_slice(&[0; PREFIX_LEN]);
        Ok(Self {
            sink,
            keys,
            header_mac,
            segment_ms: u64::from(segment_ms),
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
        if due || plaintext + MAX_FRAME_ENCODING > MAX_SEGMENT_PLAINTEXT {
            self.seal(false)?;
        }
        self.buf.reserve(MAX_FRAME_ENCODING + TAG_LEN);
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
        self.buf.reserve(TAG_LEN);
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

impl<W: Write> std::fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
