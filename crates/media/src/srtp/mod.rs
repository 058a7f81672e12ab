//! SRTP/SRTCP (RFC 3711) for SDES-keyed legs, on `rtc-srtp` with the ring provider.
//!
//! One context per direction, as RFC 3711 §3.2 requires: the inbound context uses the key the
//! peer announced, the outbound context the key the gateway announced. `rtc-srtp` keeps per-SSRC
//! rollover counters (estimated from the sequence number as in RFC 3711 §3.3.1 / App. A) and a
//! replay window of [`REPLAY_WINDOW`] packets. Because the gateway re-bases sequence numbers
//! per outgoing stream (see [`crate::outbound`]), the outbound ROC follows the *rewritten*
//! sequence, never the upstream one.

mod base64;
pub mod sdes;

use rtc_shared::marshal::{MarshalSize, Unmarshal};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};

pub use sdes::{CryptoAttribute, SdesError, SrtpKeyMaterial, SrtpSuite};

/// Replay window in packets (RFC 3711 §3.3.2 requires at least 64).
pub const REPLAY_WINDOW: usize = 128;

/// Distinct SSRCs that may fail authentication before packets of further unknown SSRCs are
/// refused unread. The SRTP library keeps state for every SSRC it is shown, authenticated or
/// not, so forged packets with random SSRCs would otherwise grow memory without bound.
pub const MAX_UNAUTHENTICATED_SSRCS: usize = 64;

/// An SRTP operation failed. Messages carry no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The context could not be built (key length, provider).
    #[error("SRTP context for {suite} could not be created: {reason}")]
    Setup {
        /// Suite name.
        suite: &'static str,
        /// The library's reason (never contains key bytes).
        reason: String,
    },
    /// Authentication failed, a replay, or a packet too short for the tag.
    #[error("SRTP packet rejected: {reason}")]
    Rejected {
        /// The library's reason.
        reason: String,
    },
}

/// Direction of an SRTP context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Protects packets the gateway sends.
    Outbound,
    /// Unprotects packets the gateway receives (replay window on).
    Inbound,
}

/// One direction's SRTP and SRTCP state.
pub struct SrtpContext {
    inner: Context,
    direction: Direction,
    rtp_sources: SourceGate,
    rtcp_sources: SourceGate,
}

/// Which SSRCs have authenticated, and which have only failed (bounded).
#[derive(Default)]
struct SourceGate {
    authenticated: Vec<u32>,
    failed: Vec<u32>,
}

impl SourceGate {
    fn admits(&self, ssrc: u32) -> bool {
        self.authenticated.contains(&ssrc)
            || self.failed.contains(&ssrc)
            || self.failed.len() < MAX_UNAUTHENTICATED_SSRCS
    }

    fn record(&mut self, ssrc: u32, ok: bool) {
        if ok {
            if !self.authenticated.contains(&ssrc) {
                self.authenticated.push(ssrc);
                self.failed.retain(|&s| s != ssrc);
            }
        } else if !self.authenticated.contains(&ssrc) && !self.failed.contains(&ssrc) {
            self.failed.push(ssrc);
        }
    }
}

/// SSRC of an RTP (`offset` 8) or RTCP (`offset` 4) packet.
fn ssrc_at(packet: &[u8], offset: usize) -> Option<u32> {
    let b = packet.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The SRTP library re-derives the header length from its own parse of the header, whose
/// RFC 8285 element handling can disagree with the length the header declares (padding between
/// elements, elements past the declared block): it would then slice the packet out of bounds or
/// encrypt from the wrong offset. Such packets are refused before they reach it.
fn check_header(packet: &[u8]) -> Result<(), SrtpError> {
    let declared = crate::rtp::header_len(packet).map_err(|e| SrtpError::Rejected {
        reason: e.to_string(),
    })?;
    let mut buf = packet;
    let parsed = rtc_rtp::header::Header::unmarshal(&mut buf).map_err(rejected)?;
    if parsed.marshal_size() != declared {
        return Err(SrtpError::Rejected {
            reason: format!(
                "RTP header extension of {declared} header bytes is not in canonical RFC 8285 form"
            ),
        });
    }
    Ok(())
}

fn too_short() -> SrtpError {
    SrtpError::Rejected {
        reason: "packet shorter than its header".into(),
    }
}

fn unknown_source() -> SrtpError {
    SrtpError::Rejected {
        reason: format!(
            "new SSRC refused: {MAX_UNAUTHENTICATED_SSRCS} other SSRCs already failed authentication"
        ),
    }
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context keyed with `key` for `direction`.
    pub fn new(key: &SrtpKeyMaterial, direction: Direction) -> Result<Self, SrtpError> {
        let suite = key.suite();
        let (rtp_opt, rtcp_opt) = match direction {
            Direction::Inbound => (
                Some(srtp_replay_protection(REPLAY_WINDOW)),
                Some(srtcp_replay_protection(REPLAY_WINDOW)),
            ),
            Direction::Outbound => (None, None),
        };
        let inner = Context::new(
            key.key(),
            key.salt(),
            suite.profile(),
            rtp_opt,
            rtcp_opt,
            &RingCrypto,
        )
        .map_err(|e| SrtpError::Setup {
            suite: suite.name(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner,
            direction,
            rtp_sources: SourceGate::default(),
            rtcp_sources: SourceGate::default(),
        })
    }

    /// Encrypts and authenticates a valid RTP packet (RFC 3711 §3.3).
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        check_header(packet)?;
        self.inner
            .encrypt_rtp(packet)
            .map(|b| b.to_vec())
            .map_err(rejected)
    }

    /// Authenticates, checks replay and decrypts an SRTP packet, returning plain RTP.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let ssrc = ssrc_at(packet, 8).ok_or_else(too_short)?;
        check_header(packet)?;
        if !self.rtp_sources.admits(ssrc) {
            return Err(unknown_source());
        }
        let result = self.inner.decrypt_rtp(packet).map(|b| b.to_vec());
        self.rtp_sources.record(ssrc, result.is_ok());
        result.map_err(rejected)
    }

    /// Encrypts and authenticates an RTCP compound packet.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inner
            .encrypt_rtcp(packet)
            .map(|b| b.to_vec())
            .map_err(rejected)
    }

    /// Authenticates, checks replay and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let ssrc = ssrc_at(packet, 4).ok_or_else(too_short)?;
        if !self.rtcp_sources.admits(ssrc) {
            return Err(unknown_source());
        }
        let result = self.inner.decrypt_rtcp(packet).map(|b| b.to_vec());
        self.rtcp_sources.record(ssrc, result.is_ok());
        result.map_err(rejected)
    }
}

fn rejected(e: rtc_shared::error::Error) -> SrtpError {
    SrtpError::Rejected {
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
