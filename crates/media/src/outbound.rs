//! The stream the gateway sends on one leg: one SSRC whose sequence numbers and timestamps stay
//! continuous while what it carries switches between prompts, tones, generated events and relayed
//! audio from any number of upstream SSRCs.
//!
//! RFC 3550 §5.1: sequence +1 per packet, timestamp linear in the sampling clock. At every
//! switch of source the stream re-bases: the next sequence number follows the last one sent and
//! the timestamp advances by the wallclock time elapsed since the last packet (never less than
//! that packet's duration), and the first packet carries the marker bit (RFC 3551 §4.1) —
//! option A of field case 026. Within one upstream source, offsets are constant, so upstream
//! gaps and reordering stay visible to the receiver.

use std::time::Instant;

/// Initial values of an outgoing stream; random per RFC 3550 §5.1, supplied by the caller
/// (the core takes no randomness of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInit {
    /// SSRC the gateway uses on this leg.
    pub ssrc: u32,
    /// First sequence number.
    pub sequence: u16,
    /// First timestamp.
    pub timestamp: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Relay(u32),
    Local,
}

/// Sequence/timestamp/marker chosen for one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutHeader {
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
}

/// Outgoing stream state of one leg.
#[derive(Debug, Clone)]
pub struct OutboundStream {
    ssrc: u32,
    next_seq: u16,
    last_ts: u32,
    last_samples: u32,
    last_sent: Option<Instant>,
    source: Option<Source>,
    seq_offset: u16,
    ts_offset: u32,
    clock_rate: u32,
}

impl OutboundStream {
    /// A stream that has sent nothing yet; `clock_rate` is the RTP clock (8000 for G.711).
    pub fn new(init: StreamInit, clock_rate: u32) -> Self {
        Self {
            ssrc: init.ssrc,
            next_seq: init.sequence,
            last_ts: init.timestamp,
            last_samples: 0,
            last_sent: None,
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            clock_rate,
        }
    }

    /// The SSRC of this stream.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Header for a packet relayed from upstream source `ssrc` with its own `seq`/`ts`;
    /// `samples` is the packet's duration.
    pub fn relay(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        marker: bool,
        samples: u32,
    ) -> OutHeader {
        let switched = self.source != Some(Source::Relay(ssrc));
        if switched {
            self.seq_offset = self.next_seq.wrapping_sub(seq);
            self.ts_offset = self.resume_timestamp(now).wrapping_sub(ts);
            self.source = Some(Source::Relay(ssrc));
        }
        let sequence = seq.wrapping_add(self.seq_offset);
        let timestamp = ts.wrapping_add(self.ts_offset);
        // Serial-number comparison (RFC 1982): only newer packets move the stream forward.
        if switched || (sequence.wrapping_sub(self.next_seq) as i16) >= 0 {
            self.next_seq = sequence.wrapping_add(1);
        }
        if switched || (timestamp.wrapping_sub(self.last_ts) as i32) >= 0 {
            self.last_ts = timestamp;
            self.last_samples = samples;
        }
        self.last_sent = Some(now);
        OutHeader {
            sequence,
            timestamp,
            marker: marker || switched,
        }
    }

    /// Header for a locally generated audio frame of `samples` (prompt, tone) due at `now`.
    pub fn local(&mut self, now: Instant, samples: u32) -> OutHeader {
        let switched = self.source != Some(Source::Local);
        let timestamp = if switched {
            self.resume_timestamp(now)
        } else {
            self.last_ts.wrapping_add(self.last_samples)
        };
        self.source = Some(Source::Local);
        self.emit(now, timestamp, samples, switched)
    }

    /// Header for a locally generated telephone-event packet (RFC 4733 §2.5.1.2): every packet
    /// of the event carries the start timestamp; `start` is set for its first packet and
    /// `duration` is the event's duration so far.
    pub fn local_event(&mut self, now: Instant, start: bool, duration: u32) -> OutHeader {
        let switched = self.source != Some(Source::Local);
        let timestamp = if switched {
            self.resume_timestamp(now)
        } else if start {
            self.last_ts.wrapping_add(self.last_samples)
        } else {
            self.last_ts
        };
        self.source = Some(Source::Local);
        self.emit(now, timestamp, duration, start || switched)
    }

    /// Forgets the current source, so the next packet re-bases with the marker bit.
    pub fn interrupt(&mut self) {
        self.source = None;
    }

    fn emit(&mut self, now: Instant, timestamp: u32, samples: u32, marker: bool) -> OutHeader {
        let sequence = self.next_seq;
        self.next_seq = sequence.wrapping_add(1);
        self.last_ts = timestamp;
        self.last_samples = samples;
        self.last_sent = Some(now);
        OutHeader {
            sequence,
            timestamp,
            marker,
        }
    }

    /// Where the timestamp continues after a switch: advanced by the wallclock time since the
    /// last packet, and at least by that packet's duration.
    fn resume_timestamp(&self, now: Instant) -> u32 {
        let Some(last) = self.last_sent else {
            return self.last_ts;
        };
        let elapsed = now.saturating_duration_since(last);
        let units = elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000;
        let units = u32::try_from(units)
            .unwrap_or(u32::MAX)
            .max(self.last_samples);
        self.last_ts.wrapping_add(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const INIT: StreamInit = StreamInit {
        ssrc: 7,
        sequence: 65534,
        timestamp: u32::MAX - 100,
    };

    #[test]
    fn relay_switch_rebases_and_marks_then_keeps_offsets() {
        let t0 = Instant::now();
        let mut out = OutboundStream::new(INIT, 8000);
        let a = out.local(t0, 160);
        assert_eq!(
            (a.sequence, a.timestamp, a.marker),
            (65534, u32::MAX - 100, true)
        );
        let b = out.local(t0 + Duration::from_millis(20), 160);
        assert_eq!((b.sequence, b.timestamp, b.marker), (65535, 59, false));
        // Relay starts 60 ms after the last local frame: ts +480, seq +1, M=1.
        let c = out.relay(
            t0 + Duration::from_millis(80),
            99,
            5000,
            1_000_000,
            false,
            160,
        );
        assert_eq!((c.sequence, c.timestamp, c.marker), (0, 59 + 480, true));
        // A gap upstream (seq 5002) stays a gap downstream.
        let d = out.relay(
            t0 + Duration::from_millis(120),
            99,
            5002,
            1_000_320,
            false,
            160,
        );
        assert_eq!((d.sequence, d.timestamp, d.marker), (2, 59 + 800, false));
        // The missing packet arrives late: it keeps its place, the stream does not move back.
        let e = out.relay(
            t0 + Duration::from_millis(121),
            99,
            5001,
            1_000_160,
            false,
            160,
        );
        assert_eq!((e.sequence, e.timestamp), (1, 59 + 640));
        let f = out.local(t0 + Duration::from_millis(121), 160);
        assert_eq!((f.sequence, f.timestamp, f.marker), (3, 59 + 960, true));
    }

    #[test]
    fn events_keep_their_start_timestamp() {
        let t0 = Instant::now();
        let mut out = OutboundStream::new(INIT, 8000);
        let s = out.local_event(t0, true, 160);
        let u = out.local_event(t0 + Duration::from_millis(20), false, 320);
        let e = out.local_event(t0 + Duration::from_millis(40), false, 480);
        assert_eq!([s.timestamp, u.timestamp, e.timestamp], [INIT.timestamp; 3]);
        assert_eq!([s.marker, u.marker, e.marker], [true, false, false]);
        assert_eq!([s.sequence, u.sequence, e.sequence], [65534, 65535, 0]);
        let next = out.local(t0 + Duration::from_millis(60), 160);
        assert_eq!(next.timestamp, INIT.timestamp.wrapping_add(480));
    }
}
