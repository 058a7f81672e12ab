//! Prompts: audio the gateway plays (consent prompt, confirmation tone), held as 8 kHz linear
//! samples and encoded per leg at playout time, so one prompt serves PCMU and PCMA legs at any
//! ptime.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// The only prompt format accepted: what G.711 carries, so no resampling is ever needed.
pub const PROMPT_SAMPLE_RATE: u32 = 8000;

/// The command that converts any audio file to the accepted format.
pub const SOX_CONVERT_HINT: &str = "sox INPUT -r 8000 -c 1 -b 16 -e signed-integer OUTPUT.wav";

/// Why a prompt could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// The file could not be opened.
    #[error("prompt file {path} could not be opened ({reason}); check the path and permissions")]
    Open {
        /// The path as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Not a readable WAV file.
    #[error("prompt is not a readable WAV file ({reason}); convert it with: {hint}")]
    Unreadable {
        /// The decoder's complaint.
        reason: String,
        /// The conversion command.
        hint: &'static str,
    },
    /// A WAV file in another format than 8 kHz mono 16-bit PCM.
    #[error(
        "prompt is {sample_rate} Hz, {channels} channel(s), {bits} bit {encoding}; \
         8000 Hz mono 16-bit PCM is required; convert it with: {hint}"
    )]
    WrongFormat {
        /// Sample rate found.
        sample_rate: u32,
        /// Channels found.
        channels: u16,
        /// Bits per sample found.
        bits: u16,
        /// "integer PCM" or "float".
        encoding: &'static str,
        /// The conversion command.
        hint: &'static str,
    },
    /// The file holds no samples.
    #[error("prompt WAV holds no audio samples; record or generate it again")]
    Empty,
}

/// Audio to play, shared cheaply between calls.
#[derive(Clone)]
pub struct Prompt {
    samples: Arc<[i16]>,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("samples", &self.samples.len())
            .finish()
    }
}

impl Prompt {
    /// Reads a WAV file: 8 kHz, mono, 16-bit integer PCM; anything else is refused with the sox
    /// command that converts it.
    pub fn from_wav(reader: impl Read) -> Result<Self, PromptError> {
        let unreadable = |e: hound::Error| PromptError::Unreadable {
            reason: e.to_string(),
            hint: SOX_CONVERT_HINT,
        };
        let wav = hound::WavReader::new(reader).map_err(unreadable)?;
        let spec = wav.spec();
        let int = spec.sample_format == hound::SampleFormat::Int;
        if spec.sample_rate != PROMPT_SAMPLE_RATE
            || spec.channels != 1
            || spec.bits_per_sample != 16
            || !int
        {
            return Err(PromptError::WrongFormat {
                sample_rate: spec.sample_rate,
                channels: spec.channels,
                bits: spec.bits_per_sample,
                encoding: if int { "integer PCM" } else { "float" },
                hint: SOX_CONVERT_HINT,
            });
        }
        let samples = wav
            .into_samples::<i16>()
            .collect::<Result<Vec<i16>, _>>()
            .map_err(unreadable)?;
        if samples.is_empty() {
            return Err(PromptError::Empty);
        }
        Ok(Self::from_samples(samples))
    }

    /// Reads a prompt file (see [`Prompt::from_wav`]).
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, PromptError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| PromptError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_wav(std::io::BufReader::new(file))
    }

    /// A prompt from 8 kHz linear samples.
    pub fn from_samples(samples: Vec<i16>) -> Self {
        Self {
            samples: samples.into(),
        }
    }

    /// A tone: the sum of `frequencies` (Hz), each at `amplitude` (linear, of 32767), with 5 ms
    /// raised-cosine ramps so it does not click.
    pub fn tone(frequencies: &[f32], duration: Duration, amplitude: f32) -> Self {
        let n = usize::try_from(duration.as_millis() * 8).unwrap_or(0);
        let ramp = 40usize.min(n / 2).max(1);
        let samples = (0..n)
            .map(|i| {
                let t = i as f32 / PROMPT_SAMPLE_RATE as f32;
                let edge = i.min(n - 1 - i);
                let gain = if edge < ramp {
                    0.5 - 0.5 * (std::f32::consts::PI * edge as f32 / ramp as f32).cos()
                } else {
                    1.0
                };
                let v: f32 = frequencies
                    .iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum();
                (v * amplitude * gain).clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        Self::from_samples(samples)
    }

    /// The confirmation played after a choice: two 150 ms beeps at 1 kHz, 100 ms apart, about
    /// −10 dBm0. A single frequency outside the DTMF groups, so it can never read as a key.
    pub fn confirmation_tone() -> Self {
        let beep = Self::tone(&[1000.0], Duration::from_millis(150), 7000.0);
        let mut samples = beep.samples.to_vec();
        samples.extend(std::iter::repeat_n(0, 800));
        samples.extend_from_slice(&beep.samples);
        Self::from_samples(samples)
    }

    /// The samples (8 kHz, 16-bit).
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Playing time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 125)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(spec: hound::WavSpec, samples: &[i32]) -> Vec<u8> {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            match spec.sample_format {
                hound::SampleFormat::Int => w.write_sample(s).unwrap(),
                hound::SampleFormat::Float => w.write_sample(s as f32).unwrap(),
            }
        }
        w.finalize().unwrap();
        cursor.into_inner()
    }

    fn spec(rate: u32, channels: u16, bits: u16, fmt: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: fmt,
        }
    }

    #[test]
    fn accepts_8k_mono_16bit() {
        let bytes = wav_bytes(spec(8000, 1, 16, hound::SampleFormat::Int), &[1, -2, 3]);
        let p = Prompt::from_wav(bytes.as_slice()).unwrap();
        assert_eq!(p.samples(), &[1, -2, 3]);
        assert_eq!(p.duration(), Duration::from_micros(375));
    }

    #[test]
    fn other_formats_are_refused_with_the_sox_command() {
        for (s, found) in [
            (
                spec(22050, 1, 16, hound::SampleFormat::Int),
                "22050 Hz, 1 channel(s), 16 bit",
            ),
            (
                spec(8000, 2, 16, hound::SampleFormat::Int),
                "8000 Hz, 2 channel(s), 16 bit",
            ),
            (
                spec(8000, 1, 8, hound::SampleFormat::Int),
                "8000 Hz, 1 channel(s), 8 bit",
            ),
            (
                spec(8000, 1, 32, hound::SampleFormat::Float),
                "32 bit float",
            ),
        ] {
            let bytes = wav_bytes(s, &[0, 0]);
            let err = Prompt::from_wav(bytes.as_slice()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(found), "{msg}");
            assert!(
                msg.contains("sox INPUT -r 8000 -c 1 -b 16 -e signed-integer OUTPUT.wav"),
                "{msg}"
            );
        }
        let err = Prompt::from_wav(&b"RIFF....WAVEjunk"[..]).unwrap_err();
        assert!(matches!(err, PromptError::Unreadable { .. }), "{err}");
        let empty = wav_bytes(spec(8000, 1, 16, hound::SampleFormat::Int), &[]);
        assert!(matches!(
            Prompt::from_wav(empty.as_slice()),
            Err(PromptError::Empty)
        ));
    }

    #[test]
    fn open_reads_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wav");
        let bytes = wav_bytes(spec(8000, 1, 16, hound::SampleFormat::Int), &[5, 6]);
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(Prompt::open(&path).unwrap().samples(), &[5, 6]);
        let missing = dir.path().join("missing.wav");
        let err = Prompt::open(&missing).unwrap_err();
        assert!(matches!(err, PromptError::Open { .. }), "{err}");
        assert!(err.to_string().contains("missing.wav"), "{err}");
    }

    #[test]
    fn confirmation_tone_has_expected_length_and_level() {
        let p = Prompt::confirmation_tone();
        assert_eq!(p.samples().len(), 1200 + 800 + 1200);
        let peak = p.samples().iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((6900..=7000).contains(&peak), "peak {peak}");
        assert_eq!(p.samples()[0], 0);
    }
}
