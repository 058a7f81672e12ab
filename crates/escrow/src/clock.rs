//! Clock safety: wall-clock readings are checked against monotonic time before any shred.
//!
//! Retention deadlines are UTC wall-clock instants, but a wall clock can jump (a bad NTP server,
//! a wrong manual setting, a VM restored from a snapshot). A jump *forward* could shred keys
//! early, which cannot be undone; so the guard compares each wall reading with the previous one
//! plus the monotonic time elapsed since, and if the wall clock ran ahead by more than the
//! tolerance it becomes *untrusted* until an operator confirms it. A jump *backward* only delays
//! shredding (safe): it is reported and the guard re-anchors.
//!
//! Sans-IO: readings are passed in; [`Clock`] is the shell's way to obtain them.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ids::Timestamp;

/// Source of wall-clock and monotonic readings (injected; tests use [`ManualClock`]).
pub trait Clock: Send + Sync {
    /// UTC wall-clock time.
    fn wall(&self) -> Timestamp;
    /// Monotonic time.
    fn mono(&self) -> Instant;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_unix_ms(ms)
    }
    fn mono(&self) -> Instant {
        Instant::now()
    }
}

/// A clock for tests and simulations: both readings move only when told.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    state: Mutex<(Timestamp, Duration)>,
}

impl ManualClock {
    /// Starts at wall time `wall`.
    pub fn new(wall: Timestamp) -> Self {
        ManualClock {
            base: Instant::now(),
            state: Mutex::new((wall, Duration::ZERO)),
        }
    }
    /// Advances both clocks together (time passing normally).
    pub fn advance(&self, d: Duration) {
        if let Ok(mut s) = self.state.lock() {
            s.0 =
                s.0.plus_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            s.1 += d;
        }
    }
    /// Moves only the wall clock by `ms` (a jump; negative = backward).
    pub fn jump_wall(&self, ms: i64) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = s.0.plus_ms(ms);
        }
    }
}

impl Clock for ManualClock {
    fn wall(&self) -> Timestamp {
        self.state
            .lock()
            .map(|s| s.0)
            .unwrap_or(Timestamp::from_unix_ms(0))
    }
    fn mono(&self) -> Instant {
        self.base + self.state.lock().map(|s| s.1).unwrap_or_default()
    }
}

/// A test clock read from a file holding Unix seconds (re-read at every reading). Monotonic
/// time advances with the file, so moving the file forward is time passing, not a jump.
/// For end-to-end retention tests only; never use it in production.
#[derive(Debug)]
pub struct TestFileClock {
    path: std::path::PathBuf,
    base: Instant,
    state: Mutex<(i64, i64)>,
}

impl TestFileClock {
    /// A clock reading `path`; fails if the file does not hold a number of seconds.
    pub fn new(path: &std::path::Path) -> Result<Self, String> {
        let first = read_seconds(path)?;
        Ok(TestFileClock {
            path: path.to_owned(),
            base: Instant::now(),
            state: Mutex::new((first, first)),
        })
    }

    fn read(&self) -> (i64, i64) {
        let now = read_seconds(&self.path).ok();
        match self.state.lock() {
            Ok(mut s) => {
                if let Some(n) = now {
                    s.1 = n;
                }
                *s
            }
            Err(_) => (0, 0),
        }
    }
}

fn read_seconds(path: &std::path::Path) -> Result<i64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim()
        .parse::<i64>()
        .map_err(|_| format!("{} must hold Unix seconds", path.display()))
}

impl Clock for TestFileClock {
    fn wall(&self) -> Timestamp {
        Timestamp::from_unix_ms(self.read().1.saturating_mul(1000))
    }
    fn mono(&self) -> Instant {
        let (first, now) = self.read();
        let ahead = u64::try_from(now.saturating_sub(first)).unwrap_or(0);
        self.base + Duration::from_secs(ahead)
    }
}

/// What the guard concluded from a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockVerdict {
    /// Wall and monotonic time agree within the tolerance.
    Trusted,
    /// The wall clock ran ahead of monotonic time; shredding must wait for a confirm.
    Untrusted {
        /// How far ahead, in milliseconds, when first detected.
        ahead_ms: i64,
    },
}

/// An alert raised by the guard, for logs, metrics and the health endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockAlert {
    /// Wall clock jumped forward beyond the tolerance (shredding suspended).
    JumpedForward { ahead_ms: i64 },
    /// Wall clock jumped backward beyond the tolerance (shredding delayed, no action needed).
    JumpedBackward { behind_ms: i64 },
    /// The escrow was not observed for longer than the allowed gap (restart after a long stop
    /// or a clock set far ahead while stopped): shredding suspended until confirmed.
    UnobservedGap { gap_ms: i64 },
}

/// Compares wall-clock readings with monotonic time (sans-IO).
#[derive(Debug)]
pub struct ClockGuard {
    tolerance_ms: i64,
    anchor: Option<(Timestamp, Instant)>,
    verdict: ClockVerdict,
}

impl ClockGuard {
    /// A guard tolerating `tolerance` of disagreement between two readings.
    pub fn new(tolerance: Duration) -> Self {
        ClockGuard {
            tolerance_ms: i64::try_from(tolerance.as_millis()).unwrap_or(i64::MAX),
            anchor: None,
            verdict: ClockVerdict::Trusted,
        }
    }

    /// Starts from a persisted last-seen wall time (heartbeat) after a restart. If the clock now
    /// reads more than `max_gap` past it, the guard starts untrusted.
    pub fn resume(
        &mut self,
        last_seen: Option<Timestamp>,
        wall: Timestamp,
        mono: Instant,
        max_gap: Duration,
    ) -> Option<ClockAlert> {
        self.anchor = Some((wall, mono));
        let last = last_seen?;
        let gap = wall.unix_ms() - last.unix_ms();
        let max = i64::try_from(max_gap.as_millis()).unwrap_or(i64::MAX);
        if gap > max {
            self.verdict = ClockVerdict::Untrusted { ahead_ms: gap };
            return Some(ClockAlert::UnobservedGap { gap_ms: gap });
        }
        if gap < -self.tolerance_ms {
            return Some(ClockAlert::JumpedBackward { behind_ms: -gap });
        }
        None
    }

    /// Feeds a reading. An untrusted verdict is sticky until [`ClockGuard::confirm`].
    pub fn observe(
        &mut self,
        wall: Timestamp,
        mono: Instant,
    ) -> (ClockVerdict, Option<ClockAlert>) {
        let Some((w0, m0)) = self.anchor else {
            self.anchor = Some((wall, mono));
            return (self.verdict, None);
        };
        let elapsed =
            i64::try_from(mono.saturating_duration_since(m0).as_millis()).unwrap_or(i64::MAX);
        let drift = wall.unix_ms() - w0.unix_ms().saturating_add(elapsed);
        let mut alert = None;
        if drift > self.tolerance_ms {
            if self.verdict == ClockVerdict::Trusted {
                alert = Some(ClockAlert::JumpedForward { ahead_ms: drift });
            }
            self.verdict = ClockVerdict::Untrusted { ahead_ms: drift };
            // Keep the anchor: the jump stays measured until someone confirms it.
            return (self.verdict, alert);
        }
        if drift < -self.tolerance_ms {
            alert = Some(ClockAlert::JumpedBackward { behind_ms: -drift });
        }
        if self.verdict == ClockVerdict::Trusted {
            // Re-anchor on every trusted reading so slow NTP slewing never accumulates.
            self.anchor = Some((wall, mono));
        }
        (self.verdict, alert)
    }

    /// An operator confirmed the current wall clock is right.
    pub fn confirm(&mut self, wall: Timestamp, mono: Instant) {
        self.anchor = Some((wall, mono));
        self.verdict = ClockVerdict::Trusted;
    }

    /// The current verdict.
    pub fn verdict(&self) -> ClockVerdict {
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix_ms(1_764_720_000_000);

    #[test]
    fn forward_jump_is_untrusted_until_confirmed() {
        let clock = ManualClock::new(T0);
        let mut g = ClockGuard::new(Duration::from_secs(60));
        assert_eq!(
            g.observe(clock.wall(), clock.mono()).0,
            ClockVerdict::Trusted
        );
        clock.advance(Duration::from_secs(3600));
        assert_eq!(
            g.observe(clock.wall(), clock.mono()).0,
            ClockVerdict::Trusted
        );
        clock.jump_wall(2 * 86_400_000);
        let (v, a) = g.observe(clock.wall(), clock.mono());
        assert_eq!(
            v,
            ClockVerdict::Untrusted {
                ahead_ms: 2 * 86_400_000
            }
        );
        assert_eq!(
            a,
            Some(ClockAlert::JumpedForward {
                ahead_ms: 2 * 86_400_000
            })
        );
        clock.advance(Duration::from_secs(10));
        let (v, a) = g.observe(clock.wall(), clock.mono());
        assert!(matches!(v, ClockVerdict::Untrusted { .. }));
        assert_eq!(a, None, "alert raised once");
        g.confirm(clock.wall(), clock.mono());
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            g.observe(clock.wall(), clock.mono()).0,
            ClockVerdict::Trusted
        );
    }

    #[test]
    fn small_drift_and_backward_jumps_stay_trusted() {
        let clock = ManualClock::new(T0);
        let mut g = ClockGuard::new(Duration::from_secs(60));
        g.observe(clock.wall(), clock.mono());
        for _ in 0..100 {
            clock.advance(Duration::from_secs(3600));
            clock.jump_wall(30_000); // 30 s of slew per hour, re-anchored each time
            assert_eq!(
                g.observe(clock.wall(), clock.mono()).0,
                ClockVerdict::Trusted
            );
        }
        clock.jump_wall(-86_400_000);
        let (v, a) = g.observe(clock.wall(), clock.mono());
        assert_eq!(v, ClockVerdict::Trusted);
        assert_eq!(
            a,
            Some(ClockAlert::JumpedBackward {
                behind_ms: 86_400_000
            })
        );
    }

    #[test]
    fn long_unobserved_gap_needs_confirm() {
        let clock = ManualClock::new(T0);
        let mut g = ClockGuard::new(Duration::from_secs(60));
        let a = g.resume(
            Some(T0.plus_ms(-3 * 86_400_000)),
            clock.wall(),
            clock.mono(),
            Duration::from_secs(36 * 3600),
        );
        assert_eq!(
            a,
            Some(ClockAlert::UnobservedGap {
                gap_ms: 3 * 86_400_000
            })
        );
        assert!(matches!(g.verdict(), ClockVerdict::Untrusted { .. }));
        let mut g = ClockGuard::new(Duration::from_secs(60));
        assert_eq!(
            g.resume(
                Some(T0.plus_ms(-3_600_000)),
                clock.wall(),
                clock.mono(),
                Duration::from_secs(36 * 3600)
            ),
            None
        );
        assert_eq!(g.verdict(), ClockVerdict::Trusted);
    }
}
