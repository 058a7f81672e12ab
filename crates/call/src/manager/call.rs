//! One call: its state (named after what it waits for), both legs and the consent data.

use std::net::SocketAddr;

use callseal_sip::Message;

use crate::command::{CallOutcome, ConsentEvidence, Decision, RecordingRef};
use crate::dialog::Dialog;
use crate::identity::CallerNumber;
use crate::sdp::{
    Codec, Direction, LocalSdp, NegotiatedAudio, RemoteSdp, SdpOrigin, SrtpMasterKey,
};
use crate::sip_io::ServerTx;
use crate::timers::TimerTable;

/// What the call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The caller's INVITE is pending until the shell has allocated the A-leg port.
    AwaitingMedia,
    /// The caller's INVITE had no SDP: our 200 carried the offer, the ACK must bring the
    /// answer (RFC 3261 §13.2.1) before the prompt can play.
    AwaitingAck,
    /// The consent prompt is playing (`plays`: how many times it has started); a digit
    /// interrupts it.
    PlayingPrompt {
        /// Plays so far, 1 = first.
        plays: u8,
    },
    /// The prompt ended; the digit timer runs.
    AwaitingDigit {
        /// Plays so far.
        plays: u8,
    },
    /// The confirmation of the decision is playing.
    Confirming,
    /// The B-leg is being set up (port, INVITE, ringing or early media).
    CallingPbx,
    /// Both legs connected (to the PBX or the echo endpoint).
    Bridged,
    /// The consultant hung up first; the survey question is playing or its answer awaited.
    Surveying {
        /// An answer was stored; the "thanks" prompt plays before the BYE.
        answered: bool,
    },
    /// BYE/CANCEL sent; waiting for their answers (or the teardown timer).
    Ending,
}

/// The recording of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Not recording (no consent, or not bridged yet).
    Off,
    /// StartRecording sent, waiting for RecordingStarted.
    Starting {
        /// Epoch the key is wrapped to.
        epoch: u32,
    },
    /// Running.
    On {
        /// Its id.
        id: RecordingRef,
    },
    /// Stopped for good (call ended, withdrawn, or failed).
    Done,
}

/// The gateway's media on one leg.
pub struct LegMedia {
    /// Where the peer sends RTP.
    pub local: SocketAddr,
    /// Our SRTP key material, if SDES is offered/used.
    pub srtp_key: Option<SrtpMasterKey>,
    /// Our `o=` line on this leg.
    pub origin: SdpOrigin,
    /// The last SDP we sent on this leg (re-offers keep its m-lines, RFC 3264 §8).
    pub last_sdp: Option<LocalSdp>,
    /// Index of the audio m-line.
    pub audio_index: usize,
    /// What was agreed.
    pub audio: Option<NegotiatedAudio>,
    /// The direction the peer declared last (with `c=0.0.0.0` folded in).
    pub peer_direction: Direction,
}

/// A re-INVITE we sent on a leg and whose answer we wait for.
#[derive(Debug, Clone)]
pub struct PendingReinvite {
    /// Its branch.
    pub branch: String,
    /// Its CSeq number.
    pub cseq: u32,
}

/// The caller's leg (we are the UAS).
pub struct CallerLeg {
    /// The caller's INVITE.
    pub invite: Message,
    /// The INVITE's server transaction while no final response has been sent.
    pub tx: Option<ServerTx>,
    /// The caller's address (in-dialog requests go back there, RFC 3581 style).
    pub source: SocketAddr,
    /// Our To-tag.
    pub local_tag: String,
    /// The caller's offer, kept until the port is allocated; `None` for a delayed offer.
    pub offer: Option<RemoteSdp>,
    /// The dialog, once our 200 is sent.
    pub dialog: Option<Dialog>,
    /// Media.
    pub media: Option<LegMedia>,
    /// Our outstanding re-INVITE.
    pub reinvite: Option<PendingReinvite>,
    /// A direction change from the other leg is waiting for `reinvite` to finish.
    pub update_pending: bool,
    /// Our 2xx to an INVITE without SDP carried an offer: the ACK brings the answer.
    pub answer_in_ack: bool,
    /// Our BYE's branch once sent.
    pub bye: Option<String>,
    /// The ACK we sent for the 2xx to our last re-INVITE (resent on retransmissions).
    pub ack: Option<Message>,
}

/// Where the B-leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PbxState {
    /// Port requested.
    AwaitingMedia,
    /// INVITE sent, no provisional response with a To-tag yet.
    Calling,
    /// At least one early dialog (18x with To-tag).
    Early,
    /// CANCEL sent; a 2xx may still cross it (case 022).
    Cancelling,
    /// 2xx received and ACKed.
    Confirmed,
    /// BYE sent or received, or the INVITE failed.
    Terminated,
}

/// The PBX leg (we are the UAC).
pub struct PbxLeg {
    /// Where it is.
    pub state: PbxState,
    /// Our INVITE, once sent.
    pub invite: Option<Message>,
    /// The INVITE's branch.
    pub branch: String,
    /// Our From-tag.
    pub local_tag: String,
    /// The B-leg Call-ID.
    pub call_id: String,
    /// The confirmed dialog.
    pub dialog: Option<Dialog>,
    /// The codec put first in our offer (the caller's).
    pub offered_first: Codec,
    /// Media.
    pub media: Option<LegMedia>,
    /// Our outstanding re-INVITE.
    pub reinvite: Option<PendingReinvite>,
    /// A direction change from the other leg is waiting for `reinvite` to finish.
    pub update_pending: bool,
    /// Early media is being relayed.
    pub early_media: bool,
    /// Our 2xx to a re-INVITE without SDP carried an offer: the ACK brings the answer.
    pub answer_in_ack: bool,
    /// A provisional response arrived (RFC 3261 §9.1: only then may a CANCEL be sent).
    pub provisional_seen: bool,
    /// The caller left while no provisional response had arrived: CANCEL at the first one.
    pub cancel_wanted: bool,
    /// Early answers by To-tag (forked early dialogs, RFC 3261 §13.2.2.4, case 020).
    pub early: Vec<(String, NegotiatedAudio)>,
    /// The ACK we sent for the INVITE's 2xx, resent for each retransmitted 2xx.
    pub ack: Option<Message>,
    /// Branch of our BYE once sent.
    pub bye: Option<String>,
}

/// One call.
pub struct Call {
    /// State.
    pub state: State,
    /// The caller (prints as its pseudonym).
    pub caller: CallerNumber,
    /// The line called (user part of the A-leg Request-URI).
    pub line: String,
    /// Start, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// A-leg.
    pub a: CallerLeg,
    /// B-leg (absent before consent, and in echo mode).
    pub b: Option<PbxLeg>,
    /// Connected to the echo endpoint instead of a PBX.
    pub echo: bool,
    /// The consent decision.
    pub decision: Option<Decision>,
    /// Its evidence.
    pub evidence: Option<ConsentEvidence>,
    /// The recording.
    pub recording: Recording,
    /// Consent was withdrawn.
    pub withdrawn: bool,
    /// The caller's recent digits while bridged (for the withdrawal code).
    pub digits: String,
    /// Prompts started on the caller leg whose `PromptFinished` has not come yet, oldest
    /// first: the media engine reports exactly one end per prompt, in order.
    pub prompts: std::collections::VecDeque<crate::command::Prompt>,
    /// Timers.
    pub timers: TimerTable,
    /// How the call ended, once known.
    pub outcome: Option<CallOutcome>,
}
