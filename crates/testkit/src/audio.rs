//! Test audio: tones made with sox, G.711 μ-law decoding for checks, Goertzel tone energy, and
//! reading the channels of an exported WAV.

use std::path::Path;
use std::process::Command;

use crate::process::{PeerError, require_tool};

/// Writes `seconds` of a sine at `freq` Hz as headerless 8 kHz μ-law (what sipp's pcaps and
/// `rtp_stream` carry), made with sox.
pub fn ulaw_tone(path: &Path, freq: u32, seconds: f32) -> Result<Vec<u8>, PeerError> {
    let sox = require_tool("sox", "sox")?;
    run(Command::new(sox)
        .args(["-n", "-r", "8000", "-c", "1", "-t", "raw", "-e", "u-law"])
        .arg(path)
        .args([
            "synth",
            &seconds.to_string(),
            "sine",
            &freq.to_string(),
            "vol",
            "0.5",
        ]))?;
    std::fs::read(path).map_err(|source| PeerError::Io {
        what: format!("read {}", path.display()),
        source,
    })
}

/// Writes `seconds` of a sine at `freq` Hz as an 8 kHz mono 16-bit WAV (baresip's aufile
/// source needs exactly that), made with sox.
pub fn wav_tone(path: &Path, freq: u32, seconds: f32) -> Result<(), PeerError> {
    let sox = require_tool("sox", "sox")?;
    run(Command::new(sox)
        .args([
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
        ])
        .arg(path)
        .args([
            "synth",
            &seconds.to_string(),
            "sine",
            &freq.to_string(),
            "vol",
            "0.5",
        ]))
}

fn run(cmd: &mut Command) -> Result<(), PeerError> {
    let out = cmd.output().map_err(|source| PeerError::Io {
        what: "run sox".into(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PeerError::Protocol(format!(
            "sox failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// ITU-T G.711 μ-law to 16-bit linear.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let v = if sign != 0 { -magnitude } else { magnitude };
    i16::try_from(v).unwrap_or(if v < 0 { i16::MIN } else { i16::MAX })
}

/// Energy of `freq` in `samples` (rate `rate`), by the Goertzel recurrence, normalised by the
/// block length so blocks of different lengths compare.
pub fn goertzel(samples: &[i16], freq: f64, rate: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len() as f64).powi(2)
}

/// How much stronger `want` is than `other` in `samples` (8 kHz), as a power ratio.
pub fn tone_ratio(samples: &[i16], want: f64, other: f64) -> f64 {
    let a = goertzel(samples, want, 8000.0);
    let b = goertzel(samples, other, 8000.0);
    a / b.max(1e-9)
}

/// A stereo (or mono) WAV split into channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Channels {
    /// Sample rate.
    pub rate: u32,
    /// One vector per channel.
    pub channels: Vec<Vec<i16>>,
}

/// Reads a 16-bit PCM WAV into its channels.
pub fn read_wav(path: &Path) -> Result<Channels, PeerError> {
    let mut r = hound::WavReader::open(path).map_err(|e| {
        PeerError::Protocol(format!("{} is not a readable WAV: {e}", path.display()))
    })?;
    let spec = r.spec();
    let n = usize::from(spec.channels.max(1));
    let mut channels = vec![Vec::new(); n];
    for (i, s) in r.samples::<i16>().enumerate() {
        let s = s.map_err(|e| PeerError::Protocol(format!("{}: {e}", path.display())))?;
        if let Some(c) = channels.get_mut(i % n) {
            c.push(s);
        }
    }
    Ok(Channels {
        rate: spec.sample_rate,
        channels,
    })
}

/// Root-mean-square level of `samples`.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn goertzel_tells_440_from_1000() {
        let a = sine(440.0, 4000);
        assert!(tone_ratio(&a, 440.0, 1000.0) > 100.0);
        assert!(tone_ratio(&a, 1000.0, 440.0) < 0.01);
        assert_eq!(goertzel(&[], 440.0, 8000.0), 0.0);
    }

    #[test]
    fn ulaw_decode_matches_g711_table_points() {
        // 0xFF and 0x7F are the two zeros; 0x00 / 0x80 the extremes (G.711 Table 2).
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
    }

    #[test]
    fn sox_tone_decodes_to_its_frequency() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = ulaw_tone(&dir.path().join("t.ulaw"), 1000, 0.5).unwrap();
        assert_eq!(bytes.len(), 4000);
        let pcm: Vec<i16> = bytes.iter().map(|&b| ulaw_decode(b)).collect();
        assert!(tone_ratio(&pcm, 1000.0, 440.0) > 100.0);
        wav_tone(&dir.path().join("t.wav"), 440, 0.25).unwrap();
        let wav = read_wav(&dir.path().join("t.wav")).unwrap();
        assert_eq!(
            (wav.rate, wav.channels.len(), wav.channels[0].len()),
            (8000, 1, 2000)
        );
        assert!(tone_ratio(&wav.channels[0], 440.0, 1000.0) > 100.0);
    }
}
