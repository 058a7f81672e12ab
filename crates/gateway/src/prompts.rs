//! The spoken prompts: built into the binary, optionally replaced from a folder.
//!
//! The WAVs come from `prompts/prompts.toml` via `scripts/make-prompts` (8 kHz mono 16-bit).
//! Their SHA-256 goes into the consent evidence, so what the caller heard can be proven later.

use std::io::Cursor;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::GatewayError;

/// The prompts the consent flow plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PromptName {
    Consent,
    ConfirmYes,
    ConfirmNo,
    Withdrawn,
    Survey,
    Thanks,
}

impl PromptName {
    pub const ALL: [PromptName; 6] = [
        PromptName::Consent,
        PromptName::ConfirmYes,
        PromptName::ConfirmNo,
        PromptName::Withdrawn,
        PromptName::Survey,
        PromptName::Thanks,
    ];

    /// File stem, as written by scripts/make-prompts.
    pub fn file_stem(self) -> &'static str {
        match self {
            PromptName::Consent => "consent",
            PromptName::ConfirmYes => "confirm-yes",
            PromptName::ConfirmNo => "confirm-no",
            PromptName::Withdrawn => "withdrawn",
            PromptName::Survey => "survey",
            PromptName::Thanks => "thanks",
        }
    }

    fn builtin(self) -> &'static [u8] {
        macro_rules! wav {
            ($f:literal) => {
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../fixtures/prompts/",
                    $f,
                    ".wav"
                ))
            };
        }
        match self {
            PromptName::Consent => wav!("consent"),
            PromptName::ConfirmYes => wav!("confirm-yes"),
            PromptName::ConfirmNo => wav!("confirm-no"),
            PromptName::Withdrawn => wav!("withdrawn"),
            PromptName::Survey => wav!("survey"),
            PromptName::Thanks => wav!("thanks"),
        }
    }
}

/// One decoded prompt: 8 kHz linear samples plus the hash of the file they came from.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub name: PromptName,
    pub samples: Vec<i16>,
    /// SHA-256 of the WAV file bytes.
    pub sha256: [u8; 32],
    /// True when loaded from the configured folder rather than the binary.
    pub from_folder: bool,
}

impl Prompt {
    /// Duration at 8000 samples per second, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 / 8
    }
}

/// All prompts, ready to play.
#[derive(Debug, Clone)]
pub struct PromptSet {
    /// In `PromptName::ALL` order.
    prompts: Vec<Prompt>,
}

impl PromptSet {
    /// The built-in prompts only.
    pub fn builtin() -> Result<Self, GatewayError> {
        Self::load(None)
    }

    /// Built-in prompts, each replaced by `folder/NAME.wav` where that file exists.
    pub fn load(folder: Option<&Path>) -> Result<Self, GatewayError> {
        let mut prompts = Vec::with_capacity(PromptName::ALL.len());
        for name in PromptName::ALL {
            let file = folder.map(|f| f.join(format!("{}.wav", name.file_stem())));
            let prompt = match file {
                Some(path) if path.exists() => {
                    let bytes = std::fs::read(&path).map_err(|e| GatewayError::Prompt {
                        name: path.display().to_string(),
                        reason: format!("cannot read: {e}"),
                    })?;
                    decode(name, &bytes, true)?
                }
                _ => decode(name, name.builtin(), false)?,
            };
            prompts.push(prompt);
        }
        Ok(Self { prompts })
    }

    pub fn get(&self, name: PromptName) -> &Prompt {
        // `load` pushes exactly one prompt per name in ALL order, so the index always exists.
        &self.prompts[name as usize]
    }
}

/// Decodes an 8 kHz mono 16-bit PCM WAV; anything else is refused with the reason.
pub fn decode(name: PromptName, bytes: &[u8], from_folder: bool) -> Result<Prompt, GatewayError> {
    let fail = |reason: String| GatewayError::Prompt {
        name: name.file_stem().to_owned(),
        reason,
    };
    let mut reader = hound::WavReader::new(Cursor::new(bytes))
        .map_err(|e| fail(format!("not a WAV file ({e})")))?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(fail(format!(
            "is {} Hz, {} channel(s), {} bit; need 8000 Hz mono 16-bit PCM",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        )));
    }
    let samples = reader
        .samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("damaged audio data ({e})")))?;
    if samples.is_empty() {
        return Err(fail("holds no audio".into()));
    }
    Ok(Prompt {
        name,
        samples,
        sha256: Sha256::digest(bytes).into(),
        from_folder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_prompts_are_8k_speech_of_plausible_length() {
        let set = PromptSet::builtin().unwrap();
        for name in PromptName::ALL {
            let p = set.get(name);
            assert_eq!(p.name, name);
            assert!(!p.from_folder);
            assert!(
                (1000..60_000).contains(&p.duration_ms()),
                "{name:?}: {} ms",
                p.duration_ms()
            );
            // Spoken audio, not silence: RMS well above the noise floor.
            let rms = (p.samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
                / p.samples.len() as f64)
                .sqrt();
            assert!(rms > 500.0, "{name:?} rms {rms}");
        }
        assert!(
            set.get(PromptName::Consent).duration_ms() > set.get(PromptName::Thanks).duration_ms()
        );
    }

    #[test]
    fn folder_overrides_only_the_files_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thanks.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..8000 {
            w.write_sample(((i % 40) * 500 - 10_000) as i16).unwrap();
        }
        w.finalize().unwrap();
        let set = PromptSet::load(Some(dir.path())).unwrap();
        assert!(set.get(PromptName::Thanks).from_folder);
        assert_eq!(set.get(PromptName::Thanks).duration_ms(), 1000);
        assert!(!set.get(PromptName::Consent).from_folder);
        assert_ne!(
            set.get(PromptName::Thanks).sha256,
            PromptSet::builtin().unwrap().get(PromptName::Thanks).sha256
        );
    }

    #[test]
    fn wrong_rate_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(1i16).unwrap();
        w.finalize().unwrap();
        let err = PromptSet::load(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("22050 Hz"), "{err}");
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let err = decode(PromptName::Survey, b"RIFF\x04\0\0\0WAVEjunk", true).unwrap_err();
        assert!(matches!(err, GatewayError::Prompt { .. }));
    }
}
