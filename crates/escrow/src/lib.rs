//! The key escrow of callseal: it decides who may ever hear a recording again, and makes sure
//! that after retention nobody can.
//!
//! It holds one X25519 keypair per retention epoch (a UTC day of expiry), publishes the public
//! halves in an epoch table signed with its Ed25519 identity, stores the HPKE-wrapped data keys
//! that gateways deposit, re-wraps a key to a listener's own key when they state a purpose, and
//! destroys epochs when their retention ends (two-phase crypto-shredding, clock-guarded,
//! crash-resumable), writing every decision to a hash-chained, signed audit log first. Secrets at
//! rest are sealed under a table key that is replaced at every shred, so old database backups
//! become inert. It ships an HTTPS/JSON API (rustls, pinned CA, bearer tokens) and the typed
//! client the CLI and the gateway use.
//!
//! It is not a recording reader or writer (see `callseal-recording`, whose key types it uses), it
//! never sees audio or caller numbers (only pseudonymous caller codes), and it never returns a
//! bare data key. Design and limits: `docs/escrow.md`.

pub mod client;
pub mod clock;
pub mod datadir;
pub mod error;
pub mod ids;
pub mod keyring;
pub mod link;
pub mod model;
pub mod retention;
pub mod secret;
pub mod server;
pub mod service;
pub mod store;
pub mod table;
pub mod tls;

mod fsutil;
mod wire;

pub use clock::{Clock, ManualClock, SystemClock, TestFileClock};
pub use datadir::{DataDir, InitOptions, InitReport};
pub use error::{ErrorCode, EscrowError};
pub use ids::{
    CallerCode, GatewayId, LineId, OperatorId, Purpose, Reason, RetentionDays, Role, Timestamp,
};
pub use link::{GatewayLink, LocalGateway};
pub use model::*;
pub use secret::{IdentityKey, Token};
pub use service::{Action, Actor, CrashPoint, Service, ServiceConfig, verify_receipt};
pub use table::{EpochEntry, EpochTable, SignedEpochTable};
