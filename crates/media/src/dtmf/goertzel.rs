//! In-band DTMF detection on 8 kHz linear audio with the Goertzel algorithm.
//!
//! Windows of 205 samples (25.6 ms, bins ~39 Hz wide, the classic choice for 8 kHz), taken every
//! 51 samples (6.4 ms), are tested for exactly one row and one column tone (ITU-T Q.23
//! frequencies) that together hold most of the window's energy, with bounded twist and a clear
//! margin over the other tones of their group. Speech spreads its energy over many frequencies
//! and fails the energy test. A key is reported when [`CONFIRM_WINDOWS`] consecutive windows
//! agree (38 ms of steady tone, so the 40 ms tones of ITU-T Q.24 are caught at any alignment),
//! and only again after [`RELEASE_WINDOWS`] windows without a key, so a tone that drops out
//! briefly in noise is not reported twice.

use super::Digit;

/// Samples per analysis window.
pub const BLOCK: usize = 205;
/// Samples between the starts of consecutive windows.
pub const HOP: usize = 51;
/// Consecutive windows that must agree before a key is reported.
pub const CONFIRM_WINDOWS: u8 = 3;
/// Agreeing windows must also be steady: window energies within this ratio of the previous
/// window's, so a short burst sliding through the window (a click, a 20 ms blip) never
/// confirms, while a held tone, whose windows all carry the same energy, does.
const MAX_STEP_RATIO: f32 = 1.3;
/// Consecutive windows without a key before the next key may be reported (32 ms).
pub const RELEASE_WINDOWS: u8 = 5;
const SAMPLE_RATE: f32 = 8000.0;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Hash, Digit::D],
];
/// Share of the window energy the two tones must hold together.
const MIN_TONE_SHARE: f32 = 0.65;
/// Each tone's mean power must exceed that of a sine of amplitude ~300 (about −37 dBm0).
const MIN_TONE_POWER: f32 = 300.0 * 300.0 / 2.0;
/// Allowed power ratio between the two tones (twist, 8 dB either way).
const MAX_TWIST: f32 = 6.3;
/// The winning tone of a group must exceed the others of its group by this power ratio (6 dB).
const MIN_GROUP_MARGIN: f32 = 4.0;

/// In-band DTMF detector state for one audio stream.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coeffs: [f32; 8],
    /// The last `BLOCK` samples, oldest at `next`.
    ring: [f32; BLOCK],
    next: usize,
    filled: usize,
    since_window: usize,
    candidate: Option<Digit>,
    agreeing: u8,
    last_energy: f32,
    reported: bool,
    quiet_windows: u8,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector for 8 kHz audio.
    pub fn new() -> Self {
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE).cos();
        }
        Self {
            coeffs,
            ring: [0.0; BLOCK],
            next: 0,
            filled: 0,
            since_window: 0,
            candidate: None,
            agreeing: 0,
            last_energy: 0.0,
            reported: false,
            quiet_windows: RELEASE_WINDOWS,
        }
    }

    /// Feeds samples; calls `on_digit` for every key newly detected.
    pub fn push_samples(&mut self, samples: &[i16], mut on_digit: impl FnMut(Digit)) {
        for &s in samples {
            if let Some(slot) = self.ring.get_mut(self.next) {
                *slot = f32::from(s);
            }
            self.next = (self.next + 1) % BLOCK;
            self.filled = (self.filled + 1).min(BLOCK);
            self.since_window += 1;
            if self.filled == BLOCK && self.since_window >= HOP {
                self.since_window = 0;
                if let Some(d) = self.finish_window() {
                    on_digit(d);
                }
            }
        }
    }

    /// Forgets buffered audio and key state (a new source started).
    pub fn reset(&mut self) {
        self.filled = 0;
        self.since_window = 0;
        self.candidate = None;
        self.agreeing = 0;
        self.last_energy = 0.0;
        self.reported = false;
        self.quiet_windows = RELEASE_WINDOWS;
    }

    fn finish_window(&mut self) -> Option<Digit> {
        let energy: f32 = self.window().map(|x| x * x).sum();
        let key = self.classify(energy);
        let steady = energy <= self.last_energy * MAX_STEP_RATIO
            && self.last_energy <= energy * MAX_STEP_RATIO;
        if key.is_some() && key == self.candidate && steady {
            self.agreeing = self.agreeing.saturating_add(1);
        } else {
            self.agreeing = u8::from(key.is_some());
        }
        self.candidate = key;
        self.last_energy = energy;
        match key {
            Some(d) => {
                self.quiet_windows = 0;
                // A steady key, and none reported since the last pause.
                if self.agreeing >= CONFIRM_WINDOWS && !self.reported {
                    self.reported = true;
                    return Some(d);
                }
            }
            None => {
                self.quiet_windows = self.quiet_windows.saturating_add(1);
                if self.quiet_windows >= RELEASE_WINDOWS {
                    self.reported = false;
                }
            }
        }
        None
    }

    /// The window's samples, oldest first.
    fn window(&self) -> impl Iterator<Item = f32> + '_ {
        let (newer, older) = self.ring.split_at(self.next);
        older.iter().chain(newer).copied()
    }

    fn classify(&self, energy: f32) -> Option<Digit> {
        if energy <= 0.0 {
            return None;
        }
        let mut power = [0.0f32; 8];
        for (p, &coeff) in power.iter_mut().zip(&self.coeffs) {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for x in self.window() {
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            // Normalised so that a pure sine holding all the window energy gives 1.0.
            *p = (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2.0 / (BLOCK as f32 * energy);
        }
        let (rows, cols) = power.split_at(4);
        let (r, row_p) = strongest(rows, MIN_GROUP_MARGIN)?;
        let (c, col_p) = strongest(cols, MIN_GROUP_MARGIN)?;
        let mean_power = energy / BLOCK as f32;
        let ok = row_p + col_p >= MIN_TONE_SHARE
            && row_p * mean_power >= MIN_TONE_POWER
            && col_p * mean_power >= MIN_TONE_POWER
            && col_p <= row_p * MAX_TWIST
            && row_p <= col_p * MAX_TWIST;
        if !ok {
            return None;
        }
        KEYPAD.get(r).and_then(|row| row.get(c)).copied()
    }
}

/// Index and power of the strongest bin if it exceeds every other bin by `margin`.
fn strongest(bins: &[f32], margin: f32) -> Option<(usize, f32)> {
    let (best, &p) = bins.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let clear = bins
        .iter()
        .enumerate()
        .all(|(i, &q)| i == best || q * margin <= p);
    clear.then_some((best, p))
}

/// Synthesises the dual tone of `digit` (16-bit, 8 kHz), `amplitude` per tone, starting at
/// sample `phase` — for tests, in-band regeneration and confirmation beeps.
pub fn dual_tone(digit: Digit, samples: usize, amplitude: f32, phase: usize) -> Vec<i16> {
    let (r, c) = KEYPAD
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&d| d == digit).map(|c| (r, c)))
        .unwrap_or((0, 0));
    let fr = ROWS.get(r).copied().unwrap_or(697.0);
    let fc = COLS.get(c).copied().unwrap_or(1209.0);
    (phase..phase + samples)
        .map(|n| {
            let t = n as f32 / SAMPLE_RATE;
            let v = amplitude
                * ((2.0 * std::f32::consts::PI * fr * t).sin()
                    + (2.0 * std::f32::consts::PI * fc * t).sin());
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}
