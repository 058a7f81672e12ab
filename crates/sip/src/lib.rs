//! callseal-sip: a small, strict SIP stack for the callseal B2BUA. It parses and prints
//! RFC 3261 messages (with the RFC 4475/5118 edge cases), frames them on datagram and stream
//! transports, runs the RFC 3261 §17 transactions (with RFC 6026 and RFC 3581) and keeps
//! dialog state — all sans-IO: no sockets, no clock reads, no randomness of its own. Time and
//! random seeds come in as arguments; bytes to send and deadlines come out.
//!
//! It is not a proxy, registrar or SDP library: call logic lives in `callseal-call`, sockets in
//! `callseal-gateway`, SDP in `ezk-sdp-types`. Start with [`Message`], [`parse_datagram`],
//! [`StreamFramer`], [`Endpoint`] and [`Dialog`].

pub mod dialog;
mod endpoint;
mod error;
mod framing;
pub mod message;
mod random;
mod transaction;

/// The string type of short header texts (user parts, hosts, display names, `Text` values):
/// held inline up to 24 bytes, so most of them cost no allocation.
pub use compact_str::CompactString;
pub use dialog::{Dialog, DialogError, DialogId, DialogState, Dialogs, Routed};
pub use endpoint::{
    Endpoint, EndpointConfig, Event, Transmit, apply_received_rport, response_destination,
};
pub use error::{Error, is_fatal_for_stream, status_for};
pub use framing::{StreamFramer, StreamItem, parse_datagram};
pub use message::builders_api::response_for_unparseable;
pub use message::{
    BRANCH_MAGIC_COOKIE, CSeq, Contact, Header, HeaderName, HeaderValue, Headers, Host, Limits,
    MediaType, Message, Method, NameAddr, Param, Params, Reason, Rport, Scheme, SipUri, StartLine,
    StatusCode, TokenList, Uri, Via,
};
pub use random::{RandomSource, SeededRandom, new_branch, new_call_id, new_tag};
pub use transaction::{ClientTxId, ServerTxId, Timer, TimerConfig, Transport, TxId};
