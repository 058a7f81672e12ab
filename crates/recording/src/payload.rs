//! The payload-type table of a recording: which RTP payload type carries which encoding, so an
//! export can decode audio without the call's SDP.

/// An encoding a recorded payload type can carry (all at 8000 Hz in format version 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// G.711 µ-law (PCMU, RFC 3551 §4.5.14; static payload type 0).
    Pcmu,
    /// G.711 A-law (PCMA, RFC 3551 §4.5.14; static payload type 8).
    Pcma,
    /// Comfort noise (RFC 3389; static payload type 13). Exported as silence.
    ComfortNoise,
    /// RFC 4733 telephone events (a dynamic payload type). Not audio; skipped by the export.
    TelephoneEvent,
}

impl Encoding {
    /// The byte that stands for the encoding in the header.
    pub(crate) fn code(self) -> u8 {
        match self {
            Encoding::Pcmu => 1,
            Encoding::Pcma => 2,
            Encoding::ComfortNoise => 3,
            Encoding::TelephoneEvent => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Encoding::Pcmu),
            2 => Some(Encoding::Pcma),
            3 => Some(Encoding::ComfortNoise),
            4 => Some(Encoding::TelephoneEvent),
            _ => None,
        }
    }
}

/// Why a payload-type table entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadTypeError {
    /// RTP payload types are 7 bits (RFC 3550 §5.1).
    #[error("payload type {pt} is out of range (RTP payload types are 0 to 127)")]
    OutOfRange {
        /// The refused value.
        pt: u8,
    },
    /// The payload type is already mapped to another encoding.
    #[error("payload type {pt} is already mapped to {existing:?}; map each payload type once")]
    Duplicate {
        /// The payload type.
        pt: u8,
        /// Its existing encoding.
        existing: Encoding,
    },
}

/// Payload type → encoding, sorted by payload type, each payload type at most once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadTypes {
    entries: Vec<(u8, Encoding)>,
}

impl PayloadTypes {
    /// An empty table (every payload type unknown: the export writes silence for it).
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// The static G.711 assignments of RFC 3551 Table 4: 0 PCMU, 8 PCMA, 13 CN.
    pub fn g711() -> Self {
        Self {
            entries: vec![
                (0, Encoding::Pcmu),
                (8, Encoding::Pcma),
                (13, Encoding::ComfortNoise),
            ],
        }
    }

    /// Adds a mapping, e.g. `with(101, Encoding::TelephoneEvent)` for the negotiated
    /// telephone-event payload type. Mapping a payload type again to the same encoding is a
    /// no-op; to another encoding it is refused.
    pub fn with(mut self, pt: u8, encoding: Encoding) -> Result<Self, PayloadTypeError> {
        if pt > 127 {
            return Err(PayloadTypeError::OutOfRange { pt });
        }
        match self.entries.binary_search_by_key(&pt, |(p, _)| *p) {
            Ok(i) => match self.entries.get(i) {
                Some((_, existing)) if *existing != encoding => {
                    return Err(PayloadTypeError::Duplicate {
                        pt,
                        existing: *existing,
                    });
                }
                _ => {}
            },
            Err(i) => self.entries.insert(i, (pt, encoding)),
        }
        Ok(self)
    }

    /// The encoding of `pt`, if mapped.
    pub fn get(&self, pt: u8) -> Option<Encoding> {
        self.entries
            .binary_search_by_key(&pt, |(p, _)| *p)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, e)| *e)
    }

    /// The entries, sorted by payload type.
    pub fn entries(&self) -> &[(u8, Encoding)] {
        &self.entries
    }
}

impl Default for PayloadTypes {
    fn default() -> Self {
        Self::g711()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let t = PayloadTypes::g711()
            .with(101, Encoding::TelephoneEvent)
            .unwrap()
            .with(2, Encoding::Pcma)
            .unwrap()
            .with(8, Encoding::Pcma)
            .unwrap();
        let pts: Vec<u8> = t.entries().iter().map(|(p, _)| *p).collect();
        assert_eq!(pts, [0, 2, 8, 13, 101]);
        assert_eq!(t.get(101), Some(Encoding::TelephoneEvent));
        assert_eq!(t.get(9), None);
        assert_eq!(
            t.clone().with(0, Encoding::Pcma).unwrap_err(),
            PayloadTypeError::Duplicate {
                pt: 0,
                existing: Encoding::Pcmu
            }
        );
        assert_eq!(
            t.with(128, Encoding::Pcmu).unwrap_err(),
            PayloadTypeError::OutOfRange { pt: 128 }
        );
    }

    #[test]
    fn codes_round_trip() {
        for e in [
            Encoding::Pcmu,
            Encoding::Pcma,
            Encoding::ComfortNoise,
            Encoding::TelephoneEvent,
        ] {
            assert_eq!(Encoding::from_code(e.code()), Some(e));
        }
        assert_eq!(Encoding::from_code(0), None);
        assert_eq!(Encoding::from_code(5), None);
    }
}
