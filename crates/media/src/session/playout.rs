//! What the gateway sends on its own, driven by `handle_timeout`: prompt frames paced at the
//! leg's ptime, generated telephone-events, the media timeout; and the common send path
//! (SRTP protection, statistics).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::leg::{EventSend, LegState, Playout};
use super::{Leg, MediaError, MediaEvent, MediaSession, Playback, PromptOutcome, Transmit};
use crate::dtmf::{Digit, EventGenerator};
use crate::rtp::RtpHeader;

/// How late a prompt frame may be sent before it is skipped instead.
const MAX_PLAYOUT_LAG: Duration = Duration::from_millis(200);
/// Volume of generated telephone-events, −dBm0 (RFC 4733 §2.3.4).
const EVENT_VOLUME: u8 = 10;

impl MediaSession {
    pub(super) fn run_timers(&mut self, now: Instant, leg: Leg) {
        let state = &mut self.legs[leg.index()];
        let frame = state.samples_per_frame();
        skip_late_frames(state, now, frame);
        while let Some(due) = state
            .playout
            .as_ref()
            .map(|p| p.next_due)
            .filter(|d| *d <= now)
        {
            let Some(finished) = play_frame(state, due, frame, &mut self.transmits, &mut self.pool)
            else {
                break;
            };
            if let Some(silent) = finished {
                state.playout = None;
                if !silent {
                    self.events.push_back(MediaEvent::PromptFinished {
                        leg,
                        outcome: PromptOutcome::Completed,
                    });
                }
            }
        }
        while let Some(due) = state
            .event_send
            .as_ref()
            .map(|e| e.next_due)
            .filter(|d| *d <= now)
        {
            if !send_event_packet(state, due, &mut self.transmits, &mut self.pool) {
                state.event_send = None;
            }
        }
        state.events.handle_timeout(now);
        if let (Some(due), Some(last)) = (
            state.silence_deadline(self.config.media_timeout),
            state.last_rx,
        ) && now >= due
        {
            state.timeout_reported = true;
            self.events.push_back(MediaEvent::MediaTimeout {
                leg,
                silent_for: now.saturating_duration_since(last),
            });
        }
    }

    pub(super) fn start_playout(
        &mut self,
        now: Instant,
        leg: Leg,
        playback: Playback,
        silent_finish: bool,
    ) -> Result<(), MediaError> {
        let state = &mut self.legs[leg.index()];
        if state.negotiated.is_none() {
            return Err(MediaError::LegNotConfigured { leg });
        }
        if state.stop_playout() {
            self.events.push_back(MediaEvent::PromptFinished {
                leg,
                outcome: PromptOutcome::Stopped,
            });
        }
        let gap_samples = usize::try_from(playback.gap.as_millis() * 8).unwrap_or(0);
        state.playout = Some(Playout {
            prompt: playback.prompt,
            position: 0,
            next_due: now,
            repeats_left: playback.repeat,
            gap_samples,
            in_gap: 0,
            barge_in: playback.barge_in && !silent_finish,
            silent_finish,
        });
        self.run_timers(now, leg);
        Ok(())
    }

    pub(super) fn start_dtmf(
        &mut self,
        now: Instant,
        leg: Leg,
        digit: Digit,
        duration: std::time::Duration,
    ) -> Result<(), MediaError> {
        let state = &mut self.legs[leg.index()];
        let Some(n) = state.negotiated.as_ref() else {
            return Err(MediaError::LegNotConfigured { leg });
        };
        if n.send.telephone_event.is_none() {
            // No telephone-event on this leg: regenerate the key in-band.
            let prompt = LegState::digit_prompt(digit, duration);
            return self.start_playout(now, leg, Playback::once(prompt), true);
        }
        state.event_send = Some(EventSend {
            generator: EventGenerator::new(digit, duration, n.ptime, EVENT_VOLUME),
            next_due: now,
            started: false,
        });
        self.run_timers(now, leg);
        Ok(())
    }
}

/// Sends one prompt frame due at `due`. `None` when there is nothing to play; otherwise
/// `Some(finished)` where `finished` holds the playout's `silent_finish` once it ended.
fn play_frame(
    state: &mut LegState,
    due: Instant,
    frame: usize,
    transmits: &mut VecDeque<Transmit>,
    pool: &mut Vec<Vec<u8>>,
) -> Option<Option<bool>> {
    let (codec, pt, ptime) = state
        .negotiated
        .as_ref()
        .map(|n| (n.send.codec, n.send.audio, n.ptime))?;
    let sending = state.destination().is_some();
    let playout = state.playout.as_mut()?;
    if !sending {
        // On hold the prompt runs on (its timing stays right) but spends no sequence numbers.
        for _ in 0..frame {
            next_sample(playout);
        }
        playout.next_due = due + ptime;
        let len = playout.prompt.samples().len();
        let finished =
            (playout.position >= len && playout.repeats_left == 0).then_some(playout.silent_finish);
        state.outbound.interrupt();
        return Some(finished);
    }
    let header = state
        .outbound
        .local(due, u32::try_from(frame).unwrap_or(160));
    let mut buf = pool.pop().unwrap_or_default();
    RtpHeader {
        marker: header.marker,
        payload_type: pt,
        sequence: header.sequence,
        timestamp: header.timestamp,
        ssrc: state.outbound.ssrc(),
    }
    .write(&[], &mut buf);
    for _ in 0..frame {
        buf.push(codec.encode(next_sample(playout)));
    }
    playout.next_due = due + ptime;
    let len = playout.prompt.samples().len();
    let finished =
        (playout.position >= len && playout.repeats_left == 0).then_some(playout.silent_finish);
    send(state, transmits, pool, buf);
    Some(finished)
}

/// If the shell woke the session more than [`MAX_PLAYOUT_LAG`] after a frame was due, the frames
/// that can no longer be on time are skipped rather than sent in a burst; the stream re-bases on
/// the wallclock with the marker bit (RFC 3551 §4.1), as after any gap.
fn skip_late_frames(state: &mut LegState, now: Instant, frame: usize) {
    let Some(ptime) = state.negotiated.as_ref().map(|n| n.ptime) else {
        return;
    };
    let Some(playout) = state.playout.as_mut() else {
        return;
    };
    let lag = now.saturating_duration_since(playout.next_due);
    if lag <= MAX_PLAYOUT_LAG || ptime.is_zero() {
        return;
    }
    // Keep the frame that is due now; skip the ones before it.
    let skip = u32::try_from(lag.as_nanos() / ptime.as_nanos()).unwrap_or(u32::MAX);
    for _ in 0..u64::from(skip) * frame as u64 {
        if playout.position >= playout.prompt.samples().len() && playout.repeats_left == 0 {
            break;
        }
        next_sample(playout);
    }
    playout.next_due += ptime * skip;
    state.stats.frames_skipped += u64::from(skip);
    state.outbound.interrupt();
}

fn next_sample(p: &mut Playout) -> i16 {
    let samples = p.prompt.samples();
    if let Some(&s) = samples.get(p.position) {
        p.position += 1;
        return s;
    }
    if p.repeats_left == 0 {
        return 0;
    }
    if p.in_gap < p.gap_samples {
        p.in_gap += 1;
        return 0;
    }
    p.repeats_left -= 1;
    p.in_gap = 0;
    p.position = 0;
    match samples.first() {
        Some(&s) => {
            p.position = 1;
            s
        }
        None => 0,
    }
}

/// Sends the next generated telephone-event packet; `false` when the event is complete.
fn send_event_packet(
    state: &mut LegState,
    due: Instant,
    transmits: &mut VecDeque<Transmit>,
    pool: &mut Vec<Vec<u8>>,
) -> bool {
    let Some((pt, ptime)) = state
        .negotiated
        .as_ref()
        .and_then(|n| n.send.telephone_event.map(|pt| (pt, n.ptime)))
    else {
        return false;
    };
    let Some(sender) = state.event_send.as_mut() else {
        return false;
    };
    let Some(packet) = sender.generator.next_packet() else {
        return false;
    };
    let start = !sender.started;
    sender.started = true;
    sender.next_due = due + ptime;
    if state.destination().is_none() {
        state.outbound.interrupt();
        return true;
    }
    let header = state
        .outbound
        .local_event(due, start, u32::from(packet.event.duration));
    let mut buf = pool.pop().unwrap_or_default();
    RtpHeader {
        marker: packet.marker,
        payload_type: pt,
        sequence: header.sequence,
        timestamp: header.timestamp,
        ssrc: state.outbound.ssrc(),
    }
    .write(&packet.event.to_bytes(), &mut buf);
    send(state, transmits, pool, buf);
    true
}

/// Queues `buf` towards `state`'s peer, SRTP-protecting it if the leg uses SRTP.
pub(super) fn send(
    state: &mut LegState,
    transmits: &mut VecDeque<Transmit>,
    pool: &mut Vec<Vec<u8>>,
    buf: Vec<u8>,
) {
    let Some(destination) = state.destination() else {
        pool.push(buf);
        return;
    };
    let payload = match state
        .negotiated
        .as_mut()
        .and_then(|n| n.outbound_srtp.as_mut())
    {
        Some(ctx) => match ctx.protect_rtp(&buf) {
            Ok(p) => {
                let mut old = buf;
                old.clear();
                pool.push(old);
                p
            }
            Err(_) => {
                // Only a context past 2^48 packets fails here (RFC 3711 §9.2): not sendable.
                return;
            }
        },
        None => buf,
    };
    state.stats.packets_sent += 1;
    state.stats.bytes_sent += payload.len() as u64;
    transmits.push_back(Transmit {
        leg: state.leg,
        destination,
        payload,
    });
}
