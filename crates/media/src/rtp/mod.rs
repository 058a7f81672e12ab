//! RTP/RTCP wire format: a strict, zero-copy header view for the per-packet path, a writer for
//! the packets the gateway emits, and the RTP/RTCP demultiplexer.
//!
//! `rtc-rtp` 0.21 parses the fine structure (RFC 8285 elements) but accepts a padding count of
//! 0, any version, and extension elements that run past the declared extension length, and it
//! allocates per packet. [`RtpView::parse`] checks every length against the datagram first
//! (RFC 3550 §5.1, §5.3.1, App. A.1) without allocating; [`RtpView::to_rtc_packet`] hands an
//! already-validated packet to `rtc-rtp` when the structured form (extension elements) is wanted.

pub mod rtcp;

use bytes::Bytes;
use rtc_shared::marshal::Unmarshal;

/// Size of the fixed RTP header (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;

/// Why a datagram is not a valid RTP packet. Such packets are dropped and counted, never relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP datagram of {len} bytes is shorter than the 12-byte fixed header; dropped")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// The version field is not 2 (RFC 3550 §5.1); may be STUN/DTLS on a shared port (RFC 7983).
    #[error("RTP version {version} is not 2; dropped (STUN/DTLS belong to another demultiplexer)")]
    BadVersion {
        /// The two version bits.
        version: u8,
    },
    /// The CSRC list (4·CC bytes) runs past the datagram.
    #[error("RTP CSRC count {csrc_count} needs {needed} header bytes but the datagram has {len}")]
    CsrcTruncated {
        /// CC field.
        csrc_count: u8,
        /// Bytes the header claims.
        needed: usize,
        /// Datagram length.
        len: usize,
    },
    /// X=1 but the extension header or its declared words run past the datagram.
    #[error("RTP header extension needs {needed} bytes but the datagram has {len}")]
    ExtensionTruncated {
        /// Bytes the header plus extension claim.
        needed: usize,
        /// Datagram length.
        len: usize,
    },
    /// P=1 with a padding count of 0 or larger than what follows the header (RFC 3550 §5.1).
    #[error("RTP padding count {count} is invalid for {available} bytes after the header")]
    BadPadding {
        /// Last octet of the datagram (0 when there is none).
        count: u8,
        /// Bytes between the header and the end of the datagram.
        available: usize,
    },
}

/// A validated RTP packet borrowed from the datagram it came in.
///
/// All offsets were checked by [`RtpView::parse`]; accessors cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    bytes: &'a [u8],
    payload_start: usize,
    payload_end: usize,
}

impl<'a> RtpView<'a> {
    /// Validates `bytes` as one RTP packet: version 2, CSRC list, extension (length counts
    /// 32-bit words, zero allowed; RFC 3550 §5.3.1) and padding (1 ≤ count ≤ bytes after the
    /// header). Never panics, never allocates.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        let header_len = header_len(bytes)?;
        let len = bytes.len();
        let mut payload_end = len;
        if bytes.first().is_some_and(|b0| b0 & 0x20 != 0) {
            let available = len - header_len;
            // RFC 3550 §5.1: the count includes itself, so it is at least 1 and cannot reach
            // into the header.
            let count = if available == 0 {
                0
            } else {
                bytes.last().copied().unwrap_or(0)
            };
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::BadPadding { count, available });
            }
            payload_end = len - usize::from(count);
        }
        Ok(Self {
            bytes,
            payload_start: header_len,
            payload_end,
        })
    }

    /// The whole datagram, byte for byte.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.byte(1) & 0x80 != 0
    }

    /// Payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.byte(1) & 0x7f
    }

    /// Sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.byte(2), self.byte(3)])
    }

    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.byte(4), self.byte(5), self.byte(6), self.byte(7)])
    }

    /// Synchronisation source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.byte(8), self.byte(9), self.byte(10), self.byte(11)])
    }

    /// Number of CSRCs.
    pub fn csrc_count(&self) -> u8 {
        self.byte(0) & 0x0f
    }

    /// Whether the X bit is set.
    pub fn has_extension(&self) -> bool {
        self.byte(0) & 0x10 != 0
    }

    /// Whether the P bit is set.
    pub fn has_padding(&self) -> bool {
        self.byte(0) & 0x20 != 0
    }

    /// Offset of the payload in the datagram (header, CSRCs and extension skipped).
    pub fn payload_offset(&self) -> usize {
        self.payload_start
    }

    /// The payload, without header, CSRCs, extension and padding.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
            .get(self.payload_start..self.payload_end)
            .unwrap_or_default()
    }

    /// The full structured parse by `rtc-rtp` (CSRC list, RFC 8285 extension elements).
    ///
    /// Only reached after [`RtpView::parse`] accepted the bytes, so the checks `rtc-rtp` lacks
    /// have already been made. Fails if an extension element runs past the extension block.
    pub fn to_rtc_packet(&self) -> Result<rtc_rtp::Packet, RtpError> {
        let mut buf = Bytes::copy_from_slice(self.bytes);
        let packet =
            rtc_rtp::Packet::unmarshal(&mut buf).map_err(|_| RtpError::ExtensionTruncated {
                needed: self.payload_start,
                len: self.bytes.len(),
            })?;
        // rtc-rtp does not bound elements by the declared extension length; a payload of the
        // wrong size means an element overran it.
        if packet.payload.len() != self.payload().len() {
            return Err(RtpError::ExtensionTruncated {
                needed: self.bytes.len() - packet.payload.len(),
                len: self.bytes.len(),
            });
        }
        Ok(packet)
    }

    fn byte(&self, i: usize) -> u8 {
        // In bounds: parse() guaranteed at least FIXED_HEADER_LEN bytes.
        self.bytes.get(i).copied().unwrap_or(0)
    }
}

/// Validates the header of an RTP or SRTP packet (version, CSRC list, extension; RFC 3550
/// §5.1, §5.3.1) and returns its length. Padding is not checked: under SRTP it lies inside the
/// encrypted part (RFC 3711 §3.1), so it is checked after decryption by [`RtpView::parse`].
pub fn header_len(bytes: &[u8]) -> Result<usize, RtpError> {
    let len = bytes.len();
    let b0 = match bytes.first() {
        Some(&b0) if len >= FIXED_HEADER_LEN => b0,
        _ => return Err(RtpError::TooShort { len }),
    };
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion { version });
    }
    let csrc_count = b0 & 0x0f;
    let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
    if header_len > len {
        return Err(RtpError::CsrcTruncated {
            csrc_count,
            needed: header_len,
            len,
        });
    }
    if b0 & 0x10 != 0 {
        // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in words excluding these 4 bytes.
        let Some(&[_, _, hi, lo]) = bytes.get(header_len..header_len + 4) else {
            return Err(RtpError::ExtensionTruncated {
                needed: header_len + 4,
                len,
            });
        };
        let words = usize::from(u16::from_be_bytes([hi, lo]));
        header_len += 4 + 4 * words;
        if header_len > len {
            return Err(RtpError::ExtensionTruncated {
                needed: header_len,
                len,
            });
        }
    }
    Ok(header_len)
}

/// Fields of an RTP header the gateway writes (no CSRC, no extension, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits; higher bits are masked off).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Appends the 12-byte header and `payload` to `out`.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(FIXED_HEADER_LEN + payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
    }
}

/// Rewrites marker, payload type, sequence, timestamp and SSRC of a validated packet in place,
/// keeping CSRCs, extension, payload and padding byte for byte.
pub fn rewrite_header(packet: &mut [u8], header: &RtpHeader) {
    if let Some(fixed) = packet.get_mut(1..FIXED_HEADER_LEN) {
        fixed[0] = (u8::from(header.marker) << 7) | (header.payload_type & 0x7f);
        fixed[1..3].copy_from_slice(&header.sequence.to_be_bytes());
        fixed[3..7].copy_from_slice(&header.timestamp.to_be_bytes());
        fixed[7..11].copy_from_slice(&header.ssrc.to_be_bytes());
    }
}

/// What a datagram on a media port is (RFC 5761 §4, RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP.
    Rtp,
    /// RTCP (second octet 192..=223 under rtcp-mux).
    Rtcp,
    /// Anything else (STUN, DTLS, garbage).
    Other,
}

/// Classifies a datagram by its first two octets.
pub fn classify(bytes: &[u8]) -> PacketKind {
    match bytes {
        [b0, b1, ..] if b0 >> 6 == 2 => {
            // RFC 5761 §4: RTCP packet types 192–223 collide with RTP PT 64–95 + marker,
            // which is why those PTs must not be used for RTP.
            if (192..=223).contains(b1) {
                PacketKind::Rtcp
            } else {
                PacketKind::Rtp
            }
        }
        _ => PacketKind::Other,
    }
}

#[cfg(test)]
mod tests;
