//! State of one leg: latching, inbound sources, detectors, the outgoing stream, playout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{InbandDtmf, Leg, LegConfig, MediaDirection, MediaError, PayloadMap, SrtpConfig};
use crate::dtmf::{Digit, EventDetector, EventGenerator, InbandDetector};
use crate::outbound::{OutboundStream, StreamInit};
use crate::prompt::Prompt;
use crate::srtp::{Direction, SrtpContext};
use crate::stats::LegStats;
use crate::stream::InboundStream;

/// Inbound sources remembered per leg; the least recently heard is forgotten first, so a
/// stream of fresh SSRCs cannot grow memory.
const MAX_SOURCES: usize = 4;
/// A superseded SSRC may take over again only after the current one was silent this long;
/// before that its packets are stragglers (field case 025).
pub(super) const SSRC_RECLAIM: Duration = Duration::from_millis(500);

/// What a received payload type is on this leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PayloadKind {
    Audio,
    TelephoneEvent,
    ComfortNoise,
}

/// Outcome of [`LegState::track_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SourceUpdate {
    /// The current source.
    Same,
    /// This SSRC took over from `previous`.
    Changed { previous: Option<u32> },
    /// A superseded SSRC while the current one is alive: drop it, keep the state.
    Straggler,
    /// Telephone-events on an SSRC other than the live audio source (some gateways send
    /// events as a stream of their own): detected and recorded, but they neither take over
    /// the leg nor are relayed, since their timestamps are not on the audio's timeline.
    SideStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Latch {
    /// No media negotiated yet: nothing is admitted.
    Unconfigured,
    /// Any source may latch until `until`; afterwards only the signalled address.
    Open {
        until: Instant,
    },
    Latched(SocketAddr),
}

pub(super) struct Playout {
    pub(super) prompt: Prompt,
    pub(super) position: usize,
    pub(super) next_due: Instant,
    pub(super) repeats_left: u32,
    pub(super) gap_samples: usize,
    pub(super) in_gap: usize,
    pub(super) barge_in: bool,
    /// In-band DTMF regeneration, not a prompt: no PromptFinished event.
    pub(super) silent_finish: bool,
}

pub(super) struct EventSend {
    pub(super) generator: EventGenerator,
    pub(super) next_due: Instant,
    pub(super) started: bool,
}

impl Negotiated {
    /// Whether the peer is expected to send: the gateway receives on the leg and the peer has
    /// an address (a `c=0.0.0.0` hold or a recvonly/inactive peer sends nothing; RFC 3264 §8.4).
    fn expects_media(&self) -> bool {
        self.direction.receives() && self.remote.is_some()
    }
}

/// Keys and the inbound and outbound contexts built from them.
type SrtpState = (Option<SrtpConfig>, Option<SrtpContext>, Option<SrtpContext>);

pub(super) struct Negotiated {
    pub(super) remote: Option<SocketAddr>,
    pub(super) receive: PayloadMap,
    pub(super) send: PayloadMap,
    pub(super) ptime: Duration,
    pub(super) direction: MediaDirection,
    pub(super) srtp_keys: Option<SrtpConfig>,
    pub(super) inbound_srtp: Option<SrtpContext>,
    pub(super) outbound_srtp: Option<SrtpContext>,
    pub(super) inband: bool,
}

pub(super) struct LegState {
    pub(super) leg: Leg,
    pub(super) negotiated: Option<Negotiated>,
    pub(super) latch: Latch,
    pub(super) sources: Vec<InboundStream>,
    pub(super) current: Option<u32>,
    pub(super) events: EventDetector,
    pub(super) inband: InbandDetector,
    pub(super) outbound: OutboundStream,
    pub(super) playout: Option<Playout>,
    pub(super) event_send: Option<EventSend>,
    pub(super) stats: LegStats,
    pub(super) retired_lost: u64,
    pub(super) retired_late: u64,
    pub(super) last_rx: Option<Instant>,
    pub(super) timeout_reported: bool,
}

impl LegState {
    pub(super) fn new(leg: Leg, init: StreamInit) -> Self {
        Self {
            leg,
            negotiated: None,
            latch: Latch::Unconfigured,
            sources: Vec::with_capacity(MAX_SOURCES),
            current: None,
            events: EventDetector::new(false),
            inband: InbandDetector::new(),
            outbound: OutboundStream::new(init, 8000),
            playout: None,
            event_send: None,
            stats: LegStats::default(),
            retired_lost: 0,
            retired_late: 0,
            last_rx: None,
            timeout_reported: false,
        }
    }

    pub(super) fn configure(
        &mut self,
        now: Instant,
        window: Duration,
        config: LegConfig,
    ) -> Result<(), MediaError> {
        let leg = self.leg;
        let ms = config.ptime.as_millis();
        if !(10..=200).contains(&ms) {
            return Err(MediaError::BadPtime { leg, ms });
        }
        for map in [&config.receive, &config.send] {
            map.validate()
                .map_err(|(pt, reason)| MediaError::BadPayloadType { leg, pt, reason })?;
        }
        let mut previous = self.negotiated.take();
        let (srtp_keys, inbound_srtp, outbound_srtp) =
            match Self::srtp_contexts(leg, config.srtp, previous.as_mut()) {
                Ok(contexts) => contexts,
                Err(e) => {
                    // A refused re-configuration leaves the leg as it was.
                    self.negotiated = previous;
                    return Err(e);
                }
            };
        let previous_remote = previous.as_ref().and_then(|n| n.remote);
        let first = previous.is_none();
        if first || previous_remote != config.remote {
            self.latch = Latch::Open {
                until: now + window,
            };
        }
        let previous_direction = previous.as_ref().map(|n| n.direction);
        if previous_remote != config.remote || previous_direction != Some(config.direction) {
            // What the peer receives changes: the next packet re-bases with the marker bit.
            self.outbound.interrupt();
        }
        let inband = match config.inband_dtmf {
            InbandDtmf::Off => false,
            InbandDtmf::On => true,
            InbandDtmf::WhenNoTelephoneEvent => config.receive.telephone_event.is_none(),
        };
        // Keep the detector (and its memory of ended events) across re-INVITEs, so end copies
        // arriving around a re-negotiation stay duplicates (RFC 4733 §2.5.1.4).
        if first || self.events.merges_contiguous() != config.merge_contiguous_events {
            self.events = EventDetector::new(config.merge_contiguous_events);
        }
        let watched_before = previous.as_ref().is_some_and(Negotiated::expects_media);
        self.negotiated = Some(Negotiated {
            remote: config.remote,
            receive: config.receive,
            send: config.send,
            ptime: config.ptime,
            direction: config.direction,
            srtp_keys,
            inbound_srtp,
            outbound_srtp,
            inband,
        });
        self.rearm_silence(now, watched_before);
        Ok(())
    }

    /// Restarts the silence clock when the peer starts being expected to send (first
    /// configuration, resume from hold), so a long hold does not end the call at once.
    pub(super) fn rearm_silence(&mut self, now: Instant, watched_before: bool) {
        if !watched_before && self.expects_media() {
            self.last_rx = Some(now);
            self.timeout_reported = false;
        }
    }

    /// Whether the peer is currently expected to send media.
    pub(super) fn expects_media(&self) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(Negotiated::expects_media)
    }

    /// When the media timeout is due, if the leg is watched for silence.
    pub(super) fn silence_deadline(&self, media_timeout: Option<Duration>) -> Option<Instant> {
        match (media_timeout, self.last_rx) {
            (Some(t), Some(last)) if self.expects_media() && !self.timeout_reported => {
                Some(last + t)
            }
            _ => None,
        }
    }

    /// SRTP contexts for a (re)configuration: the running contexts are kept when the keys did
    /// not change, so rollover counters and replay windows survive a re-INVITE (RFC 3711 §3.3.1).
    fn srtp_contexts(
        leg: Leg,
        keys: Option<SrtpConfig>,
        previous: Option<&mut Negotiated>,
    ) -> Result<SrtpState, MediaError> {
        let Some(keys) = keys else {
            return Ok((None, None, None));
        };
        let srtp_err = |source| MediaError::Srtp { leg, source };
        let old = previous.as_ref().and_then(|p| p.srtp_keys.as_ref());
        let keep_in = old.is_some_and(|k| k.inbound.same_as(&keys.inbound));
        let keep_out = old.is_some_and(|k| k.outbound.same_as(&keys.outbound));
        // Build what is new first: a failure must leave the previous contexts in place.
        let new_in = if keep_in {
            None
        } else {
            Some(SrtpContext::new(&keys.inbound, Direction::Inbound).map_err(srtp_err)?)
        };
        let new_out = if keep_out {
            None
        } else {
            Some(SrtpContext::new(&keys.outbound, Direction::Outbound).map_err(srtp_err)?)
        };
        let (old_in, old_out) = match previous {
            Some(p) => (p.inbound_srtp.take(), p.outbound_srtp.take()),
            None => (None, None),
        };
        let inbound = new_in.or(old_in);
        let outbound = new_out.or(old_out);
        Ok((Some(keys), inbound, outbound))
    }

    /// Strict source (rtpengine's model): `Ok(true)` if this packet would latch the leg.
    pub(super) fn admit(&self, now: Instant, from: SocketAddr) -> Option<bool> {
        match self.latch {
            Latch::Unconfigured => None,
            Latch::Latched(peer) => (peer == from).then_some(false),
            Latch::Open { until } => {
                let signalled = self.negotiated.as_ref().and_then(|n| n.remote);
                (now < until || signalled == Some(from)).then_some(true)
            }
        }
    }

    /// RTCP never latches; it is admitted from the IP address of the RTP peer (latched or
    /// signalled), on any port, since without rtcp-mux it comes from the peer's RTCP port
    /// (RFC 3550 §11, RFC 3605), and from anywhere while the latching window is open.
    pub(super) fn admit_rtcp(&self, now: Instant, from: SocketAddr) -> bool {
        let signalled = self.negotiated.as_ref().and_then(|n| n.remote);
        match self.latch {
            Latch::Unconfigured => false,
            Latch::Latched(peer) => peer.ip() == from.ip(),
            Latch::Open { until } => now < until || signalled.is_some_and(|s| s.ip() == from.ip()),
        }
    }

    pub(super) fn latched(&self) -> Option<SocketAddr> {
        match self.latch {
            Latch::Latched(a) => Some(a),
            Latch::Open { .. } | Latch::Unconfigured => None,
        }
    }

    /// Where to send: the latched peer, else the signalled address; nothing on hold
    /// (`c=0.0.0.0`, or a direction without sending).
    pub(super) fn destination(&self) -> Option<SocketAddr> {
        let negotiated = self.negotiated.as_ref()?;
        if !negotiated.direction.sends() {
            return None;
        }
        let signalled = negotiated.remote?;
        Some(self.latched().unwrap_or(signalled))
    }

    pub(super) fn classify(&self, pt: u8) -> Option<PayloadKind> {
        let map = &self.negotiated.as_ref()?.receive;
        if pt == map.audio {
            Some(PayloadKind::Audio)
        } else if map.telephone_event == Some(pt) {
            Some(PayloadKind::TelephoneEvent)
        } else if map.comfort_noise == Some(pt) {
            Some(PayloadKind::ComfortNoise)
        } else {
            None
        }
    }

    /// Tracks the source of an inbound packet (per-SSRC state, RFC 3550 §8).
    pub(super) fn track_source(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        kind: PayloadKind,
    ) -> SourceUpdate {
        if self.current == Some(ssrc) {
            return SourceUpdate::Same;
        }
        let current_alive = self
            .current
            .and_then(|c| self.sources.iter().find(|s| s.ssrc() == c))
            .is_some_and(|s| now.saturating_duration_since(s.last_arrival) < SSRC_RECLAIM);
        if current_alive && kind == PayloadKind::TelephoneEvent {
            return SourceUpdate::SideStream;
        }
        let known = self.sources.iter().any(|s| s.ssrc() == ssrc);
        if known {
            if current_alive {
                return SourceUpdate::Straggler;
            }
        } else {
            if self.sources.len() >= MAX_SOURCES
                && let Some((i, _)) = self
                    .sources
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.last_arrival)
            {
                let old = self.sources.swap_remove(i);
                self.retired_lost += old.lost();
                self.retired_late += old.late();
            }
            self.sources.push(InboundStream::new(now, ssrc, seq));
        }
        let previous = self.current.replace(ssrc);
        self.events.reset();
        self.inband.reset();
        SourceUpdate::Changed { previous }
    }

    pub(super) fn current_source(&mut self) -> Option<&mut InboundStream> {
        let c = self.current?;
        self.sources.iter_mut().find(|s| s.ssrc() == c)
    }

    pub(super) fn is_playing(&self) -> bool {
        self.playout.is_some()
    }

    pub(super) fn stop_playout(&mut self) -> bool {
        let was = self.playout.take().is_some_and(|p| !p.silent_finish);
        if was {
            self.outbound.interrupt();
        }
        was
    }

    pub(super) fn stats(&self) -> LegStats {
        let mut s = self.stats;
        s.lost = self.retired_lost + self.sources.iter().map(InboundStream::lost).sum::<u64>();
        s.late = self.retired_late + self.sources.iter().map(InboundStream::late).sum::<u64>();
        s.jitter_units = self
            .current
            .and_then(|c| self.sources.iter().find(|x| x.ssrc() == c))
            .map_or(0, InboundStream::jitter);
        s
    }

    pub(super) fn next_deadline(&self, media_timeout: Option<Duration>) -> Option<Instant> {
        let playout = self.playout.as_ref().map(|p| p.next_due);
        let events = self.event_send.as_ref().map(|e| e.next_due);
        let soft = self.events.poll_timeout();
        let silence = self.silence_deadline(media_timeout);
        [playout, events, soft, silence].into_iter().flatten().min()
    }

    /// Key pressed on this leg: barge-in if the prompt allows it.
    pub(super) fn barge_in(&mut self) -> bool {
        if self
            .playout
            .as_ref()
            .is_some_and(|p| p.barge_in && !p.silent_finish)
        {
            self.playout = None;
            self.outbound.interrupt();
            return true;
        }
        false
    }

    pub(super) fn samples_per_frame(&self) -> usize {
        self.negotiated.as_ref().map_or(160, |n| {
            usize::try_from(n.ptime.as_millis() * 8).unwrap_or(160)
        })
    }

    pub(super) fn digit_prompt(digit: Digit, duration: Duration) -> Prompt {
        let n = usize::try_from(duration.as_millis() * 8).unwrap_or(0);
        // About −10 dBm0 per tone (a sine of peak 22 656 is 0 dBm0 in G.711).
        Prompt::from_samples(crate::dtmf::goertzel::dual_tone(digit, n, 7000.0, 0))
    }
}
