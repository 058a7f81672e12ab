//! Non-secret identifiers: the recording id and the retention epoch id.

use super::{KeyError, fill_random};
use std::fmt;
use std::str::FromStr;

/// The random 128-bit id of a recording. Also the HKDF salt of its payload key and part of the
/// HPKE `info` of its wrapped key. Files are named `<id>.csrec`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId([u8; RecordingId::LEN]);

impl RecordingId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// A fresh random id from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; Self::LEN];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps raw bytes (as read from a recording header or a database).
    pub const fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; Self::LEN] {
        self.0
    }

    /// The raw bytes, borrowed.
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Display for RecordingId {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordingId({self})")
    }
}

impl FromStr for RecordingId {
    type Err = KeyError;

    /// Accepts exactly 32 lowercase hex digits: one canonical spelling per id, so a file name
    /// or a database key can be compared as text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex::<{ Self::LEN }>(s)
            .map(Self)
            .ok_or(KeyError::ParseId {
                what: "recording id",
                reason: "expected exactly 32 lowercase hex digits",
            })
    }
}

/// A retention epoch: the UTC day number (days since 1970-01-01) of the epoch window's last
/// day. Every recording whose retention ends in that window is wrapped to the epoch's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EpochId(pub u32);

impl EpochId {
    /// The day number.
    pub const fn day(self) -> u32 {
        self.0
    }
}

impl fmt::Display for EpochId {
    /// Decimal, no padding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for EpochId {
    type Err = KeyError;

    /// Accepts a canonical decimal `u32`: ASCII digits only, no sign, no whitespace, no leading
    /// zero (except "0").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = KeyError::ParseId {
            what: "epoch id",
            reason: "expected a decimal day number without sign, spaces or leading zeros, at most 4294967295",
        };
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() > 1 && s.starts_with('0'))
        {
            return Err(err);
        }
        s.parse::<u32>().map(EpochId).map_err(|_| err)
    }
}

pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Parses exactly `2 * N` lowercase hex digits.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *o = (hi << 4) | lo;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_id_text_round_trip() {
        let id = RecordingId::from_bytes([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        assert_eq!(id.to_string(), "00112233445566778899aabbccddeeff");
        assert_eq!(
            format!("{id:?}"),
            "RecordingId(00112233445566778899aabbccddeeff)"
        );
        assert_eq!(
            "00112233445566778899aabbccddeeff"
                .parse::<RecordingId>()
                .unwrap(),
            id
        );
        for bad in [
            "",
            "00112233445566778899AABBCCDDEEFF",
            "00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeeff0",
            " 00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeefg",
            "0x112233445566778899aabbccddeeff",
            "é0112233445566778899aabbccddeef",
        ] {
            assert!(bad.parse::<RecordingId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn generated_recording_ids_differ() {
        let a = RecordingId::generate().unwrap();
        let b = RecordingId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<RecordingId>().unwrap(), a);
    }

    #[test]
    fn epoch_id_decimal() {
        assert_eq!(EpochId(20_454).to_string(), "20454");
        assert_eq!("20454".parse::<EpochId>().unwrap(), EpochId(20_454));
        assert_eq!("0".parse::<EpochId>().unwrap(), EpochId(0));
        assert_eq!("4294967295".parse::<EpochId>().unwrap(), EpochId(u32::MAX));
        for bad in ["", "+1", "-1", "01", " 1", "1 ", "4294967296", "1e3", "١"] {
            assert!(bad.parse::<EpochId>().is_err(), "{bad:?} accepted");
        }
    }
}
