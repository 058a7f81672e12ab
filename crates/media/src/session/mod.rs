//! [`MediaSession`]: the media of one call — two legs (caller = A, PBX = B), sans-IO.
//!
//! The shell owns the sockets and the clock; the session only reacts to what it is given:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use callseal_media::*;
//!
//! let t0 = Instant::now();
//! let stream = |ssrc| StreamInit { ssrc, sequence: 1, timestamp: 0 }; // random in real use
//! let mut session = MediaSession::new(SessionConfig {
//!     latching_window: Duration::from_secs(2),
//!     media_timeout: Some(Duration::from_secs(30)),
//!     caller_stream: stream(0x1111),
//!     pbx_stream: stream(0x2222),
//! });
//! let caller = "127.0.0.2:40000".parse().unwrap();
//! let pbx = "127.0.0.3:30000".parse().unwrap();
//! let map = PayloadMap::g711(Codec::Pcma).with_telephone_event(101);
//! session.configure_leg(t0, Leg::Caller, LegConfig::new(Some(caller), map)).unwrap();
//! session.configure_leg(t0, Leg::Pbx, LegConfig::new(Some(pbx), map)).unwrap();
//! session.play_prompt(t0, Leg::Caller, Playback::once(Prompt::confirmation_tone())).unwrap();
//!
//! // The shell's loop: feed datagrams (none here), drain outputs, sleep until poll_timeout.
//! let mut sent = 0;
//! while let Some(wake_at) = session.poll_timeout() {
//!     while let Some(t) = session.poll_transmit() {
//!         assert_eq!((t.leg, t.destination), (Leg::Caller, caller)); // socket.send_to(..)
//!         sent += 1;
//!         session.recycle(t.payload);
//!     }
//!     while let Some(event) = session.poll_event() {
//!         assert!(matches!(event, MediaEvent::PromptFinished { outcome: PromptOutcome::Completed, .. }));
//!     }
//!     if wake_at > t0 + Duration::from_secs(1) {
//!         break; // only the media timeout is left
//!     }
//!     session.handle_timeout(wake_at);
//!     // session.handle_packet(now, leg, from, &datagram) for every datagram received
//! }
//! assert_eq!(sent, 20); // 400 ms of tone in 20 ms frames
//! ```
//! Commands (`configure_leg`, `play_prompt`, `set_bridge`, `start_recording`, …) take effect
//! immediately and may queue packets and events too.

mod leg;
mod playout;
mod relay;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dtmf::{Digit, DtmfSource};
use crate::g711::Codec;
use crate::outbound::StreamInit;
use crate::prompt::Prompt;
use crate::srtp::{SrtpError, SrtpKeyMaterial};
use crate::stats::LegStats;
use crate::tap::{RecordingSink, Tap, TapSinkError};
use leg::LegState;

/// The two legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// A: the caller's side.
    Caller,
    /// B: the PBX (consultant) side.
    Pbx,
}

impl Leg {
    /// The opposite leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::Caller => Leg::Pbx,
            Leg::Pbx => Leg::Caller,
        }
    }

    /// 0 for the caller, 1 for the PBX: for per-leg arrays.
    pub fn index(self) -> usize {
        match self {
            Leg::Caller => 0,
            Leg::Pbx => 1,
        }
    }
}

/// Payload types negotiated for one direction of one leg (RFC 3264 §5.1: the PTs a peer sends
/// are those of the SDP of the side that receives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadMap {
    /// Audio payload type.
    pub audio: u8,
    /// Audio codec carried by `audio`.
    pub codec: Codec,
    /// telephone-event/8000 payload type, if negotiated (dynamic; never assume 101).
    pub telephone_event: Option<u8>,
    /// Comfort noise payload type (13 when negotiated, RFC 3389), if negotiated.
    pub comfort_noise: Option<u8>,
}

impl PayloadMap {
    /// Checks the map: PTs within 7 bits, distinct, none in 64–95 (RFC 5761 §4: they collide
    /// with RTCP under rtcp-mux), and telephone-event not on a static PT (RFC 3551 Table 4:
    /// e.g. PT 10 is L16; field case 031).
    pub fn validate(&self) -> Result<(), (u8, &'static str)> {
        let all = [Some(self.audio), self.telephone_event, self.comfort_noise];
        for pt in all.into_iter().flatten() {
            if pt > 127 {
                return Err((pt, "payload types have 7 bits"));
            }
            if (64..=95).contains(&pt) {
                return Err((
                    pt,
                    "PTs 64-95 collide with RTCP packet types under rtcp-mux",
                ));
            }
        }
        if let Some(pt) = self.telephone_event {
            if pt < 35 {
                return Err((pt, "telephone-event cannot use a statically assigned PT"));
            }
            if pt == self.audio || self.comfort_noise == Some(pt) {
                return Err((pt, "telephone-event shares its PT with another format"));
            }
        }
        if let Some(pt) = self.comfort_noise
            && pt == self.audio
        {
            return Err((pt, "comfort noise shares its PT with the audio codec"));
        }
        Ok(())
    }

    /// G.711 on its static PT, no telephone-event, no comfort noise.
    pub fn g711(codec: Codec) -> Self {
        Self {
            audio: codec.static_payload_type(),
            codec,
            telephone_event: None,
            comfort_noise: None,
        }
    }

    /// With telephone-event on `pt`.
    pub fn with_telephone_event(mut self, pt: u8) -> Self {
        self.telephone_event = Some(pt);
        self
    }

    /// With comfort noise on `pt` (normally 13).
    pub fn with_comfort_noise(mut self, pt: u8) -> Self {
        self.comfort_noise = Some(pt);
        self
    }
}

/// When in-band (Goertzel) DTMF detection runs on a leg's received audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InbandDtmf {
    /// Never.
    Off,
    /// Only if the leg did not negotiate telephone-event (avoids reporting a key twice).
    #[default]
    WhenNoTelephoneEvent,
    /// Always.
    On,
}

/// The gateway's own media direction on a leg (its SDP attribute, RFC 3264 §6.1, §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaDirection {
    /// Sends and receives.
    #[default]
    SendRecv,
    /// Only sends: what the peer sends is counted and dropped.
    SendOnly,
    /// Only receives: nothing is sent to the peer (the peer put the call on hold).
    RecvOnly,
    /// Neither: nothing is sent, received media is counted and dropped.
    Inactive,
}

impl MediaDirection {
    /// Whether the gateway sends media on the leg.
    pub fn sends(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::SendOnly)
    }

    /// Whether the gateway accepts media from the leg.
    pub fn receives(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::RecvOnly)
    }
}

/// SRTP keys of a leg (SDES): the key the peer announced (to unprotect what it sends) and the
/// key the gateway announced (to protect what it sends).
pub struct SrtpConfig {
    /// From the peer's `a=crypto`.
    pub inbound: SrtpKeyMaterial,
    /// From the gateway's own `a=crypto`.
    pub outbound: SrtpKeyMaterial,
}

/// Negotiated media parameters of one leg.
pub struct LegConfig {
    /// Where the peer asked to receive media (SDP `c=`/`m=`); `None` for `c=0.0.0.0` or a
    /// rejected stream: nothing is sent on the leg.
    pub remote: Option<SocketAddr>,
    /// PTs the peer sends to the gateway.
    pub receive: PayloadMap,
    /// PTs the gateway sends to the peer.
    pub send: PayloadMap,
    /// Packet duration the peer asked for (`a=ptime`, default 20 ms).
    pub ptime: Duration,
    /// The gateway's direction on the leg (hold is `RecvOnly` or `Inactive`).
    pub direction: MediaDirection,
    /// SRTP keys, `None` for plain RTP.
    pub srtp: Option<SrtpConfig>,
    /// In-band DTMF detection policy.
    pub inband_dtmf: InbandDtmf,
    /// Treat a telephone-event with a new timestamp but the same code, no marker and no end in
    /// between as the same key press (per-trunk workaround for non-conformant senders; field
    /// case 032, "broken sender A").
    pub merge_contiguous_events: bool,
}

impl LegConfig {
    /// Plain RTP G.711 at 20 ms with the same PT map both ways.
    pub fn new(remote: Option<SocketAddr>, payloads: PayloadMap) -> Self {
        Self {
            remote,
            receive: payloads,
            send: payloads,
            ptime: Duration::from_millis(20),
            direction: MediaDirection::SendRecv,
            srtp: None,
            inband_dtmf: InbandDtmf::default(),
            merge_contiguous_events: false,
        }
    }
}

/// Session-wide settings.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// After a leg is (re)configured, the first packet from any address within this window
    /// fixes the peer (NAT); afterwards only the signalled address may latch.
    pub latching_window: Duration,
    /// Report [`MediaEvent::MediaTimeout`] when a configured leg has been silent this long.
    pub media_timeout: Option<Duration>,
    /// Outgoing stream of the caller leg (random SSRC, sequence and timestamp).
    pub caller_stream: StreamInit,
    /// Outgoing stream of the PBX leg.
    pub pbx_stream: StreamInit,
}

/// A prompt to play on a leg.
#[derive(Debug, Clone)]
pub struct Playback {
    /// The audio.
    pub prompt: Prompt,
    /// Stop when a key is received on the same leg.
    pub barge_in: bool,
    /// Additional plays after the first.
    pub repeat: u32,
    /// Silence between plays.
    pub gap: Duration,
}

impl Playback {
    /// Play once, with barge-in.
    pub fn once(prompt: Prompt) -> Self {
        Self {
            prompt,
            barge_in: true,
            repeat: 0,
            gap: Duration::ZERO,
        }
    }
}

/// How a prompt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptOutcome {
    /// Played to the end (all repeats).
    Completed,
    /// Interrupted by a key on the same leg.
    BargedIn {
        /// The key.
        digit: Digit,
    },
    /// Stopped or replaced by a command.
    Stopped,
}

/// Something the call layer should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A key press, reported once when it starts.
    DtmfDigit {
        /// Leg it was received on.
        leg: Leg,
        /// The key.
        digit: Digit,
        /// Telephone-event or in-band.
        source: DtmfSource,
        /// RTP timestamp of the event start (telephone-events only).
        rtp_timestamp: Option<u32>,
    },
    /// A prompt ended.
    PromptFinished {
        /// Leg it played on.
        leg: Leg,
        /// How.
        outcome: PromptOutcome,
    },
    /// The peer's address was learned (strict source from now on).
    Latched {
        /// Leg.
        leg: Leg,
        /// The peer's transport address.
        address: SocketAddr,
    },
    /// The inbound SSRC changed (transfer, re-anchoring; RFC 3550 §8).
    SsrcChanged {
        /// Leg.
        leg: Leg,
        /// Previous SSRC, if any.
        previous: Option<u32>,
        /// New SSRC.
        current: u32,
    },
    /// No valid packet on a configured leg for the configured time.
    MediaTimeout {
        /// Leg.
        leg: Leg,
        /// Silence so far.
        silent_for: Duration,
    },
    /// The recording sink failed; the tap stopped. Call `stop_recording` to get the sink back.
    RecordingFailed {
        /// The sink's error.
        error: TapSinkError,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Leg (socket) to send on.
    pub leg: Leg,
    /// Peer address.
    pub destination: SocketAddr,
    /// The datagram; hand the buffer back with [`MediaSession::recycle`] to avoid allocation.
    pub payload: Vec<u8>,
}

/// A command could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// SRTP keys could not be installed.
    #[error("SRTP setup failed on the {leg:?} leg: {source}")]
    Srtp {
        /// Leg.
        leg: Leg,
        /// Cause.
        #[source]
        source: SrtpError,
    },
    /// A ptime outside 10..=200 ms (RFC 3551 §4.5: receivers handle up to 200 ms).
    #[error("ptime {ms} ms on the {leg:?} leg is outside 10..=200 ms; fix the negotiated a=ptime")]
    BadPtime {
        /// Leg.
        leg: Leg,
        /// The value.
        ms: u128,
    },
    /// A payload type that cannot carry what it was negotiated for.
    #[error("payload type {pt} on the {leg:?} leg cannot be used: {reason}; fix the SDP mapping")]
    BadPayloadType {
        /// Leg.
        leg: Leg,
        /// The payload type.
        pt: u8,
        /// Why.
        reason: &'static str,
    },
    /// The leg has not been configured yet.
    #[error("the {leg:?} leg has no negotiated media yet; configure it before playing or sending")]
    LegNotConfigured {
        /// Leg.
        leg: Leg,
    },
}

/// The media of one call.
pub struct MediaSession {
    legs: [LegState; 2],
    config: SessionConfig,
    bridged: bool,
    forward_dtmf: bool,
    tap: Option<Tap>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
    pool: Vec<Vec<u8>>,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("bridged", &self.bridged)
            .field("recording", &self.tap.is_some())
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// A session with both legs unconfigured, not bridged, not recording.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            legs: [
                LegState::new(Leg::Caller, config.caller_stream),
                LegState::new(Leg::Pbx, config.pbx_stream),
            ],
            config,
            bridged: false,
            forward_dtmf: true,
            tap: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            pool: Vec::new(),
        }
    }

    /// Installs (or replaces, after a re-INVITE) a leg's negotiated parameters. A new remote
    /// address re-opens the latching window; the same address keeps the latched peer.
    pub fn configure_leg(
        &mut self,
        now: Instant,
        leg: Leg,
        config: LegConfig,
    ) -> Result<(), MediaError> {
        let window = self.config.latching_window;
        self.leg_mut(leg).configure(now, window, config)
    }

    /// Handles one datagram received on `leg`'s socket from `from`.
    pub fn handle_packet(&mut self, now: Instant, leg: Leg, from: SocketAddr, bytes: &[u8]) {
        self.receive(now, leg, from, bytes);
    }

    /// Advances timers: prompt frames and generated events that are due, event soft-state,
    /// media timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for leg in [Leg::Caller, Leg::Pbx] {
            self.run_timers(now, leg);
        }
        if self.recording_due().is_some_and(|due| due <= now) {
            self.tick_recording(now);
            // A sink that still wants a check now would have its shell wake it again at once,
            // for ever: that breaks the contract of `next_tick`, and the tap stops, failed.
            if self.recording_due().is_some_and(|due| due <= now)
                && let Some(tap) = self.tap.as_mut()
            {
                tap.failed = true;
                self.events.push_back(MediaEvent::RecordingFailed {
                    error: TapSinkError {
                        reason: "the recording sink asked for a timed check and did not take it \
                                 (a defect); the recording was stopped"
                            .into(),
                    },
                });
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns a sent datagram's buffer for reuse.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.pool.len() < 64 {
            buffer.clear();
            self.pool.push(buffer);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.media_timeout;
        let legs = self
            .legs
            .iter()
            .filter_map(|l| l.next_deadline(timeout))
            .min();
        match (legs, self.recording_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the recording sink next wants its timed check, if recording.
    fn recording_due(&self) -> Option<Instant> {
        let tap = self.tap.as_ref().filter(|t| !t.failed)?;
        tap.sink.next_tick().map(|d| tap.started + d)
    }

    /// Starts a prompt on `leg` now (replacing any prompt playing there). Frames follow the
    /// leg's send codec and ptime; relayed audio towards the leg pauses meanwhile.
    pub fn play_prompt(
        &mut self,
        now: Instant,
        leg: Leg,
        playback: Playback,
    ) -> Result<(), MediaError> {
        self.start_playout(now, leg, playback, false)
    }

    /// Stops the prompt on `leg`, if any ([`PromptOutcome::Stopped`]).
    pub fn stop_prompt(&mut self, leg: Leg) {
        if self.leg_mut(leg).stop_playout() {
            self.events.push_back(MediaEvent::PromptFinished {
                leg,
                outcome: PromptOutcome::Stopped,
            });
        }
    }

    /// Whether a prompt is playing on `leg`.
    pub fn is_playing(&self, leg: Leg) -> bool {
        self.leg(leg).is_playing()
    }

    /// Changes the gateway's direction on `leg` without renegotiating anything else (hold:
    /// `RecvOnly` or `Inactive`; resume: `SendRecv`). The latched peer is kept.
    pub fn set_direction(
        &mut self,
        now: Instant,
        leg: Leg,
        direction: MediaDirection,
    ) -> Result<(), MediaError> {
        let state = self.leg_mut(leg);
        let watched_before = state.expects_media();
        let Some(n) = state.negotiated.as_mut() else {
            return Err(MediaError::LegNotConfigured { leg });
        };
        if n.direction != direction {
            n.direction = direction;
            state.outbound.interrupt();
            state.rearm_silence(now, watched_before);
        }
        Ok(())
    }

    /// Relays audio between the legs (on) or isolates them (off).
    pub fn set_bridge(&mut self, bridged: bool) {
        self.bridged = bridged;
    }

    /// Whether telephone-events are relayed to the other leg while bridged (on by default).
    pub fn set_dtmf_forwarding(&mut self, forward: bool) {
        self.forward_dtmf = forward;
    }

    /// Sends a key press towards `leg`: RFC 4733 events on its telephone-event PT, or the dual
    /// tone in-band if it negotiated none.
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        leg: Leg,
        digit: Digit,
        duration: Duration,
    ) -> Result<(), MediaError> {
        self.start_dtmf(now, leg, digit, duration)
    }

    /// Starts handing every received frame of both legs to `sink`. Replaces (and drops) a
    /// previous sink; call `stop_recording` first to keep it.
    pub fn start_recording(&mut self, now: Instant, sink: Box<dyn RecordingSink>) {
        self.tap = Some(Tap {
            sink,
            started: now,
            failed: false,
        });
    }

    /// Stops the tap at once and returns the sink (to finish the recording or discard it).
    pub fn stop_recording(&mut self) -> Option<Box<dyn RecordingSink>> {
        self.tap.take().map(|t| t.sink)
    }

    /// Runs the sink's timed check ([`RecordingSink::tick`]) with the time since recording
    /// started; a failure stops the tap and emits [`MediaEvent::RecordingFailed`], as a failed
    /// frame does. Nothing happens when not recording. `handle_timeout` calls it when the
    /// sink's [`RecordingSink::next_tick`] has come; a shell may call it at other times too.
    pub fn tick_recording(&mut self, now: Instant) {
        let Some(tap) = self.tap.as_mut().filter(|t| !t.failed) else {
            return;
        };
        if let Err(error) = tap.sink.tick(now.saturating_duration_since(tap.started)) {
            tap.failed = true;
            self.events.push_back(MediaEvent::RecordingFailed { error });
        }
    }

    /// Whether frames are being handed to a sink.
    pub fn is_recording(&self) -> bool {
        self.tap.as_ref().is_some_and(|t| !t.failed)
    }

    /// Counters of `leg`.
    pub fn stats(&self, leg: Leg) -> LegStats {
        self.leg(leg).stats()
    }

    /// The peer address `leg` latched onto, if any.
    pub fn latched_peer(&self, leg: Leg) -> Option<SocketAddr> {
        self.leg(leg).latched()
    }

    fn leg(&self, leg: Leg) -> &LegState {
        &self.legs[leg.index()]
    }

    fn leg_mut(&mut self, leg: Leg) -> &mut LegState {
        &mut self.legs[leg.index()]
    }
}
