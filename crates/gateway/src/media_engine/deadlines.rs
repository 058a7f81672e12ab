//! Per-call deadlines of one media thread, in one heap.
//!
//! A call's deadline moves on nearly every packet (the media timeout is pushed back by each
//! one), so entries are not updated in place: each call remembers the instant it is scheduled
//! at, a new entry is pushed only when the deadline moves *earlier*, and an entry popped for a
//! call whose deadline moved later is pushed again at the new instant. The heap thus holds at
//! most a few entries per call, and a packet costs no heap work at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The heap. `K` identifies a call.
pub(super) struct Deadlines<K: Ord + Copy> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

/// What a call keeps about its place in the heap.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Slot {
    scheduled: Option<Instant>,
}

impl<K: Ord + Copy> Deadlines<K> {
    pub(super) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }

    /// The call `key` wants to wake at `at` (or never): schedules it unless an entry at or
    /// before `at` already exists.
    pub(super) fn schedule(&mut self, key: K, slot: &mut Slot, at: Option<Instant>) {
        let Some(at) = at else { return };
        if slot.scheduled.is_none_or(|s| at < s) {
            slot.scheduled = Some(at);
            self.heap.push(Reverse((at, key)));
        }
    }

    /// The earliest instant in the heap (possibly stale: waking early is harmless).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the next entry due at `now`. The caller checks it against the call with
    /// [`Deadlines::is_current`]; stale entries (the call is gone or was rescheduled earlier)
    /// are dropped there.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Whether an entry popped at `at` is the one the call's `slot` is waiting for; if so the
    /// slot is cleared (the caller reschedules the call after serving it).
    pub(super) fn is_current(slot: &mut Slot, at: Instant) -> bool {
        if slot.scheduled == Some(at) {
            slot.scheduled = None;
            true
        } else {
            false
        }
    }

    /// Entries in the heap (live and stale).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_later_deadline_adds_no_entry_and_an_earlier_one_supersedes() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Deadlines::new();
        let mut slot = Slot::default();
        d.schedule(7u64, &mut slot, Some(ms(100)));
        // Pushed back by every packet: no new entries.
        for n in 101..200 {
            d.schedule(7, &mut slot, Some(ms(n)));
        }
        assert_eq!(d.len(), 1);
        // Earlier: a new entry, the old one becomes stale.
        d.schedule(7, &mut slot, Some(ms(40)));
        assert_eq!(d.len(), 2);
        assert_eq!(d.next(), Some(ms(40)));
        assert_eq!(d.pop_due(ms(39)), None);
        let (at, key) = d.pop_due(ms(40)).unwrap();
        assert_eq!((at, key), (ms(40), 7));
        assert!(Deadlines::<u64>::is_current(&mut slot, at));
        // The stale entry at 100 ms is recognised as such.
        let (at, _) = d.pop_due(ms(100)).unwrap();
        assert!(!Deadlines::<u64>::is_current(&mut slot, at));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn calls_come_due_in_deadline_order() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        let mut slots = [Slot::default(); 3];
        for (k, (slot, ms)) in slots.iter_mut().zip([30u64, 10, 20]).enumerate() {
            d.schedule(k, slot, Some(t0 + Duration::from_millis(ms)));
        }
        d.schedule(0, &mut Slot::default(), None);
        let order: Vec<usize> = std::iter::from_fn(|| d.pop_due(t0 + Duration::from_secs(1)))
            .map(|(_, k)| k)
            .collect();
        assert_eq!(order, [1, 2, 0]);
    }
}
