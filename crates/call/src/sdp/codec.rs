//! Payload formats: the RFC 3551 static table and case-insensitive encoding names.

use std::fmt;

/// An RTP encoding, identified by its media subtype name (case-insensitive, RFC 6838 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// G.711 µ-law (static PT 0).
    Pcmu,
    /// G.711 A-law (static PT 8).
    Pcma,
    /// G.729 (static PT 18); not relayed by the gateway.
    G729,
    /// Comfort noise (static PT 13, RFC 3389).
    Cn,
    /// RFC 4733 telephone-event (always dynamic).
    TelephoneEvent,
    /// Anything else, with its name as written (compared case-insensitively).
    Other(String),
}

impl Encoding {
    /// Recognises an encoding name in any letter case (`pcma`, `TELEPHONE-EVENT`, …).
    pub fn from_name(name: &str) -> Self {
        let n = name.trim();
        if n.eq_ignore_ascii_case("PCMU") {
            Self::Pcmu
        } else if n.eq_ignore_ascii_case("PCMA") {
            Self::Pcma
        } else if n.eq_ignore_ascii_case("G729") {
            Self::G729
        } else if n.eq_ignore_ascii_case("CN") {
            Self::Cn
        } else if n.eq_ignore_ascii_case("telephone-event") {
            Self::TelephoneEvent
        } else {
            Self::Other(n.to_owned())
        }
    }

    /// The canonical spelling used in the SDP the gateway writes.
    pub fn name(&self) -> &str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::G729 => "G729",
            Self::Cn => "CN",
            Self::TelephoneEvent => "telephone-event",
            Self::Other(n) => n,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The audio codecs the gateway relays, records and plays prompts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl Codec {
    /// The static payload type of the codec (RFC 3551 Table 4).
    pub fn static_pt(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The encoding of the codec.
    pub fn encoding(self) -> Encoding {
        match self {
            Self::Pcmu => Encoding::Pcmu,
            Self::Pcma => Encoding::Pcma,
        }
    }

    fn from_encoding(e: &Encoding) -> Option<Self> {
        match e {
            Encoding::Pcmu => Some(Self::Pcmu),
            Encoding::Pcma => Some(Self::Pcma),
            _ => None,
        }
    }
}

/// One payload format of an m-line, with the rtpmap (explicit or from the static table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// Payload type, 0..=127.
    pub pt: u8,
    /// Encoding.
    pub encoding: Encoding,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count from the rtpmap, if given.
    pub channels: Option<u16>,
    /// The `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// The gateway codec this format carries, if it is G.711 at 8 kHz mono.
    pub fn codec(&self) -> Option<Codec> {
        if self.clock_rate != 8000 || self.channels.is_some_and(|c| c != 1) {
            return None;
        }
        Codec::from_encoding(&self.encoding)
    }

    /// True for an RFC 4733 telephone-event format at 8 kHz on a dynamic PT.
    pub fn is_telephone_event_8k(&self) -> bool {
        // RFC 4733 §2.5.1.1: no static PT; a binding to a static number (< 96) that already
        // means something else (e.g. 10 = L16) is not honoured (case 031).
        self.encoding == Encoding::TelephoneEvent && self.clock_rate == 8000 && self.pt >= 96
    }
}

/// The RFC 3551 §6 Table 4 entry of a static payload type, if it is an audio one we know.
pub fn static_format(pt: u8) -> Option<(Encoding, u32)> {
    match pt {
        0 => Some((Encoding::Pcmu, 8000)),
        8 => Some((Encoding::Pcma, 8000)),
        13 => Some((Encoding::Cn, 8000)),
        18 => Some((Encoding::G729, 8000)),
        3 => Some((Encoding::Other("GSM".into()), 8000)),
        4 => Some((Encoding::Other("G723".into()), 8000)),
        9 => Some((Encoding::Other("G722".into()), 8000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(Encoding::from_name("pcma"), Encoding::Pcma);
        assert_eq!(Encoding::from_name("PcMu"), Encoding::Pcmu);
        assert_eq!(
            Encoding::from_name("TELEPHONE-EVENT"),
            Encoding::TelephoneEvent
        );
        assert_eq!(
            Encoding::from_name("G726-32"),
            Encoding::Other("G726-32".into())
        );
    }

    #[test]
    fn static_table() {
        assert_eq!(static_format(0), Some((Encoding::Pcmu, 8000)));
        assert_eq!(static_format(8), Some((Encoding::Pcma, 8000)));
        assert_eq!(static_format(18), Some((Encoding::G729, 8000)));
        assert_eq!(static_format(13), Some((Encoding::Cn, 8000)));
        assert_eq!(static_format(96), None);
    }

    #[test]
    fn telephone_event_on_static_pt_is_ignored() {
        let f = PayloadFormat {
            pt: 10,
            encoding: Encoding::TelephoneEvent,
            clock_rate: 8000,
            channels: None,
            fmtp: None,
        };
        assert!(!f.is_telephone_event_8k());
        let g = PayloadFormat { pt: 96, ..f };
        assert!(g.is_telephone_event_8k());
    }
}
