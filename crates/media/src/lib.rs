//! callseal-media: the audio path of a call as a sans-IO core.
//!
//! A [`MediaSession`] holds the two legs of one call (caller and PBX). The gateway shell hands it
//! every datagram received on the legs' sockets together with the current time, and sends what
//! [`MediaSession::poll_transmit`] returns; the call layer drives it with commands (play a
//! prompt, bridge, hold, send a digit, start and stop the recording tap) and reads
//! [`MediaEvent`]s (digits, prompt outcomes, latching, SSRC changes, timeouts). Inside: strict
//! RTP/RTCP validation (RFC 3550), strict source latching, per-SSRC receive statistics,
//! payload-type rewriting per direction, one continuous outgoing stream per leg across prompt
//! and relay switches, G.711, RFC 4733 and in-band DTMF, prompt playout from WAV files, SDES
//! SRTP (RFC 3711, RFC 4568) and the recording tap.
//!
//! Not for: sockets, clocks, threads or randomness (the shell supplies them); SIP or SDP
//! negotiation (crates/call decides what the legs carry); the sealed recording format (the
//! tap hands frames to a [`RecordingSink`] that the gateway connects to the recording writer).

#![warn(missing_docs)]

pub mod dtmf;
pub mod g711;
pub mod outbound;
pub mod prompt;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod stats;
pub mod stream;
pub mod tap;

pub use dtmf::{Digit, DtmfSource};
pub use g711::Codec;
pub use outbound::StreamInit;
pub use prompt::{Prompt, PromptError};
pub use session::{
    InbandDtmf, Leg, LegConfig, MediaDirection, MediaError, MediaEvent, MediaSession, PayloadMap,
    Playback, PromptOutcome, SessionConfig, SrtpConfig, Transmit,
};
pub use srtp::{SrtpError, SrtpKeyMaterial, SrtpSuite};
pub use stats::LegStats;
pub use tap::{FrameKind, RecordingSink, TapFrame, TapSinkError};
