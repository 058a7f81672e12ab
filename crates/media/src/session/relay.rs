//! The per-packet path (receive, detect, tap, relay) and the timer-driven sending of prompts
//! and generated events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::leg::{EventSend, Latch, LegState, PayloadKind, Playout, SourceUpdate};
use super::{Leg, MediaError, MediaEvent, MediaSession, Playback, PromptOutcome, Transmit};
use crate::dtmf::{Digit, DtmfSource, EventGenerator};
use crate::rtp::{self, PacketKind, RtpHeader, RtpView};
use crate::tap::{FrameKind, TapFrame};

/// Decoded samples are fed to the in-band detector in chunks of this size (no allocation).
const DECODE_CHUNK: usize = 160;
/// How late a prompt frame may be sent before it is skipped instead.
const MAX_PLAYOUT_LAG: Duration = Duration::from_millis(200);
/// Volume of generated telephone-events, −dBm0 (RFC 4733 §2.3.4).
const EVENT_VOLUME: u8 = 10;

impl MediaSession {
    pub(super) fn receive(&mut self, now: Instant, leg: Leg, from: SocketAddr, bytes: &[u8]) {
        let state = &mut self.legs[leg.index()];
        match rtp::classify(bytes) {
            PacketKind::Rtp => {}
            PacketKind::Rtcp => {
                if state.admit_rtcp(now, from) {
                    receive_rtcp(state, bytes);
                } else {
                    state.stats.dropped_latching += 1;
                }
                return;
            }
            PacketKind::Other => {
                if state.admit(now, from).is_some() {
                    state.stats.malformed += 1;
                } else {
                    state.stats.dropped_latching += 1;
                }
                return;
            }
        }
        let Some(latching) = state.admit(now, from) else {
            state.stats.dropped_latching += 1;
            return;
        };
        let decrypted;
        let plain: &[u8] = match state
            .negotiated
            .as_mut()
            .and_then(|n| n.inbound_srtp.as_mut())
        {
            Some(ctx) => {
                // The header is checked before the SRTP library sees it; padding is encrypted
                // and checked after decryption (RFC 3711 §3.1).
                if rtp::header_len(bytes).is_err() {
                    state.stats.malformed += 1;
                    return;
                }
                match ctx.unprotect_rtp(bytes) {
                    Ok(p) => {
                        decrypted = p;
                        &decrypted
                    }
                    Err(_) => {
                        state.stats.dropped_srtp += 1;
                        return;
                    }
                }
            }
            None => bytes,
        };
        let Ok(view) = RtpView::parse(plain) else {
            state.stats.malformed += 1;
            return;
        };
        // Only a valid (and, with SRTP, authenticated) packet may latch the leg.
        if latching {
            state.latch = Latch::Latched(from);
            self.events
                .push_back(MediaEvent::Latched { leg, address: from });
        }
        state.last_rx = Some(now);
        state.timeout_reported = false;
        state.stats.packets_received += 1;
        state.stats.bytes_received += bytes.len() as u64;
        if !state
            .negotiated
            .as_ref()
            .is_some_and(|n| n.direction.receives())
        {
            state.stats.dropped_direction += 1;
            return;
        }
        let Some(kind) = state.classify(view.payload_type()) else {
            state.stats.dropped_payload_type += 1;
            return;
        };
        let mut side_stream = false;
        match state.track_source(now, view.ssrc(), view.sequence(), kind) {
            SourceUpdate::Same => {}
            SourceUpdate::SideStream => side_stream = true,
            SourceUpdate::Straggler => {
                state.stats.dropped_stale_ssrc += 1;
                return;
            }
            SourceUpdate::Changed { previous } => {
                if previous.is_some() {
                    state.stats.ssrc_changes += 1;
                }
                self.events.push_back(MediaEvent::SsrcChanged {
                    leg,
                    previous,
                    current: view.ssrc(),
                });
            }
        }
        if !side_stream && let Some(source) = state.current_source() {
            source.on_sequence(now, view.sequence());
            if kind == PayloadKind::Audio {
                source.on_timestamp(now, view.timestamp(), 8000);
            }
        }
        if !self.detect_dtmf(now, leg, &view, kind) {
            return;
        }
        self.tap_frame(now, leg, &view, kind);
        if self.bridged && !side_stream {
            self.relay(now, leg, &view, kind);
        }
    }

    /// Runs both detectors; `false` if the packet is a malformed event (dropped).
    fn detect_dtmf(
        &mut self,
        now: Instant,
        leg: Leg,
        view: &RtpView<'_>,
        kind: PayloadKind,
    ) -> bool {
        let state = &mut self.legs[leg.index()];
        let mut digits: [Option<(Digit, DtmfSource, Option<u32>)>; 4] = [None; 4];
        let mut found = 0;
        match kind {
            PayloadKind::TelephoneEvent => {
                match state.events.on_packet(
                    now,
                    view.ssrc(),
                    view.marker(),
                    view.timestamp(),
                    view.payload(),
                ) {
                    Ok(Some(d)) => {
                        digits[0] =
                            Some((d.digit, DtmfSource::TelephoneEvent, Some(d.rtp_timestamp)));
                    }
                    Ok(None) => {}
                    Err(_) => {
                        state.stats.malformed += 1;
                        return false;
                    }
                }
            }
            PayloadKind::Audio if state.negotiated.as_ref().is_some_and(|n| n.inband) => {
                let codec = state
                    .negotiated
                    .as_ref()
                    .map_or(crate::Codec::Pcmu, |n| n.receive.codec);
                let mut pcm = [0i16; DECODE_CHUNK];
                for chunk in view.payload().chunks(DECODE_CHUNK) {
                    for (s, &c) in pcm.iter_mut().zip(chunk) {
                        *s = codec.decode(c);
                    }
                    let samples = pcm.get(..chunk.len()).unwrap_or_default();
                    state.inband.push_samples(samples, |d| {
                        if let Some(slot) = digits.get_mut(found) {
                            *slot = Some((d, DtmfSource::InBand, None));
                            found += 1;
                        }
                    });
                }
            }
            _ => {}
        }
        for (digit, source, rtp_timestamp) in digits.into_iter().flatten() {
            self.events.push_back(MediaEvent::DtmfDigit {
                leg,
                digit,
                source,
                rtp_timestamp,
            });
            if self.legs[leg.index()].barge_in() {
                self.events.push_back(MediaEvent::PromptFinished {
                    leg,
                    outcome: PromptOutcome::BargedIn { digit },
                });
            }
        }
        true
    }

    fn tap_frame(&mut self, now: Instant, leg: Leg, view: &RtpView<'_>, kind: PayloadKind) {
        let Some(tap) = self.tap.as_mut().filter(|t| !t.failed) else {
            return;
        };
        let state = &self.legs[leg.index()];
        let Some(codec) = state.negotiated.as_ref().map(|n| n.receive.codec) else {
            return;
        };
        let frame = TapFrame {
            leg,
            ssrc: view.ssrc(),
            rtp_timestamp: view.timestamp(),
            sequence: view.sequence(),
            arrival: now,
            since_start: now.saturating_duration_since(tap.started),
            payload_type: view.payload_type(),
            kind: match kind {
                PayloadKind::Audio => FrameKind::Audio(codec),
                PayloadKind::ComfortNoise => FrameKind::ComfortNoise,
                PayloadKind::TelephoneEvent => FrameKind::TelephoneEvent,
            },
            payload: view.payload(),
        };
        if let Err(error) = tap.sink.push_frame(&frame) {
            tap.failed = true;
            self.events.push_back(MediaEvent::RecordingFailed { error });
        }
    }

    fn relay(&mut self, now: Instant, from: Leg, view: &RtpView<'_>, kind: PayloadKind) {
        if kind == PayloadKind::TelephoneEvent && !self.forward_dtmf {
            return;
        }
        let [caller, pbx] = &mut self.legs;
        let (src, dst) = match from {
            Leg::Caller => (&*caller, pbx),
            Leg::Pbx => (&*pbx, caller),
        };
        // The gateway's own audio (prompt, tone, generated key) has the leg meanwhile.
        if dst.playout.is_some() || dst.event_send.is_some() {
            return;
        }
        // On hold nothing is sent and no sequence number is spent; the stream re-bases with
        // the marker bit when sending resumes.
        if dst.destination().is_none() {
            dst.outbound.interrupt();
            return;
        }
        let (Some(sn), Some(dn)) = (src.negotiated.as_ref(), dst.negotiated.as_ref()) else {
            return;
        };
        // PT map per direction (field case 031): rewrite to what the other leg negotiated;
        // drop what it did not (comfort noise, events).
        let (payload_type, transcode) = match kind {
            PayloadKind::Audio => {
                let t = (sn.receive.codec != dn.send.codec)
                    .then_some((sn.receive.codec, dn.send.codec));
                (dn.send.audio, t)
            }
            PayloadKind::TelephoneEvent => match dn.send.telephone_event {
                Some(pt) => (pt, None),
                None => return,
            },
            PayloadKind::ComfortNoise => match dn.send.comfort_noise {
                Some(pt) => (pt, None),
                None => return,
            },
        };
        // G.711: one octet per sample (RFC 3551 §4.5.14), whatever the ptime.
        let samples = if kind == PayloadKind::Audio {
            u32::try_from(view.payload().len()).unwrap_or(u32::MAX)
        } else {
            0
        };
        let out = dst.outbound.relay(
            now,
            view.ssrc(),
            view.sequence(),
            view.timestamp(),
            view.marker(),
            samples,
        );
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.extend_from_slice(view.as_bytes());
        rtp::rewrite_header(
            &mut buf,
            &RtpHeader {
                marker: out.marker,
                payload_type,
                sequence: out.sequence,
                timestamp: out.timestamp,
                ssrc: dst.outbound.ssrc(),
            },
        );
        if let Some((from_codec, to_codec)) = transcode {
            let start = view.payload_offset();
            if let Some(p) = buf.get_mut(start..start + view.payload().len()) {
                from_codec.transcode_in_place(to_codec, p);
            }
        }
        send(dst, &mut self.transmits, &mut self.pool, buf);
    }

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

fn receive_rtcp(state: &mut LegState, bytes: &[u8]) {
    let plain = match state
        .negotiated
        .as_mut()
        .and_then(|n| n.inbound_srtp.as_mut())
    {
        Some(ctx) => match ctx.unprotect_rtcp(bytes) {
            Ok(p) => p,
            Err(_) => {
                state.stats.dropped_srtp += 1;
                return;
            }
        },
        None => bytes.to_vec(),
    };
    match rtp::rtcp::parse_rtcp(&plain) {
        Ok(_) => state.stats.rtcp_received += 1,
        Err(_) => state.stats.malformed += 1,
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
fn send(
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
