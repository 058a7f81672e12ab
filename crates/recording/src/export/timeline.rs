//! Placement of decoded frames on a sample timeline, per leg.
//!
//! Within one run of a leg's stream the RTP timestamp places each frame exactly (RFC 3550 §5.1:
//! it advances with the sampling clock), so packet durations are taken from the timestamps and
//! never assumed (a 30 ms packet is 240 samples). The arrival time anchors a run: the first
//! frame of a leg, and any frame whose timestamp-implied position is more than
//! [`REANCHOR_TOLERANCE`] samples away from its arrival position (a new SSRC with an unrelated
//! timestamp base, a timestamp jump, a pause without a timestamp gap, clock drift), starts a new
//! run at its arrival position. Samples nobody wrote are silence.

use crate::frames::Leg;

/// How far (in samples, 0.5 s at 8 kHz) the timestamp may disagree with the arrival time before
/// the arrival time wins. Larger than any jitter buffer's delay, smaller than a noticeable shift.
pub(crate) const REANCHOR_TOLERANCE: i64 = 4000;

/// Samples kept behind the newest written position for late (reordered) frames: 1 s.
pub(crate) const WINDOW: u64 = 8000;

/// The runs of one leg: the current one and the one before it, each as the
/// `(rtp_timestamp, position)` of its anchor frame.
#[derive(Clone, Copy, Default)]
struct Anchor {
    current: Option<(u32, i64)>,
    previous: Option<(u32, i64)>,
}

/// Position by timestamp within a run, if it agrees with the arrival position.
fn fits(run: Option<(u32, i64)>, ts: u32, arrival_pos: i64) -> Option<i64> {
    let (anchor_ts, anchor_pos) = run?;
    // RFC 3550 §5.1: timestamps wrap; the signed 32-bit difference is the delta.
    let by_ts = anchor_pos + i64::from(ts.wrapping_sub(anchor_ts) as i32);
    ((by_ts - arrival_pos).abs() <= REANCHOR_TOLERANCE).then_some(by_ts)
}

impl Anchor {
    /// Position of a frame, and the position it must end before. A frame that fits neither run
    /// starts a new one at its arrival position. A frame that fits only the previous run is a
    /// straggler of the old stream (a late packet from before an SSRC change, case 025): it is
    /// placed by that run, may only fill the time before the current run began, and does not
    /// disturb the current run.
    fn place(&mut self, ts: u32, arrival_pos: i64) -> (i64, Option<i64>) {
        if let Some(pos) = fits(self.current, ts, arrival_pos) {
            return (pos, None);
        }
        if let Some(pos) = fits(self.previous, ts, arrival_pos) {
            return (pos, self.current.map(|(_, start)| start));
        }
        self.previous = self.current;
        self.current = Some((ts, arrival_pos));
        (arrival_pos, None)
    }
}

/// A two-channel sample buffer from `flushed` on, with per-leg anchors.
pub(crate) struct Timeline {
    anchors: [Anchor; 2],
    /// Arrival (ms) of the first frame placed: sample 0.
    origin_ms: Option<u64>,
    /// Absolute index of `buf[0]`.
    flushed: u64,
    /// Samples from `flushed`, `[caller, consultant]`.
    buf: Vec<[i16; 2]>,
    /// Samples that fell before `flushed` (too late to place) or before the origin.
    pub(crate) dropped_samples: u64,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Self {
            anchors: [Anchor::default(); 2],
            origin_ms: None,
            flushed: 0,
            buf: Vec::with_capacity(3 * WINDOW as usize),
            dropped_samples: 0,
        }
    }

    /// Sets the origin from the first frame of the file (either leg), so single-leg exports
    /// line up with stereo ones.
    pub(crate) fn observe_origin(&mut self, arrival_ms: u64) {
        self.origin_ms.get_or_insert(arrival_ms);
    }

    /// Position of a frame of `leg` with timestamp `ts` that arrived at `arrival_ms`, and the
    /// position its samples must end before (for stragglers).
    pub(crate) fn position(&mut self, leg: Leg, ts: u32, arrival_ms: u64) -> (i64, Option<i64>) {
        let origin = self.origin_ms.unwrap_or(arrival_ms);
        let ms = i64::try_from(arrival_ms).unwrap_or(i64::MAX) - i64::try_from(origin).unwrap_or(0);
        let arrival_pos = ms.saturating_mul(8);
        self.anchors[leg_index(leg)].place(ts, arrival_pos)
    }

    /// The first absolute sample not yet handed out.
    pub(crate) fn flushed(&self) -> u64 {
        self.flushed
    }

    /// The end of the written region (absolute).
    pub(crate) fn end(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Writes `samples` for `leg` from absolute position `pos`, stopping before `limit`.
    /// Samples before `flushed` or from `limit` on are dropped. The caller flushes first if
    /// `pos` is far ahead (see [`Timeline::flush_target_before`]).
    pub(crate) fn write(&mut self, leg: Leg, pos: i64, samples: &[i16], limit: Option<i64>) {
        let ch = leg_index(leg);
        let keep = match limit {
            Some(limit) => usize::try_from(limit.saturating_sub(pos))
                .unwrap_or(0)
                .min(samples.len()),
            None => samples.len(),
        };
        self.dropped_samples += (samples.len() - keep) as u64;
        let samples = &samples[..keep];
        let flushed = i64::try_from(self.flushed).unwrap_or(i64::MAX);
        let skip = usize::try_from(flushed.saturating_sub(pos))
            .unwrap_or(0)
            .min(samples.len());
        self.dropped_samples += skip as u64;
        let samples = &samples[skip..];
        if samples.is_empty() {
            return;
        }
        let start = usize::try_from(pos.saturating_add(skip as i64) - flushed).unwrap_or(0);
        let end = start + samples.len();
        if self.buf.len() < end {
            self.buf.resize(end, [0, 0]);
        }
        for (slot, s) in self.buf[start..end].iter_mut().zip(samples) {
            slot[ch] = *s;
        }
    }

    /// How far to flush before writing at `pos`, keeping at most [`WINDOW`] samples behind the
    /// newest position in memory.
    pub(crate) fn flush_target_before(&self, pos: i64, len: usize) -> Option<u64> {
        let newest = u64::try_from(pos.saturating_add(len as i64)).ok()?;
        let target = newest.checked_sub(WINDOW)?;
        (target > self.flushed + WINDOW).then_some(target)
    }

    /// Hands out samples up to absolute `target` (silence where nothing was written) through
    /// `emit`, in blocks, and forgets them.
    pub(crate) fn flush_to<E>(
        &mut self,
        target: u64,
        mut emit: impl FnMut(&[[i16; 2]]) -> Result<(), E>,
    ) -> Result<(), E> {
        if target <= self.flushed {
            return Ok(());
        }
        let from_buf = usize::try_from(target - self.flushed)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        emit(&self.buf[..from_buf])?;
        self.buf.drain(..from_buf);
        let mut silence = target - self.flushed - from_buf as u64;
        let zeros = [[0i16; 2]; 4096];
        while silence > 0 {
            let n = silence.min(zeros.len() as u64) as usize;
            emit(&zeros[..n])?;
            silence -= n as u64;
        }
        self.flushed = target;
        Ok(())
    }
}

fn leg_index(leg: Leg) -> usize {
    match leg {
        Leg::Caller => 0,
        Leg::Consultant => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_place_within_a_run() {
        let mut a = Anchor::default();
        assert_eq!(a.place(1000, 80), (80, None));
        // 30 ms packets: 240 samples each, with arrival jitter.
        assert_eq!(a.place(1240, 80 + 240 + 40), (320, None));
        assert_eq!(a.place(1480, 80 + 480 - 16), (560, None));
        // Wrap-around of the 32-bit timestamp.
        let mut w = Anchor::default();
        assert_eq!(w.place(u32::MAX - 79, 0), (0, None));
        assert_eq!(w.place(80, 160), (160, None));
    }

    #[test]
    fn unrelated_timestamps_re_anchor_on_arrival() {
        let mut a = Anchor::default();
        assert_eq!(a.place(160_000, 0), (0, None));
        // New SSRC / prompt-to-relay switch: ts jumps back to 9000 (case 026).
        assert_eq!(a.place(9000, 160), (160, None));
        // ...and the new run continues by timestamp.
        assert_eq!(a.place(9160, 330), (320, None));
        // A straggler of the old stream goes where its own run puts it, before the new run...
        assert_eq!(a.place(159_840, 500), (-160, Some(160)));
        // ...and the new run is undisturbed.
        assert_eq!(a.place(9320, 480), (480, None));
        // A pause of 10 s with the timestamp carrying on (hold): arrival wins.
        assert_eq!(a.place(9480, 80_320), (80_320, None));
    }

    #[test]
    fn flush_emits_buffer_then_silence() {
        let mut t = Timeline::new();
        t.write(Leg::Caller, 2, &[1, 2], None);
        t.write(Leg::Consultant, 3, &[7, 8, 9], Some(4));
        let mut out = Vec::new();
        t.flush_to(6, |s| {
            out.extend_from_slice(s);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(out, [[0, 0], [0, 0], [1, 0], [2, 7], [0, 0], [0, 0]]);
        // Too late now: dropped.
        assert_eq!(t.dropped_samples, 2);
        t.write(Leg::Caller, 4, &[5, 6, 8], None);
        assert_eq!(t.dropped_samples, 4);
        assert_eq!(t.end(), 7);
    }
}
