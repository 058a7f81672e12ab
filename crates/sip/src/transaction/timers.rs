//! The RFC 3261 §17 timers (plus RFC 6026's L and M, and the §13.3.1.4 2xx retransmission)
//! in one table indexed by [`Timer`]: set and cleared by name; the earliest deadline wins.

use std::time::{Duration, Instant};

/// Timer base values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J, L, M (32 s by default).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Every transaction timer, by its RFC name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: request retransmission, T1 doubling (§17.1.1.2).
    A,
    /// INVITE client: transaction timeout in Calling, 64·T1.
    B,
    /// INVITE client: wait for response retransmissions in Completed, 32 s / 0.
    D,
    /// Non-INVITE client: request retransmission, T1 doubling to T2 (§17.1.2.2).
    E,
    /// Non-INVITE client: transaction timeout, 64·T1.
    F,
    /// INVITE server: non-2xx final response retransmission, T1 doubling to T2 (§17.2.1).
    G,
    /// INVITE server: wait for the ACK, 64·T1.
    H,
    /// INVITE server: absorb ACK retransmissions in Confirmed, T4 / 0.
    I,
    /// Non-INVITE server: absorb request retransmissions in Completed, 64·T1 / 0 (§17.2.2).
    J,
    /// Non-INVITE client: absorb response retransmissions in Completed, T4 / 0.
    K,
    /// INVITE server: Accepted state lifetime, 64·T1 (RFC 6026 §8.7).
    L,
    /// INVITE client: Accepted state lifetime, 64·T1 (RFC 6026 §8.4).
    M,
    /// INVITE server: our 2xx retransmission until the ACK, T1 doubling to T2 (RFC 3261 §13.3.1.4).
    Retransmit2xx,
}

const COUNT: usize = 13;

impl Timer {
    fn index(self) -> usize {
        self as usize
    }
    fn from_index(i: usize) -> Timer {
        const ALL: [Timer; COUNT] = [
            Timer::A,
            Timer::B,
            Timer::D,
            Timer::E,
            Timer::F,
            Timer::G,
            Timer::H,
            Timer::I,
            Timer::J,
            Timer::K,
            Timer::L,
            Timer::M,
            Timer::Retransmit2xx,
        ];
        ALL[i]
    }
}

/// One transaction's deadlines.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arms `timer` to fire at `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }
    /// Disarms `timer`.
    pub fn clear(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }
    /// Disarms every timer.
    pub fn clear_all(&mut self) {
        self.deadlines = [None; COUNT];
    }
    /// The earliest armed deadline and its timer (ties: the first in RFC order).
    pub fn next(&self) -> Option<(Instant, Timer)> {
        self.deadlines
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (d, Timer::from_index(i))))
            .min()
    }
    /// Disarms and returns the earliest timer due at `now`, if any.
    pub fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let (at, timer) = self.next()?;
        (at <= now).then(|| {
            self.clear(timer);
            timer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_returns_the_earliest_and_takes_only_due_timers() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::B, t0 + Duration::from_secs(32));
        t.set(Timer::A, t0 + Duration::from_millis(500));
        assert_eq!(t.next(), Some((t0 + Duration::from_millis(500), Timer::A)));
        assert_eq!(t.take_due(t0), None);
        assert_eq!(t.take_due(t0 + Duration::from_secs(1)), Some(Timer::A));
        assert_eq!(t.take_due(t0 + Duration::from_secs(1)), None);
        t.clear(Timer::B);
        assert_eq!(t.next(), None);
        assert_eq!(TimerConfig::default().timeout(), Duration::from_secs(32));
    }
}
