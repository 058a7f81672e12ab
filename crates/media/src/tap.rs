//! The recording tap: hands every received frame of both legs to a sink while recording is on.
//!
//! The sink is the gateway's adapter to the sealed-recording writer; this crate does not depend
//! on the recording format. Frames are handed over synchronously from `handle_packet`, so when
//! `stop_recording` returns no further frame can reach the sink.

use std::time::{Duration, Instant};

use crate::Codec;
use crate::session::Leg;

/// What a tapped frame's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// G.711 audio in the given codec.
    Audio(Codec),
    /// Comfort noise (RFC 3389).
    ComfortNoise,
    /// An RFC 4733 telephone-event block.
    TelephoneEvent,
}

/// One received frame, as the recorder needs it.
#[derive(Debug, Clone, Copy)]
pub struct TapFrame<'a> {
    /// Which party sent it.
    pub leg: Leg,
    /// Upstream SSRC (a change marks a new timeline; never compute gaps across SSRCs).
    pub ssrc: u32,
    /// RTP timestamp as received.
    pub rtp_timestamp: u32,
    /// RTP sequence number as received.
    pub sequence: u16,
    /// Arrival instant.
    pub arrival: Instant,
    /// Arrival relative to the start of recording.
    pub since_start: Duration,
    /// Payload type as received on this leg.
    pub payload_type: u8,
    /// What the payload is.
    pub kind: FrameKind,
    /// Payload without header, extension and padding.
    pub payload: &'a [u8],
}

/// A sink failed; the tap stops and reports it. The message must not contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recording sink failed: {reason}")]
pub struct TapSinkError {
    /// What went wrong, for logs.
    pub reason: String,
}

/// Receives tapped frames. Implemented by the gateway over the recording writer.
///
/// The session owns the sink while recording, so the packet path reaches it without a lock;
/// the periodic check ([`crate::MediaSession::tick_recording`]) goes through the session too.
pub trait RecordingSink: Send {
    /// Takes one frame. An error stops the tap (the session emits
    /// [`crate::MediaEvent::RecordingFailed`]); the sink is handed back by `stop_recording`.
    fn push_frame(&mut self, frame: &TapFrame<'_>) -> Result<(), TapSinkError>;

    /// Timed check with the time since recording started (e.g. to seal audio that silence or
    /// hold would otherwise leave pending), called once [`RecordingSink::next_tick`] has come.
    /// An error stops the tap as for `push_frame`.
    fn tick(&mut self, since_start: Duration) -> Result<(), TapSinkError> {
        let _ = since_start;
        Ok(())
    }

    /// When (time since recording started) the sink next needs [`RecordingSink::tick`];
    /// `None`: not until another frame comes. The session folds it into its `poll_timeout`.
    /// After a tick at `t` it must return `None` or a time after `t`; a sink that does not is
    /// stopped as failed (otherwise its shell would be woken again at once, for ever).
    fn next_tick(&self) -> Option<Duration> {
        None
    }

    /// No frame follows: complete the recording (the sink is then dropped). Not called when
    /// the recording is discarded.
    fn close(&mut self) -> Result<(), TapSinkError> {
        Ok(())
    }
}

pub(crate) struct Tap {
    pub(crate) sink: Box<dyn RecordingSink>,
    pub(crate) started: Instant,
    pub(crate) failed: bool,
}
