//! Constants and byte layout of the sealed recording format, version 1.
//!
//! The normative description is `docs/recording-format.md`; this module is its code. A file is a
//! header followed by one or more segments:
//!
//! ```text
//! header  = magic(8) version(2) header_len(2) recording_id(16) epoch_id(4) sample_rate(4)
//!           segment_ms(4) pt_count(1) pt_count*(pt(1) encoding(1)) commitment(32) mac(32)
//! segment = prefix(4: final flag in bit 31, plaintext length in bits 0..=30) ciphertext tag(16)
//! ```

use crate::keys::{EpochId, RecordingId};
use crate::payload::{Encoding, PayloadTypes};

/// The recording format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// The first eight bytes of every sealed recording: a non-ASCII byte (so the file is never
/// taken for text), "CSREC", then CR LF (so a text-mode transfer that mangles line ends is
/// detected at once).
pub const MAGIC: [u8; 8] = [0x89, b'C', b'S', b'R', b'E', b'C', b'\r', b'\n'];

/// The only sample rate of version 1 (G.711, RFC 3551 §4.5.14).
pub const SAMPLE_RATE: u32 = 8000;

/// Largest plaintext of one segment (1 MiB). A writer seals before reaching it; a reader treats a
/// larger length as a damaged segment without reading it.
pub const MAX_SEGMENT_PLAINTEXT: usize = 1 << 20;

/// Largest payload of one frame. RTP over UDP rarely exceeds 1500 bytes; 4096 leaves room for
/// 500 ms of G.711 in one packet.
pub const MAX_FRAME_PAYLOAD: usize = 4096;

/// Shortest and longest segment duration a header may declare, in milliseconds.
pub const SEGMENT_MS_RANGE: std::ops::RangeInclusive<u32> = 20..=10_000;

/// Length of the Poly1305 tag after each segment.
pub const TAG_LEN: usize = 16;

/// Length of the clear prefix of each segment.
pub const PREFIX_LEN: usize = 4;

/// Bit 31 of the segment prefix: this is the final segment.
pub(crate) const FINAL_FLAG: u32 = 1 << 31;

/// Length of the fixed part of the header before the payload-type table.
pub(crate) const FIXED_HEAD_LEN: usize = 8 + 2 + 2 + 16 + 4 + 4 + 4 + 1;

/// Length of the key commitment and of the header MAC.
pub(crate) const COMMITMENT_LEN: usize = 32;
pub(crate) const MAC_LEN: usize = 32;

/// Header length for `n` payload-type entries.
pub(crate) const fn header_len(n: usize) -> usize {
    FIXED_HEAD_LEN + 2 * n + COMMITMENT_LEN + MAC_LEN
}

/// The parsed, authenticated header of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub(crate) recording: RecordingId,
    pub(crate) epoch: EpochId,
    pub(crate) segment_ms: u32,
    pub(crate) payload_types: PayloadTypes,
}

impl Header {
    /// The recording id (also the HKDF salt of the payload key).
    pub fn recording_id(&self) -> RecordingId {
        self.recording
    }

    /// The retention epoch the recording's key was wrapped to.
    pub fn epoch_id(&self) -> EpochId {
        self.epoch
    }

    /// The writer's segment policy: the longest span of arrival time one segment covers.
    pub fn segment_duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.segment_ms))
    }

    /// The payload-type table the writer declared.
    pub fn payload_types(&self) -> &PayloadTypes {
        &self.payload_types
    }

    /// The header bytes up to (not including) the commitment.
    pub(crate) fn encode_fields(&self) -> Vec<u8> {
        let entries = self.payload_types.entries();
        let total = header_len(entries.len());
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        // `total` is at most header_len(128) = 362 bytes, far below u16::MAX.
        out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(self.recording.as_bytes());
        out.extend_from_slice(&self.epoch.0.to_be_bytes());
        out.extend_from_slice(&SAMPLE_RATE.to_be_bytes());
        out.extend_from_slice(&self.segment_ms.to_be_bytes());
        out.push(u8::try_from(entries.len()).unwrap_or(u8::MAX));
        for (pt, enc) in entries {
            out.push(*pt);
            out.push(enc.code());
        }
        out
    }
}

/// Why the fields of a header (after its length was checked) are not a valid version 1 header.
/// Only reachable through a writer bug, since the fields are authenticated before this runs.
pub(crate) fn decode_fields(fields: &[u8]) -> Result<Header, &'static str> {
    let get = |range: std::ops::Range<usize>| fields.get(range).ok_or("header too short");
    let recording =
        RecordingId::from_bytes(get(12..28)?.try_into().map_err(|_| "header too short")?);
    let u32_at = |at: usize| -> Result<u32, &'static str> {
        let b: [u8; 4] = get(at..at + 4)?
            .try_into()
            .map_err(|_| "header too short")?;
        Ok(u32::from_be_bytes(b))
    };
    let epoch = EpochId(u32_at(28)?);
    if u32_at(32)? != SAMPLE_RATE {
        return Err("sample rate is not 8000 Hz");
    }
    let segment_ms = u32_at(36)?;
    if !SEGMENT_MS_RANGE.contains(&segment_ms) {
        return Err("segment duration out of range");
    }
    let count = usize::from(*get(40..41)?.first().ok_or("header too short")?);
    let table = get(FIXED_HEAD_LEN..FIXED_HEAD_LEN + 2 * count)?;
    let mut payload_types = PayloadTypes::empty();
    for pair in table.chunks_exact(2) {
        let (pt, code) = match pair {
            [pt, code] => (*pt, *code),
            _ => return Err("header too short"),
        };
        let enc = Encoding::from_code(code).ok_or("unknown encoding in payload-type table")?;
        payload_types = payload_types
            .with(pt, enc)
            .map_err(|_| "invalid payload-type table")?;
    }
    Ok(Header {
        recording,
        epoch,
        segment_ms,
        payload_types,
    })
}

/// The 12-byte nonce of segment `index` (STREAM, Hoang et al. 2015, as in age): three zero bytes,
/// the index as a 64-bit big-endian counter, and a last-segment flag byte (1 for the final
/// segment, 0 otherwise).
pub(crate) fn segment_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// The associated data of a segment: the header MAC (binding the whole header) followed by the
/// segment's clear prefix (binding its length and final flag).
pub(crate) fn segment_aad(header_mac: &[u8; MAC_LEN], prefix: [u8; PREFIX_LEN]) -> [u8; 36] {
    let mut aad = [0u8; MAC_LEN + PREFIX_LEN];
    aad[..MAC_LEN].copy_from_slice(header_mac);
    aad[MAC_LEN..].copy_from_slice(&prefix);
    aad
}

/// The clear prefix of a segment.
pub(crate) fn segment_prefix(plaintext_len: usize, last: bool) -> [u8; PREFIX_LEN] {
    // Callers keep plaintext_len <= MAX_SEGMENT_PLAINTEXT < 2^31.
    let len = u32::try_from(plaintext_len).unwrap_or(u32::MAX) & !FINAL_FLAG;
    let word = if last { len | FINAL_FLAG } else { len };
    word.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout() {
        assert_eq!(segment_nonce(0, false), [0; 12]);
        assert_eq!(
            segment_nonce(0x0102_0304_0506_0708, true),
            [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1]
        );
    }

    #[test]
    fn prefix_layout() {
        assert_eq!(segment_prefix(0x1234, false), [0, 0, 0x12, 0x34]);
        assert_eq!(segment_prefix(0x1234, true), [0x80, 0, 0x12, 0x34]);
    }

    #[test]
    fn header_fields_round_trip() {
        let h = Header {
            recording: RecordingId::from_bytes([3; 16]),
            epoch: EpochId(20_454),
            segment_ms: 1000,
            payload_types: PayloadTypes::g711(),
        };
        let bytes = h.encode_fields();
        assert_eq!(bytes.len(), header_len(3) - COMMITMENT_LEN - MAC_LEN);
        assert_eq!(&bytes[..8], &MAGIC);
        assert_eq!(&bytes[10..12], &(header_len(3) as u16).to_be_bytes());
        assert_eq!(decode_fields(&bytes).unwrap(), h);
        let mut bad = bytes.clone();
        bad[35] = 0x41; // sample rate
        assert_eq!(decode_fields(&bad), Err("sample rate is not 8000 Hz"));
        let mut bad = bytes;
        bad[42] = 99; // encoding code of the first entry
        assert!(decode_fields(&bad).is_err());
    }
}
