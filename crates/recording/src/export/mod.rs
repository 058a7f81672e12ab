//! Export of a verified recording to WAV (8 kHz, 16-bit PCM; stereo with the caller on the left
//! and the consultant on the right, or one leg in mono).
//!
//! G.711 frames are decoded and placed on the timeline by RTP timestamp and arrival time (see
//! `docs/recording-format.md` §7); gaps, comfort noise (RFC 3389), telephone events and unknown payload types
//! become silence. The WAV is built with `hound`, which needs a seekable sink: write it to a
//! file or to memory, never to a pipe.

mod timeline;

use crate::format::{MAX_FRAME_PAYLOAD, SAMPLE_RATE};
use crate::frames::Leg;
use crate::g711;
use crate::payload::Encoding;
use crate::reader::{ReadError, Reader};
use std::io::{Read, Seek, Write};
use timeline::Timeline;

/// Which channels the WAV holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channels {
    /// Two channels: caller left, consultant right.
    Stereo,
    /// The caller's leg only (mono).
    Caller,
    /// The consultant's leg only (mono).
    Consultant,
}

impl Channels {
    fn count(self) -> u16 {
        match self {
            Channels::Stereo => 2,
            Channels::Caller | Channels::Consultant => 1,
        }
    }

    fn includes(self, leg: Leg) -> bool {
        match self {
            Channels::Stereo => true,
            Channels::Caller => leg == Leg::Caller,
            Channels::Consultant => leg == Leg::Consultant,
        }
    }
}

/// Reported to the progress callback after each verified segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportProgress {
    /// Bytes of the sealed file consumed.
    pub bytes_read: u64,
    /// Segments verified.
    pub segments: u64,
    /// Frames read.
    pub frames: u64,
    /// Audio placed on the timeline so far, in seconds.
    pub audio_seconds: f64,
}

/// What an export produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportReport {
    /// Segments verified.
    pub segments: u64,
    /// Frames read (both legs, all payload types).
    pub frames: u64,
    /// Samples per channel in the WAV.
    pub samples_per_channel: u64,
    /// Duration of the WAV in seconds.
    pub seconds: f64,
    /// The layout written.
    pub channels: Channels,
    /// Samples left out: frames more than 1 s late, and stragglers of a previous stream that
    /// overlap the current one.
    pub dropped_samples: u64,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The recording did not read to its end. The WAV is finalized and holds exactly the
    /// verified prefix: keep it (e.g. after a gateway crash, `cause` is `Truncated`) or delete it.
    #[error(
        "the WAV holds the verified audio up to the point where the recording stopped: {cause}"
    )]
    Incomplete {
        /// What the WAV holds.
        report: ExportReport,
        /// Why reading stopped.
        cause: ReadError,
    },
    /// Writing the WAV failed.
    #[error("writing the WAV failed ({reason}); check the output location and free space")]
    Wav {
        /// hound's or the sink's error text.
        reason: String,
    },
    /// The timeline exceeds what a WAV file can hold (4 GiB of samples).
    #[error(
        "the recording spans more than a WAV file can hold ({seconds:.0} s); export one leg at a time"
    )]
    TooLong {
        /// Seconds reached when the limit was hit.
        seconds: f64,
    },
}

/// Decodes every verified frame of `reader` into a WAV written to `out`, calling `progress`
/// after each verified segment. See [`ExportError::Incomplete`] for recordings that do not read
/// to their end.
pub fn export_wav<R: Read, W: Write + Seek>(
    mut reader: Reader<R>,
    out: W,
    channels: Channels,
    mut progress: impl FnMut(&ExportProgress),
) -> Result<ExportReport, ExportError> {
    let spec = hound::WavSpec {
        channels: channels.count(),
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::new(out, spec).map_err(wav_error)?;
    let payload_types = reader.header().payload_types().clone();
    let mut timeline = Timeline::new();
    let mut sink = SampleSink {
        channels,
        written: 0,
        limit: u64::from(u32::MAX - 64) / (2 * u64::from(channels.count())),
    };
    let mut scratch = vec![0i16; MAX_FRAME_PAYLOAD];
    let mut frames = 0u64;
    let mut segments_reported = 0;
    let cause = loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        frames += 1;
        let arrival_ms = u64::try_from(frame.arrival.as_millis()).unwrap_or(u64::MAX);
        timeline.observe_origin(arrival_ms);
        if reader.segments_verified() != segments_reported {
            segments_reported = reader.segments_verified();
            progress(&ExportProgress {
                bytes_read: reader.bytes_read(),
                segments: segments_reported,
                frames,
                audio_seconds: timeline.end() as f64 / f64::from(SAMPLE_RATE),
            });
        }
        if !channels.includes(frame.leg) {
            continue;
        }
        let samples = match payload_types.get(frame.payload_type) {
            Some(Encoding::Pcmu) => {
                g711::decode_ulaw(&frame.payload, &mut scratch);
                &scratch[..frame.payload.len()]
            }
            Some(Encoding::Pcma) => {
                g711::decode_alaw(&frame.payload, &mut scratch);
                &scratch[..frame.payload.len()]
            }
            // RFC 3389 comfort noise marks silence: it anchors the timeline, writes nothing.
            Some(Encoding::ComfortNoise) => &scratch[..0],
            // Telephone events repeat one timestamp for a whole event; unknown payload types
            // have no known clock. Neither may move the timeline.
            _ => continue,
        };
        let (pos, limit) = timeline.position(frame.leg, frame.rtp_timestamp, arrival_ms);
        // Refuse a timeline beyond what a WAV can hold before writing any silence towards it.
        let end = u64::try_from(pos).unwrap_or(0) + samples.len() as u64;
        if end > sink.limit {
            return Err(ExportError::TooLong {
                seconds: end as f64 / f64::from(SAMPLE_RATE),
            });
        }
        if let Some(target) = timeline.flush_target_before(pos, samples.len()) {
            timeline.flush_to(target, |block| sink.emit(&mut wav, block))?;
        }
        timeline.write(frame.leg, pos, samples, limit);
    };
    let end = timeline.end();
    timeline.flush_to(end, |block| sink.emit(&mut wav, block))?;
    wav.finalize().map_err(wav_error)?;
    let report = ExportReport {
        segments: reader.segments_verified(),
        frames,
        samples_per_channel: timeline.flushed(),
        seconds: timeline.flushed() as f64 / f64::from(SAMPLE_RATE),
        channels,
        dropped_samples: timeline.dropped_samples,
    };
    progress(&ExportProgress {
        bytes_read: reader.bytes_read(),
        segments: report.segments,
        frames,
        audio_seconds: report.seconds,
    });
    match cause {
        None => Ok(report),
        Some(cause) => Err(ExportError::Incomplete { report, cause }),
    }
}

/// Writes timeline blocks to the WAV in the chosen layout, within the WAV size limit.
struct SampleSink {
    channels: Channels,
    written: u64,
    limit: u64,
}

impl SampleSink {
    fn emit<W: Write + Seek>(
        &mut self,
        wav: &mut hound::WavWriter<W>,
        block: &[[i16; 2]],
    ) -> Result<(), ExportError> {
        if block.is_empty() {
            return Ok(());
        }
        self.written += block.len() as u64;
        if self.written > self.limit {
            return Err(ExportError::TooLong {
                seconds: self.written as f64 / f64::from(SAMPLE_RATE),
            });
        }
        let per_frame = u32::from(self.channels.count());
        // block.len() <= the timeline's block size (a few thousand samples): fits in u32.
        let n = u32::try_from(block.len()).unwrap_or(u32::MAX / 2) * per_frame;
        let mut w = wav.get_i16_writer(n);
        for [left, right] in block {
            match self.channels {
                Channels::Stereo => {
                    w.write_sample(*left);
                    w.write_sample(*right);
                }
                Channels::Caller => w.write_sample(*left),
                Channels::Consultant => w.write_sample(*right),
            }
        }
        w.flush().map_err(wav_error)
    }
}

fn wav_error(e: hound::Error) -> ExportError {
    ExportError::Wav {
        reason: e.to_string(),
    }
}
