//! Receive-side state of one RTP source (SSRC): extended sequence numbers, loss and
//! interarrival jitter (RFC 3550 Appendix A.1, A.3, A.8).
//!
//! The state is per SSRC because a new source on the same transport (transfer, re-anchoring;
//! RFC 3550 §8) has its own random sequence and timestamp bases: one shared "last sequence"
//! would judge every packet of the new source too old or too far ahead.

use std::time::Instant;

/// RFC 3550 A.1: a jump larger than this is a restart or a misbehaving sender.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a packet this far behind is a late duplicate or reordering.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// How a packet related to the sequence seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqClass {
    /// The first packet of the source.
    First,
    /// In order (possibly after a gap).
    InOrder,
    /// Behind the highest sequence received: late or reordered.
    Late,
    /// A jump outside MAX_DROPOUT; accepted as a restart of the sequence if it repeats.
    Jump,
}

/// Per-SSRC receive statistics.
#[derive(Debug, Clone)]
pub struct InboundStream {
    ssrc: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u64,
    late: u64,
    /// RFC 3550 A.8 jitter, scaled by 16 (integer form of the estimator).
    jitter_q4: u64,
    last_transit: Option<i64>,
    clock_base: Instant,
    pub(crate) last_arrival: Instant,
}

impl InboundStream {
    /// State for `ssrc`, starting with its first packet.
    pub fn new(now: Instant, ssrc: u32, seq: u16) -> Self {
        Self {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: SEQ_MOD + 1,
            received: 0,
            late: 0,
            jitter_q4: 0,
            last_transit: None,
            clock_base: now,
            last_arrival: now,
        }
    }

    /// The source.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Records a packet's sequence number (RFC 3550 A.1 `update_seq`, without probation: the
    /// source is already trusted by its latched address).
    pub fn on_sequence(&mut self, now: Instant, seq: u16) -> SeqClass {
        self.last_arrival = now;
        if self.received == 0 {
            self.received = 1;
            return SeqClass::First;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        let class = if delta == 0 {
            // Duplicate of the highest: counts as late.
            self.late += 1;
            SeqClass::Late
        } else if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
            SeqClass::InOrder
        } else if delta <= u16::MAX - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the sender restarted (A.1).
                self.max_seq = seq;
                self.cycles = 0;
                self.base_seq = u32::from(seq);
                self.received = 0;
                self.bad_seq = SEQ_MOD + 1;
            } else {
                // Not counted until the next packet confirms the new sequence (A.1).
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return SeqClass::Jump;
            }
            SeqClass::Jump
        } else {
            self.late += 1;
            SeqClass::Late
        };
        self.received += 1;
        class
    }

    /// Updates the interarrival jitter with an audio packet's timestamp (RFC 3550 A.8):
    /// J += (|D(i−1,i)| − J)/16, arrival measured in timestamp units of `clock_rate`.
    pub fn on_timestamp(&mut self, now: Instant, timestamp: u32, clock_rate: u32) {
        let elapsed = now.saturating_duration_since(self.clock_base);
        let arrival = (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000) as i64;
        let transit = arrival.wrapping_sub(i64::from(timestamp));
        if let Some(last) = self.last_transit {
            // Transit differences are taken modulo 2^32 so a timestamp wrap is not a jump.
            let d = i64::from((transit.wrapping_sub(last) as u32 as i32).unsigned_abs());
            let j = self.jitter_q4 as i64;
            self.jitter_q4 = (j + d - ((j + 8) >> 4)).max(0) as u64;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected from the sequence range (A.3).
    pub fn expected(&self) -> u64 {
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        (extended_max + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Cumulative packets lost (A.3: expected − received, clamped at zero).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Packets received from this source.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets that arrived behind the highest sequence number.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loss_counts_gaps_and_wrap() {
        let t0 = Instant::now();
        let mut s = InboundStream::new(t0, 1, 65533);
        for seq in [65533u16, 65534, 0, 2, 3] {
            s.on_sequence(t0, seq);
        }
        assert_eq!(s.expected(), 7);
        assert_eq!(s.received(), 5);
        assert_eq!(s.lost(), 2);
        assert_eq!(s.on_sequence(t0, 1), SeqClass::Late);
        assert_eq!(s.late(), 1);
        // A reordered packet fills its gap (A.3: lost = expected − received).
        assert_eq!(s.lost(), 1);
    }

    #[test]
    fn a_confirmed_jump_restarts_the_sequence_and_a_lone_one_is_ignored() {
        let t0 = Instant::now();
        let mut s = InboundStream::new(t0, 1, 100);
        for seq in 100..110u16 {
            s.on_sequence(t0, seq);
        }
        // One wild packet: neither counted nor moving the sequence.
        assert_eq!(s.on_sequence(t0, 40_000), SeqClass::Jump);
        assert_eq!((s.received(), s.lost()), (10, 0));
        assert_eq!(s.on_sequence(t0, 110), SeqClass::InOrder);
        // Two in a row: the sender restarted its sequence (RFC 3550 A.1).
        assert_eq!(s.on_sequence(t0, 20_000), SeqClass::Jump);
        assert_eq!(s.on_sequence(t0, 20_001), SeqClass::Jump);
        assert_eq!(s.on_sequence(t0, 20_002), SeqClass::InOrder);
        assert_eq!((s.received(), s.expected(), s.lost()), (2, 2, 0));
    }

    #[test]
    fn jitter_is_zero_for_perfect_pacing_and_grows_with_variation() {
        let t0 = Instant::now();
        let mut s = InboundStream::new(t0, 1, 0);
        for i in 0..50u32 {
            s.on_timestamp(
                t0 + Duration::from_millis(20 * u64::from(i)),
                1000 + 160 * i,
                8000,
            );
        }
        assert_eq!(s.jitter(), 0);
        // Alternate 5 ms late / on time: |D| = 40 units (8 kHz) every packet, so J converges to
        // 40; the integer estimator of A.8 settles at 39 or 40.
        for i in 50..400u32 {
            let wobble = if i % 2 == 0 { 5 } else { 0 };
            s.on_timestamp(
                t0 + Duration::from_millis(20 * u64::from(i) + wobble),
                1000 + 160 * i,
                8000,
            );
        }
        assert!((39..=40).contains(&s.jitter()), "jitter {}", s.jitter());
    }
}
