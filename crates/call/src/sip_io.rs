//! The boundary to the SIP transaction layer: what the shell reports from its `Endpoint`, and
//! what the call core asks it to send. Retransmissions, Timer A–K and CANCEL matching are the
//! transaction layer's job (RFC 3261 §17); the core sees each request and response once.

use std::fmt;
use std::net::SocketAddr;

use callseal_sip::Message;

/// Identifies one server transaction of the shell's transaction layer (opaque to the core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTx(pub u64);

/// Why one of our client transactions ended without a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionFailure {
    /// Timer B or F fired (RFC 3261 §17.1.1.2, §17.1.2.2): treated like a 408.
    Timeout,
    /// The transport could not deliver the request (RFC 3261 §8.1.3.1): treated like a 503.
    Transport,
}

/// A SIP input for the core. `Debug` shows the kind, method/status and CSeq only: bodies
/// may carry SRTP keys and headers the caller's number.
#[non_exhaustive]
pub enum SipEvent {
    /// A new request (never a retransmission). `tx` is `None` for an ACK, which has no server
    /// transaction of its own when it acknowledges a 2xx (RFC 3261 §17.1.1.3).
    Request {
        /// Its server transaction.
        tx: Option<ServerTx>,
        /// The request, already validated by the parser.
        request: Message,
        /// Where it came from (the A-leg's in-dialog requests are sent back there).
        source: SocketAddr,
    },
    /// A response to one of our requests (matched to its client transaction by branch and
    /// CSeq method). For an INVITE, 2xx retransmissions are delivered too (RFC 6026 §7.2).
    Response {
        /// The response.
        response: Message,
    },
    /// A CANCEL matched one of our pending INVITE server transactions; the transaction layer
    /// has answered the CANCEL itself (RFC 3261 §9.2).
    Cancelled {
        /// The INVITE's server transaction.
        tx: ServerTx,
    },
    /// Our 2xx to an INVITE was retransmitted for 64·T1 without an ACK (RFC 3261 §13.3.1.4;
    /// the transaction layer retransmits it): the call is ended with a BYE.
    AckTimeout {
        /// The INVITE's server transaction.
        tx: ServerTx,
    },
    /// One of our client transactions failed.
    RequestFailed {
        /// The branch of the request's Via.
        branch: String,
        /// The CSeq method of the request.
        method: callseal_sip::Method,
        /// Why.
        failure: TransactionFailure,
    },
}

/// A SIP output of the core. `Debug` shows no body and no identity (see [`SipEvent`]).
#[non_exhaustive]
pub enum SipCommand {
    /// Send a response on a server transaction.
    Respond {
        /// The transaction.
        tx: ServerTx,
        /// The response.
        response: Message,
    },
    /// Start a client transaction with this request (INVITE, BYE, CANCEL, re-INVITE).
    Request {
        /// The request; its top Via branch identifies the transaction.
        request: Message,
        /// Next hop.
        destination: SocketAddr,
    },
    /// Send an ACK for a 2xx outside any transaction (RFC 3261 §13.2.2.4).
    Ack {
        /// The ACK.
        request: Message,
        /// Next hop.
        destination: SocketAddr,
    },
    /// Cancel our pending INVITE (RFC 3261 §9.1): the transaction layer builds the CANCEL from
    /// the INVITE's client transaction (same Request-URI, Call-ID, From, To, CSeq number and
    /// top Via branch). Sent only after a provisional response arrived.
    Cancel {
        /// The branch of the INVITE's top Via (identifies its client transaction).
        invite_branch: String,
        /// Next hop.
        destination: SocketAddr,
    },
}

/// `INVITE cseq=1 call-id=…` / `200 cseq=1 INVITE`: enough to follow a call in a log.
fn brief(m: &Message) -> String {
    let cseq = m
        .headers
        .cseq()
        .map(|c| format!("{} {}", c.seq, c.method))
        .unwrap_or_default();
    match (m.method(), m.status()) {
        (Some(method), _) => format!("{method} (CSeq {cseq})"),
        (None, Some(status)) => format!("{status} (CSeq {cseq})"),
        (None, None) => String::new(),
    }
}

impl fmt::Debug for SipEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request {
                tx,
                request,
                source,
            } => f
                .debug_struct("Request")
                .field("tx", tx)
                .field("request", &brief(request))
                .field("source", source)
                .finish(),
            Self::Response { response } => f
                .debug_struct("Response")
                .field("response", &brief(response))
                .finish(),
            Self::Cancelled { tx } => f.debug_struct("Cancelled").field("tx", tx).finish(),
            Self::AckTimeout { tx } => f.debug_struct("AckTimeout").field("tx", tx).finish(),
            Self::RequestFailed {
                branch,
                method,
                failure,
            } => f
                .debug_struct("RequestFailed")
                .field("branch", branch)
                .field("method", method)
                .field("failure", failure)
                .finish(),
        }
    }
}

impl fmt::Debug for SipCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Respond { tx, response } => f
                .debug_struct("Respond")
                .field("tx", tx)
                .field("response", &brief(response))
                .finish(),
            Self::Request {
                request,
                destination,
            } => f
                .debug_struct("Request")
                .field("request", &brief(request))
                .field("destination", destination)
                .finish(),
            Self::Ack {
                request,
                destination,
            } => f
                .debug_struct("Ack")
                .field("request", &brief(request))
                .field("destination", destination)
                .finish(),
            Self::Cancel {
                invite_branch,
                destination,
            } => f
                .debug_struct("Cancel")
                .field("invite_branch", invite_branch)
                .field("destination", destination)
                .finish(),
        }
    }
}
