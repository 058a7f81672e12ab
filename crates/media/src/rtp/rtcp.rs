//! RTCP validation with `rtc-rtcp` (RFC 3550 §6).
//!
//! The gateway terminates RTCP: the legs carry rewritten SSRCs and sequence numbers, so a peer's
//! reports would describe a stream the other peer never saw. Packets are validated, counted and
//! summarised (BYE, sender reports), not forwarded.

use bytes::Bytes;
use rtc_rtcp::header::PacketType;

/// Why a datagram classified as RTCP was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Shorter than one RTCP header, or a sub-packet length runs past the datagram.
    #[error("RTCP compound packet of {len} bytes is truncated or has a bad length field; dropped")]
    Malformed {
        /// Datagram length.
        len: usize,
    },
}

/// What a valid RTCP compound packet contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpSummary {
    /// Number of sub-packets.
    pub packets: usize,
    /// A sender report was present.
    pub sender_report: bool,
    /// A BYE was present (RFC 3550 §6.6): the source is leaving.
    pub bye: bool,
}

/// Validates a compound RTCP packet (RFC 3550 §6.1: first sub-packet SR or RR, version 2,
/// every length within the datagram) and summarises it.
pub fn parse_rtcp(bytes: &[u8]) -> Result<RtcpSummary, RtcpError> {
    let len = bytes.len();
    // RFC 3550 App. A.2: the first sub-packet is SR or RR (reduced-size RTCP, RFC 5506, is not
    // negotiated by this gateway).
    match bytes {
        [b0, 200 | 201, ..] if b0 >> 6 == 2 && len >= 8 => {}
        _ => return Err(RtcpError::Malformed { len }),
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    let packets =
        rtc_rtcp::packet::unmarshal(&mut buf).map_err(|_| RtcpError::Malformed { len })?;
    let mut summary = RtcpSummary {
        packets: packets.len(),
        ..RtcpSummary::default()
    };
    for p in &packets {
        match p.header().packet_type {
            PacketType::SenderReport => summary.sender_report = true,
            PacketType::Goodbye => summary.bye = true,
            _ => {}
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_report_and_bye_are_summarised() {
        // RR with no report blocks (SSRC 0x01020304), then BYE for the same SSRC.
        let bytes = hex::decode("80c90001010203048 1cb000101020304".replace(' ', "")).unwrap();
        let s = parse_rtcp(&bytes).unwrap();
        assert_eq!(s.packets, 2);
        assert!(s.bye);
        assert!(!s.sender_report);
    }

    #[test]
    fn truncated_length_is_rejected() {
        // RR claiming 2 words after the header, only one present.
        let bytes = hex::decode("80c9000201020304").unwrap();
        assert_eq!(parse_rtcp(&bytes), Err(RtcpError::Malformed { len: 8 }));
        assert_eq!(parse_rtcp(&[0x80]), Err(RtcpError::Malformed { len: 1 }));
    }
}
