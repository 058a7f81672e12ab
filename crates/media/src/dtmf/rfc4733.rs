//! RFC 4733 telephone-events: payload format, a receiver that reports each key press once, and
//! a sender.
//!
//! An event is identified by its RTP timestamp, the event start (RFC 4733 §2.5.1.2): updates
//! and the three end copies (§2.5.1.4) carry the same timestamp, so they never produce a second
//! digit; a new timestamp is a new event even when the marker bit was lost (§2.2.2) and even
//! when the code repeats (the same key pressed twice).

use std::time::{Duration, Instant};

use super::Digit;

/// How long an event may go without an update before it is ended by the receiver
/// (RFC 4733 §2.5.2.2 soft state: the sender refreshes at least every 50 ms or so).
pub const EVENT_SOFT_TIMEOUT: Duration = Duration::from_millis(750);

/// Number of ended events remembered, so that late end copies or updates stay duplicates.
const ENDED_MEMORY: usize = 8;

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Shorter than the 4-byte event block (RFC 4733 §2.3).
    #[error("telephone-event payload of {len} bytes is shorter than the 4-byte event block")]
    TooShort {
        /// Payload length.
        len: usize,
    },
}

/// One RFC 4733 §2.3 event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–15 are DTMF keys, §3.2).
    pub code: u8,
    /// E bit: this is (a copy of) the final packet of the event.
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units; saturates at 0xFFFF (§2.5.1.3).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload (further blocks, as sent by some gateways for
    /// simultaneous events, are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        match payload {
            [code, flags, d0, d1, ..] => Ok(Self {
                code: *code,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(EventError::TooShort { len: payload.len() }),
        }
    }

    /// The 4-byte wire form (R bit zero).
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.code,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d0,
            d1,
        ]
    }
}

/// A key press reported by [`EventDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectedEvent {
    /// The key.
    pub digit: Digit,
    /// RTP timestamp of the event start.
    pub rtp_timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    ssrc: u32,
    timestamp: u32,
    code: u8,
    duration: u16,
    last_update: Instant,
}

/// Receiver state for telephone-events of one leg.
#[derive(Debug, Clone)]
pub struct EventDetector {
    active: Option<Active>,
    ended: [Option<(u32, u32)>; ENDED_MEMORY],
    ended_next: usize,
    merge_contiguous: bool,
}

impl EventDetector {
    /// A detector. `merge_contiguous` enables the robustness rule for senders that advance the
    /// timestamp with every packet of one key press (non-conformant to RFC 4733 §2.5.1.2): a new
    /// timestamp with the same code, no end in between and no marker, that starts within the
    /// running event's duration, continues that event.
    pub fn new(merge_contiguous: bool) -> Self {
        Self {
            active: None,
            ended: [None; ENDED_MEMORY],
            ended_next: 0,
            merge_contiguous,
        }
    }

    /// Feeds one packet on the telephone-event payload type; returns the key when this packet
    /// starts a new event.
    pub fn on_packet(
        &mut self,
        now: Instant,
        ssrc: u32,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<DetectedEvent>, EventError> {
        let event = TelephoneEvent::parse(payload)?;
        if self.ended.contains(&Some((ssrc, timestamp))) {
            // An end copy or a late update of an event already finished (RFC 4733 §2.5.1.4).
            return Ok(None);
        }
        if let Some(active) = self.active.as_mut()
            && active.ssrc == ssrc
        {
            let same = active.timestamp == timestamp;
            // RFC 4733 §2.5.1.3: a long event continues as a new segment whose timestamp is the
            // previous one plus the saturated duration 0xFFFF.
            let long_segment = timestamp.wrapping_sub(active.timestamp) == 0xffff;
            let offset = timestamp.wrapping_sub(active.timestamp);
            let contiguous = self.merge_contiguous
                && !marker
                && offset > 0
                && offset <= u32::from(active.duration);
            if same || (event.code == active.code && (long_segment || contiguous)) {
                if !same {
                    let old = active.timestamp;
                    active.timestamp = timestamp;
                    self.remember_ended(ssrc, old);
                }
                return Ok(self.update(now, ssrc, timestamp, event, None));
            }
        }
        // A new event: the previous one (if any) is over.
        self.end_active();
        self.active = Some(Active {
            ssrc,
            timestamp,
            code: event.code,
            duration: event.duration,
            last_update: now,
        });
        let detected = Digit::from_event_code(event.code).map(|digit| DetectedEvent {
            digit,
            rtp_timestamp: timestamp,
        });
        Ok(self.update(now, ssrc, timestamp, event, detected))
    }

    /// Whether the robustness rule for non-conformant senders is on.
    pub fn merges_contiguous(&self) -> bool {
        self.merge_contiguous
    }

    /// When the running event times out without an end packet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.map(|a| a.last_update + EVENT_SOFT_TIMEOUT)
    }

    /// Ends an event whose updates stopped (soft state); a later end copy stays a duplicate.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .active
            .is_some_and(|a| now >= a.last_update + EVENT_SOFT_TIMEOUT)
        {
            self.end_active();
        }
    }

    /// Ends any running event (the sending SSRC changed; RFC 3550 §8).
    pub fn reset(&mut self) {
        self.end_active();
    }

    /// Whether an event is in progress.
    pub fn in_progress(&self) -> bool {
        self.active.is_some()
    }

    fn update(
        &mut self,
        now: Instant,
        ssrc: u32,
        timestamp: u32,
        event: TelephoneEvent,
        detected: Option<DetectedEvent>,
    ) -> Option<DetectedEvent> {
        if let Some(active) = self.active.as_mut() {
            active.duration = active.duration.max(event.duration);
            active.last_update = now;
        }
        if event.end {
            self.active = None;
            self.remember_ended(ssrc, timestamp);
        }
        detected
    }

    fn end_active(&mut self) {
        if let Some(a) = self.active.take() {
            self.remember_ended(a.ssrc, a.timestamp);
        }
    }

    fn remember_ended(&mut self, ssrc: u32, timestamp: u32) {
        if let Some(slot) = self.ended.get_mut(self.ended_next) {
            *slot = Some((ssrc, timestamp));
        }
        self.ended_next = (self.ended_next + 1) % ENDED_MEMORY;
    }
}

/// One packet produced by [`EventGenerator`]: the marker bit and the 4-byte payload. All
/// packets of one event share the event's start timestamp (RFC 4733 §2.5.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Set on the first packet of the event (§2.2.2).
    pub marker: bool,
    /// The event block.
    pub event: TelephoneEvent,
}

/// Produces the packets of one key press: a start packet, updates every packet interval, and
/// the final packet three times (RFC 4733 §2.5.1.2–§2.5.1.4).
#[derive(Debug, Clone)]
pub struct EventGenerator {
    code: u8,
    volume: u8,
    total: u16,
    step: u16,
    sent: u16,
    end_copies: u8,
    started: bool,
}

impl EventGenerator {
    /// A key press of `duration` sent every `ptime` (8 kHz clock), at `volume` −dBm0
    /// (10 is usual). Durations beyond 0xFFFF units (8.19 s) are clamped.
    pub fn new(digit: Digit, duration: Duration, ptime: Duration, volume: u8) -> Self {
        let units =
            |d: Duration| u16::try_from(d.as_millis().saturating_mul(8)).unwrap_or(u16::MAX);
        let step = units(ptime).max(8);
        Self {
            code: digit.event_code(),
            volume: volume.min(63),
            total: units(duration).max(1),
            step,
            sent: 0,
            end_copies: 0,
            started: false,
        }
    }

    /// The next packet, or `None` once the third end copy was produced.
    pub fn next_packet(&mut self) -> Option<EventPacket> {
        if self.end_copies >= 3 {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        self.sent = self.sent.saturating_add(self.step).min(self.total);
        let end = self.sent >= self.total;
        if end {
            self.end_copies += 1;
        }
        Some(EventPacket {
            marker,
            event: TelephoneEvent {
                code: self.code,
                end,
                volume: self.volume,
                duration: self.sent,
            },
        })
    }
}

#[cfg(test)]
mod tests;
