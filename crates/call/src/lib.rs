//! callseal-call: the B2BUA at the heart of the gateway, sans-IO.
//!
//! One [`CallManager`] owns every call. It consumes SIP events from the `callseal-sip`
//! transaction layer and media results from the shell, runs the consent flow (prompt, digit,
//! confirmation), sets up the PBX leg with the caller's identity replaced by a pseudonym, and
//! anchors media with SDP offer/answer per leg (RFC 3264, RFC 6337). It emits [`Command`]s —
//! allocate ports, configure media, play prompts, bridge, start/stop recording, deposit keys,
//! send SIP — and learns their results as [`Event`]s. All time comes in as arguments.
//!
//! It is not a SIP stack (that is `callseal-sip`), not a media engine (`callseal-media`), and
//! it does no I/O, no cryptography on keys and no storage: the shell in `callseal-gateway`
//! executes the commands.

pub mod command;
pub mod config;
mod dialog;
pub mod error;
pub mod identity;
mod ids;
mod manager;
pub mod sdp;
pub mod sip_io;
mod timers;

pub use command::*;
pub use config::{CallConfig, ConsentSettings, RecordingSettings, SurveySettings, Target};
pub use error::{ConfigError, IdentityError, SdpError};
pub use identity::{CallerNumber, IdentityMode, Pepper, PseudonymCode};
pub use manager::{CallManager, Now, State};
pub use sip_io::{ServerTx, SipCommand, SipEvent, TransactionFailure};
