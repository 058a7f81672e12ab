//! RFC 3261 §17 transactions (with RFC 6026's Accepted state): the four state machines, the
//! timer table they share, and the keys that match messages to them (§17.1.3, §17.2.3).
//!
//! The state machines only change state and say what to do; the [`crate::Endpoint`] owns them,
//! performs the sends and reports events.

pub(crate) mod client;
pub(crate) mod key;
pub(crate) mod server;
mod timers;

use std::fmt;

pub(crate) use timers::TimerTable;
pub use timers::{Timer, TimerConfig};

/// The transport a message travels on (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP: unreliable, so transactions retransmit (§17.1.1.2).
    Udp,
    /// TCP: reliable, no retransmissions.
    Tcp,
    /// TLS over TCP: reliable.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (retransmission timers A, E, G are not used and
    /// D, I, J, K are zero, §17.1.1.2 ff.).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
    /// The default port when a Via or URI names none (§18.2.2, §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// Identifies one server transaction of an [`crate::Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(pub u64);

/// Identifies one client transaction of an [`crate::Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(pub u64);

/// Either kind of transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxId {
    /// A client transaction (our request).
    Client(ClientTxId),
    /// A server transaction (the peer's request).
    Server(ServerTxId),
}

impl fmt::Display for ServerTxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server transaction {}", self.0)
    }
}

impl fmt::Display for ClientTxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client transaction {}", self.0)
    }
}
