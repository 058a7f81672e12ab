//! In-band DTMF (Goertzel) against real speech and noisy keys. Speech is synthesised with
//! espeak-ng in several voices and languages, converted to 8 kHz mono 16-bit with sox, loaded
//! through the prompt loader and sent through G.711 like a caller's audio. Needs the Debian
//! packages `espeak-ng` and `sox`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use callseal_media::dtmf::InbandDetector;
use callseal_media::dtmf::goertzel::dual_tone;
use callseal_media::{
    Codec, Digit, DtmfSource, Leg, LegConfig, MediaEvent, MediaSession, PayloadMap, Prompt,
    PromptError,
};
use common::*;

const SPEECH: &[(&str, &str)] = &[
    (
        "en",
        "Thank you for calling the counselling line. This call may be recorded for quality \
            and training. Press one to agree, or two to decline. You may withdraw at any time.",
    ),
    (
        "en-us+f3",
        "Hello, I would like to talk about my appointment next Tuesday at nine thirty. \
                  My number is five five five, one two three four, extension six seven.",
    ),
    (
        "en+m3",
        "Oh really? Hmm. Yes, yes. No, that is not what I meant. Could you please repeat \
               the last part? One, two, three, four, five, six, seven, eight, nine, zero.",
    ),
    (
        "de",
        "Guten Tag, vielen Dank für Ihren Anruf. Bitte drücken Sie die Eins, um zuzustimmen.",
    ),
    (
        "fr",
        "Bonjour, merci de votre appel. Appuyez sur la touche un pour accepter.",
    ),
];

fn require(tool: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok();
    assert!(
        found,
        "{tool} is not installed; this test needs it: apt-get install -y {}",
        if tool == "sox" { "sox" } else { "espeak-ng" }
    );
}

/// Synthesises `text` in `voice` at `pitch` (0–99) and converts it to the prompt format.
fn speech(dir: &Path, voice: &str, pitch: u32, text: &str) -> (PathBuf, Prompt) {
    let raw = dir.join(format!("{voice}-{pitch}-raw.wav"));
    let out = dir.join(format!("{voice}-{pitch}.wav"));
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-p", &pitch.to_string(), "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng runs");
    assert!(status.success(), "espeak-ng failed for voice {voice}");
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&out)
        .status()
        .expect("sox runs");
    assert!(status.success(), "sox failed");
    (
        raw,
        Prompt::open(&out).expect("sox output is a valid prompt"),
    )
}

fn detect(samples: &[i16], codec: Codec) -> Vec<Digit> {
    let mut d = InbandDetector::new();
    let mut found = Vec::new();
    // Through the codec, as the gateway sees it, in 20 ms packets.
    for chunk in samples.chunks(160) {
        let decoded: Vec<i16> = chunk
            .iter()
            .map(|&x| codec.decode(codec.encode(x)))
            .collect();
        d.push_samples(&decoded, |k| found.push(k));
    }
    found
}

/// Deterministic white noise (xorshift) of roughly uniform amplitude `peak`.
fn noise(n: usize, peak: i32, seed: u32) -> Vec<i16> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            i16::try_from((i64::from(x % 65_536) - 32_768) * i64::from(peak) / 32_768).unwrap()
        })
        .collect()
}

fn keys(text: &str) -> Vec<Digit> {
    text.chars().map(|c| Digit::from_char(c).unwrap()).collect()
}

/// `digits` as 70 ms tones with 70 ms pauses (ITU-T Q.24 minimums are 40 ms), tone amplitude
/// `amp` per frequency, over `background`.
fn keyed(digits: &[Digit], amp: f32, background: &[i16]) -> Vec<i16> {
    let mut out = background.to_vec();
    let mut at = 800;
    for &d in digits {
        for (o, t) in out[at..].iter_mut().zip(dual_tone(d, 560, amp, at)) {
            *o = o.saturating_add(t);
        }
        at += 1120;
    }
    assert!(at <= out.len(), "background too short");
    out
}

#[test]
fn speech_in_several_voices_never_reads_as_a_key() {
    require("espeak-ng");
    require("sox");
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0usize;
    for (voice, text) in SPEECH {
        for pitch in [20, 50, 90] {
            let (_, prompt) = speech(dir.path(), voice, pitch, text);
            total += prompt.samples().len();
            for codec in [Codec::Pcmu, Codec::Pcma] {
                let found = detect(prompt.samples(), codec);
                assert!(
                    found.is_empty(),
                    "voice {voice} pitch {pitch} {codec:?}: false keys {found:?}"
                );
            }
        }
    }
    // Enough speech for the test to mean something: over a minute.
    assert!(total > 60 * 8000, "only {} s of speech", total / 8000);
}

#[test]
fn espeak_output_at_22050_hz_is_refused_with_the_sox_command() {
    require("espeak-ng");
    require("sox");
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = speech(dir.path(), "en", 50, "Hello.");
    let err = Prompt::open(&raw).unwrap_err();
    assert!(
        matches!(
            err,
            PromptError::WrongFormat {
                sample_rate: 22_050,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("sox INPUT -r 8000 -c 1 -b 16 -e signed-integer OUTPUT.wav")
    );
}

#[test]
fn keys_in_noise_are_each_detected_once() {
    let digits = keys("159*0#2468ABCD37");
    let n = 800 + digits.len() * 1120 + 800;
    for (peak, amp) in [(1000, 4000.0), (2000, 4000.0), (1000, 1500.0)] {
        let signal = keyed(&digits, amp, &noise(n, peak, 7));
        for codec in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(
                detect(&signal, codec),
                digits,
                "noise {peak}, tone {amp}, {codec:?}"
            );
        }
    }
    // Noise alone: nothing.
    assert!(detect(&noise(8000 * 20, 3000, 11), Codec::Pcmu).is_empty());
}

#[test]
fn keys_over_speech_are_detected_and_the_speech_adds_none() {
    require("espeak-ng");
    require("sox");
    let dir = tempfile::tempdir().unwrap();
    let (_, prompt) = speech(dir.path(), "en", 50, SPEECH[0].1);
    // Speech at about a quarter of its level under the keys, as when a caller keeps talking.
    let quiet: Vec<i16> = prompt.samples().iter().map(|&x| x / 4).collect();
    let digits = keys("1209");
    let signal = keyed(&digits, 5000.0, &quiet);
    assert_eq!(detect(&signal, Codec::Pcma), digits);
}

#[test]
fn the_session_reports_in_band_keys_only_where_telephone_event_is_absent() {
    require("espeak-ng");
    require("sox");
    let dir = tempfile::tempdir().unwrap();
    let (_, prompt) = speech(dir.path(), "en+f3", 50, SPEECH[1].1);
    let digits = keys("12");
    let mut audio = prompt.samples().to_vec();
    audio.extend(keyed(&digits, 4000.0, &noise(800 + 2 * 1120 + 800, 500, 3)));
    for (te, expected) in [(None, digits.clone()), (Some(101u8), vec![])] {
        let t0 = Instant::now();
        let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
        let mut map = PayloadMap::g711(Codec::Pcmu);
        map.telephone_event = te;
        s.configure_leg(t0, Leg::Caller, LegConfig::new(Some(addr(CALLER)), map))
            .unwrap();
        for (i, chunk) in audio.chunks(160).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|&x| Codec::Pcmu.encode(x)).collect();
            let seq = u16::try_from(i % 65_536).unwrap();
            let p = rtp(false, 0, seq, 160 * u32::from(seq), 0x5EEC, &payload);
            s.handle_packet(t0 + ms(20 * i as u64), Leg::Caller, addr(CALLER), &p);
        }
        let found: Vec<Digit> = drain_events(&mut s)
            .into_iter()
            .filter_map(|e| match e {
                MediaEvent::DtmfDigit {
                    digit,
                    source: DtmfSource::InBand,
                    rtp_timestamp: None,
                    ..
                } => Some(digit),
                _ => None,
            })
            .collect();
        assert_eq!(found, expected, "telephone-event {te:?}");
    }
}

#[test]
fn short_keys_are_detected_once_at_any_alignment() {
    // 40 ms tones (the shortest ITU-T Q.24 asks to detect; phones send 70–100 ms) starting
    // at every offset within an analysis window, in noise.
    let mut missed = Vec::new();
    for offset in (0..205).step_by(3) {
        let mut signal = noise(4000, 1000, 5 + offset as u32);
        for (o, t) in signal[1000 + offset..]
            .iter_mut()
            .zip(dual_tone(Digit::D5, 320, 4000.0, 0))
        {
            *o = o.saturating_add(t);
        }
        let found = detect(&signal, Codec::Pcmu);
        if found != [Digit::D5] {
            missed.push((offset, found));
        }
    }
    assert!(missed.is_empty(), "missed at offsets {missed:?}");
}

#[test]
fn bursts_shorter_than_a_key_are_ignored() {
    // 23 ms of a perfect dual tone in silence or noise: a blip, not a key press (ITU-T Q.24
    // has receivers reject tones this short). Without the steadiness rule, offset 34 fails.
    for offset in (0..205).step_by(17) {
        for background in [vec![0i16; 4000], noise(4000, 500, 9)] {
            let mut signal = background;
            for (o, t) in
                signal[1000 + offset..]
                    .iter_mut()
                    .zip(dual_tone(Digit::D1, 184, 6000.0, 0))
            {
                *o = o.saturating_add(t);
            }
            assert!(detect(&signal, Codec::Pcma).is_empty(), "offset {offset}");
        }
    }
}

#[test]
fn the_committed_prompts_load_and_never_read_as_keys() {
    // The gateway's own prompts (fixtures/prompts) echoed back by a caller's phone must not
    // barge in on themselves.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/prompts");
    let mut loaded = 0;
    for name in [
        "consent",
        "confirm-yes",
        "confirm-no",
        "withdrawn",
        "survey",
        "thanks",
    ] {
        let path = dir.join(format!("{name}.wav"));
        let prompt = Prompt::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            prompt.duration() > std::time::Duration::from_millis(300),
            "{name} is too short"
        );
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let found = detect(prompt.samples(), codec);
            assert!(found.is_empty(), "{name} {codec:?}: false keys {found:?}");
        }
        loaded += 1;
    }
    assert_eq!(loaded, 6);
}
