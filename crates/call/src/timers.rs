//! The call's timers in one table (STYLE §3): set and cleared by name; the earliest deadline is
//! what the shell sleeps until. SIP retransmission timers live in the transaction layer.

use std::time::Instant;

/// The timers one call can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// No digit after the consent prompt ended: play it again, or decide "no input".
    Digit,
    /// The PBX has not answered in time.
    Ring,
    /// No answer to the survey question.
    Survey,
    /// The call is ending and waits for BYE/CANCEL answers; then it is freed regardless.
    Teardown,
}

const COUNT: usize = 4;

impl Timer {
    fn index(self) -> usize {
        match self {
            Self::Digit => 0,
            Self::Ring => 1,
            Self::Survey => 2,
            Self::Teardown => 3,
        }
    }

    const ALL: [Timer; COUNT] = [Self::Digit, Self::Ring, Self::Survey, Self::Teardown];
}

/// Deadlines of one call, indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    at: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Sets (or moves) a timer.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Clears a timer.
    pub fn clear(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    /// Clears every timer.
    pub fn clear_all(&mut self) {
        self.at = [None; COUNT];
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Takes the earliest timer due at `now`, clearing it.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let due = Timer::ALL
            .iter()
            .copied()
            .filter_map(|t| self.at[t.index()].filter(|at| *at <= now).map(|at| (at, t)))
            .min()?;
        self.clear(due.1);
        Some(due.1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn earliest_first_and_cleared_when_popped() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        t.set(Timer::Ring, t0 + Duration::from_secs(60));
        t.set(Timer::Digit, t0 + Duration::from_secs(8));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(8)));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(7)), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(61)), Some(Timer::Digit));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(61)), Some(Timer::Ring));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(61)), None);
        assert_eq!(t.next(), None);
    }
}
