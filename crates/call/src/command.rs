//! Commands to the shell and events from it (STYLE §5): the core never allocates ports, plays
//! audio, touches files or talks to the escrow; it says what should happen and learns the result.

use std::fmt;
use std::net::SocketAddr;

use crate::identity::PseudonymCode;
use crate::sdp::{NegotiatedAudio, SrtpMasterKey};
use crate::sip_io::SipCommand;

/// One call inside a [`crate::CallManager`] (not the SIP Call-ID, which differs per leg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// The two legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// A-leg: the caller (recorded as `Leg::Caller`).
    Caller,
    /// B-leg: the PBX, i.e. the consultant (recorded as `Leg::Consultant`).
    Pbx,
}

/// The prompts the call plays. The shell maps them to files (`fixtures/prompts/<stem>.wav`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// The consent question.
    Consent,
    /// "You agreed; this call is recorded."
    ConfirmYes,
    /// "This call is not recorded."
    ConfirmNo,
    /// The withdrawal confirmation tone.
    Withdrawn,
    /// The one-digit satisfaction question.
    Survey,
    /// "Thank you."
    Thanks,
}

impl Prompt {
    /// File stem of the prompt.
    pub fn stem(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::ConfirmYes => "confirm-yes",
            Self::ConfirmNo => "confirm-no",
            Self::Withdrawn => "withdrawn",
            Self::Survey => "survey",
            Self::Thanks => "thanks",
        }
    }
}

/// IP family of a media port to allocate (decided by the caller's offer, case 008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// SRTP keys of one leg. No `Debug`, no `Clone`.
pub struct SrtpKeys {
    /// Suite, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: String,
    /// The gateway's key for packets it sends.
    pub local: SrtpMasterKey,
    /// The peer's key for packets it sends.
    pub remote: SrtpMasterKey,
}

/// Everything the media engine needs to (re)configure one leg.
pub struct MediaParams {
    /// The leg.
    pub leg: Leg,
    /// Destination, PTs (audio and telephone-event, per direction), ptime, direction.
    pub audio: NegotiatedAudio,
    /// SRTP keys when the leg is SDES-SRTP.
    pub srtp: Option<SrtpKeys>,
}

impl fmt::Debug for MediaParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaParams")
            .field("leg", &self.leg)
            .field("audio", &self.audio)
            .field("srtp", &self.srtp.as_ref().map(|k| k.suite.as_str()))
            .finish()
    }
}

/// The caller's consent decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Pressed the consent digit.
    Consented,
    /// Pressed the decline digit.
    Declined,
    /// No valid digit after all repeats: treated as decline.
    NoInput,
}

impl Decision {
    /// True only for an explicit consent.
    pub fn records(self) -> bool {
        self == Self::Consented
    }

    /// Stable name for call records and evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consented => "consented",
            Self::Declined => "declined",
            Self::NoInput => "no-input",
        }
    }
}

/// What the gateway signs and deposits with the wrapped key: proof of what was asked and
/// answered. Holds no caller identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvidence {
    /// SHA-256 of the consent prompt audio that was played.
    pub prompt_sha256: [u8; 32],
    /// The digit pressed, if any.
    pub digit: Option<char>,
    /// Wall-clock time of the decision, ms since the Unix epoch (UTC).
    pub decided_at_unix_ms: u64,
    /// The decision.
    pub decision: Decision,
    /// How many times the prompt had started when the decision was taken (1 = first play).
    pub prompt_plays: u8,
}

/// Why a recording stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The call ended normally.
    CallEnded,
    /// The caller withdrew consent (followed by [`Command::EraseRecording`]).
    Withdrawn,
    /// The consultant hung up first; the caller may still answer the survey (not recorded).
    ConsultantHungUp,
    /// The call failed (media lost, dialog gone).
    Failure,
}

/// A satisfaction answer: the date and line only, deliberately without any call handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswer {
    /// The hospital line that was called (user part of the A-leg Request-URI).
    pub line: String,
    /// UTC date `YYYY-MM-DD`.
    pub date: String,
    /// The digit value pressed.
    pub answer: u8,
}

/// How a call ended, for the call record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// Bridged to the PBX and ended by a BYE.
    Completed,
    /// Caller hung up (BYE/CANCEL) before the consent was decided: the PBX was never called.
    AbandonedDuringPrompt,
    /// Caller hung up after the decision, before the PBX answered.
    AbandonedBeforeAnswer,
    /// The PBX answered after our CANCEL (case 022): ACKed and BYEd at once.
    AnsweredAfterCancel,
    /// The PBX refused the call with this status.
    PbxRejected {
        /// Final status from the PBX.
        status: u16,
    },
    /// The PBX did not answer in time, or could not be reached.
    PbxUnreachable,
    /// The caller's offer was unusable (488 sent).
    OfferRejected,
    /// Media could not be set up or was lost.
    MediaFailure,
    /// The gateway shut down during the call.
    Shutdown,
}

/// One line of the call log: pseudonymous code only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The caller's pseudonym (never the number).
    pub caller: PseudonymCode,
    /// The hospital line called.
    pub line: String,
    /// Call start, ms since the Unix epoch (UTC).
    pub started_at_unix_ms: u64,
    /// Call end, ms since the Unix epoch (UTC).
    pub ended_at_unix_ms: u64,
    /// Outcome.
    pub outcome: CallOutcome,
    /// Consent decision, if one was taken.
    pub consent: Option<Decision>,
    /// A recording was started.
    pub recorded: bool,
    /// The caller withdrew consent during the call.
    pub withdrawn: bool,
}

/// The shell's name for a recording (the `recording::keys::RecordingId` bytes). Never put in
/// a survey answer or the call record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordingRef(pub [u8; 16]);

/// How a prompt ended, as reported by the media engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptOutcome {
    /// Played to its end (all repeats).
    Completed,
    /// A digit interrupted it (barge-in); the digit itself arrives as [`Event::DtmfDigit`].
    BargedIn,
    /// Stopped by [`Command::StopPrompt`] or by reconfiguring the leg.
    Stopped,
}

/// What the shell must do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Allocate an RTP/RTCP port pair for `leg`; answer with [`Event::MediaAllocated`]
    /// (or [`Event::MediaFailed`]).
    AllocateMedia {
        /// Call.
        call: CallHandle,
        /// Leg.
        leg: Leg,
        /// Address family (from the caller's offer for the A-leg, the PBX address for the B-leg).
        family: IpFamily,
        /// The leg uses SDES-SRTP: provide fresh key material.
        srtp: bool,
    },
    /// (Re)apply negotiated parameters to a leg: destination, PTs, ptime, direction, SRTP.
    /// Sent again on every re-offer, even if nothing changed (case 018: resume to the same
    /// address must restart media).
    ConfigureMedia {
        /// Call.
        call: CallHandle,
        /// Parameters.
        params: MediaParams,
    },
    /// Play a prompt to one leg (interrupting relayed audio to that leg while it plays);
    /// answer with [`Event::PromptFinished`].
    PlayPrompt {
        /// Call.
        call: CallHandle,
        /// Leg that hears it.
        leg: Leg,
        /// Prompt.
        prompt: Prompt,
        /// A digit stops the prompt at once.
        barge_in: bool,
    },
    /// Stop the prompt playing to a leg, if any.
    StopPrompt {
        /// Call.
        call: CallHandle,
        /// Leg.
        leg: Leg,
    },
    /// Relay audio and telephone-events between the legs (PTs rewritten per leg).
    BridgeMedia {
        /// Call.
        call: CallHandle,
    },
    /// Stop relaying between the legs.
    UnbridgeMedia {
        /// Call.
        call: CallHandle,
    },
    /// No PBX: set up the shell's built-in echo endpoint as the B-leg media (its audio is the
    /// caller's own); [`Command::BridgeMedia`] follows as with a PBX.
    ConnectEcho {
        /// Call.
        call: CallHandle,
    },
    /// Start the sealed recording of both legs: the shell creates the recording id and data
    /// key, opens `<recording-id>.csrec` and answers [`Event::RecordingStarted`].
    StartRecording {
        /// Call.
        call: CallHandle,
        /// Retention epoch (`recording::keys::EpochId` value: UTC day number of the epoch
        /// window's last day).
        epoch: u32,
    },
    /// Wrap the recording's data key to the epoch's public key and deposit it, with the
    /// consent evidence signed by the gateway, through the durable outbox.
    DepositKey {
        /// Call.
        call: CallHandle,
        /// The recording.
        recording: RecordingRef,
        /// Retention epoch.
        epoch: u32,
        /// Consent evidence to sign and deposit.
        evidence: ConsentEvidence,
        /// The caller's pseudonym (the escrow files the recording under it, never the number).
        caller: PseudonymCode,
        /// The line called.
        line: String,
    },
    /// Stop and finalise the recording (seal the last segment, zeroize the data key).
    /// Synchronous in the media engine: no frame is recorded after it.
    StopRecording {
        /// Call.
        call: CallHandle,
        /// Why.
        reason: StopReason,
    },
    /// Ask the escrow to erase a recording (withdrawn consent): its key is shredded.
    EraseRecording {
        /// The recording.
        recording: RecordingRef,
    },
    /// Store a survey answer (never linked to the call or recording).
    RecordSurvey {
        /// The answer.
        answer: SurveyAnswer,
    },
    /// Append the call record. The call's last command.
    WriteCallRecord {
        /// Call.
        call: CallHandle,
        /// The record.
        record: CallRecord,
    },
    /// Free the call's media (both legs). The last media command of a call.
    ReleaseMedia {
        /// Call.
        call: CallHandle,
    },
    /// Hand SIP to the transaction layer.
    Sip(SipCommand),
}

/// What the shell reports back.
#[non_exhaustive]
pub enum Event {
    /// The port for a leg is ready.
    MediaAllocated {
        /// Call.
        call: CallHandle,
        /// Leg.
        leg: Leg,
        /// Local RTP address to put in SDP.
        local: SocketAddr,
        /// Fresh SRTP key material (≥ 44 random bytes) when `srtp` was requested.
        srtp_key: Option<SrtpMasterKey>,
    },
    /// Media for a leg could not be allocated, or was lost (RTP timeout outside hold).
    MediaFailed {
        /// Call.
        call: CallHandle,
        /// Leg.
        leg: Leg,
    },
    /// A prompt ended.
    PromptFinished {
        /// Call.
        call: CallHandle,
        /// Leg.
        leg: Leg,
        /// How.
        outcome: PromptOutcome,
    },
    /// A DTMF digit was detected on a leg (RFC 4733 on the leg's rx PT, or in-band), once per
    /// key press.
    DtmfDigit {
        /// Call.
        call: CallHandle,
        /// Leg.
        leg: Leg,
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
    },
    /// The recording file is open and the tap runs.
    RecordingStarted {
        /// Call.
        call: CallHandle,
        /// Its id.
        recording: RecordingRef,
    },
    /// The recording could not be started or written; the call continues unrecorded.
    RecordingFailed {
        /// Call.
        call: CallHandle,
    },
}

impl Event {
    /// The call the event belongs to.
    pub fn call(&self) -> CallHandle {
        match self {
            Self::MediaAllocated { call, .. }
            | Self::MediaFailed { call, .. }
            | Self::PromptFinished { call, .. }
            | Self::DtmfDigit { call, .. }
            | Self::RecordingStarted { call, .. }
            | Self::RecordingFailed { call } => *call,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MediaAllocated {
                call,
                leg,
                local,
                srtp_key,
            } => f
                .debug_struct("MediaAllocated")
                .field("call", call)
                .field("leg", leg)
                .field("local", local)
                .field("srtp_key", &srtp_key.as_ref().map(|_| "<redacted>"))
                .finish(),
            Self::MediaFailed { call, leg } => f
                .debug_struct("MediaFailed")
                .field("call", call)
                .field("leg", leg)
                .finish(),
            Self::PromptFinished { call, leg, outcome } => f
                .debug_struct("PromptFinished")
                .field("call", call)
                .field("leg", leg)
                .field("outcome", outcome)
                .finish(),
            Self::DtmfDigit { call, leg, digit } => f
                .debug_struct("DtmfDigit")
                .field("call", call)
                .field("leg", leg)
                .field("digit", digit)
                .finish(),
            Self::RecordingStarted { call, recording } => f
                .debug_struct("RecordingStarted")
                .field("call", call)
                .field("recording", recording)
                .finish(),
            Self::RecordingFailed { call } => f
                .debug_struct("RecordingFailed")
                .field("call", call)
                .finish(),
        }
    }
}

/// True for a DTMF digit character (RFC 4733 events 0–15).
pub fn is_dtmf_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}
