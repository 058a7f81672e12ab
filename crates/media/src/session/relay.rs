//! The per-packet path: admission (strict source), SRTP removal, validation, per-SSRC state,
//! DTMF detection, the recording tap and the relay towards the other leg.

use std::net::SocketAddr;
use std::time::Instant;

use super::leg::{Latch, LegState, PayloadKind, SourceUpdate};
use super::playout::send;
use super::{Leg, MediaEvent, MediaSession, PromptOutcome};
use crate::dtmf::{Digit, DtmfSource};
use crate::rtp::{self, PacketKind, RtpHeader, RtpView};
use crate::tap::{FrameKind, TapFrame};

/// Decoded samples are fed to the in-band detector in chunks of this size (no allocation).
const DECODE_CHUNK: usize = 160;

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
        // The packet is rebuilt with a plain 12-byte header: CSRCs, header extensions and
        // padding stay on the leg they came from. Extension IDs are bound per session by
        // a=extmap (RFC 8285 §5), which neither leg negotiated end to end, and the gateway is
        // the source towards each peer.
        let mut buf = self.pool.pop().unwrap_or_default();
        RtpHeader {
            marker: out.marker,
            payload_type,
            sequence: out.sequence,
            timestamp: out.timestamp,
            ssrc: dst.outbound.ssrc(),
        }
        .write(view.payload(), &mut buf);
        if let Some((from_codec, to_codec)) = transcode
            && let Some(p) = buf.get_mut(rtp::FIXED_HEADER_LEN..)
        {
            from_codec.transcode_in_place(to_codec, p);
        }
        send(dst, &mut self.transmits, &mut self.pool, buf);
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
