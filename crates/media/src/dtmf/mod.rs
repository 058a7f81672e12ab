//! DTMF: RFC 4733 telephone-events (detection and generation) and in-band tones (Goertzel).

pub mod goertzel;
pub mod rfc4733;

pub use goertzel::InbandDetector;
pub use rfc4733::{EventDetector, EventGenerator, EventPacket, TelephoneEvent};

/// A DTMF key (RFC 4733 §3.2 event codes 0–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digit {
    /// 0
    D0,
    /// 1
    D1,
    /// 2
    D2,
    /// 3
    D3,
    /// 4
    D4,
    /// 5
    D5,
    /// 6
    D6,
    /// 7
    D7,
    /// 8
    D8,
    /// 9
    D9,
    /// *
    Star,
    /// #
    Hash,
    /// A
    A,
    /// B
    B,
    /// C
    C,
    /// D
    D,
}

const DIGITS: [Digit; 16] = [
    Digit::D0,
    Digit::D1,
    Digit::D2,
    Digit::D3,
    Digit::D4,
    Digit::D5,
    Digit::D6,
    Digit::D7,
    Digit::D8,
    Digit::D9,
    Digit::Star,
    Digit::Hash,
    Digit::A,
    Digit::B,
    Digit::C,
    Digit::D,
];

const CHARS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

impl Digit {
    /// The digit of an RFC 4733 event code, `None` for codes that are not DTMF (16 = flash, …).
    pub fn from_event_code(code: u8) -> Option<Digit> {
        DIGITS.get(usize::from(code)).copied()
    }

    /// The RFC 4733 §3.2 event code.
    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// The key as printed on the keypad.
    pub fn as_char(self) -> char {
        CHARS.get(self as usize).copied().unwrap_or('?')
    }

    /// Parses `0-9 * # A-D` (case-insensitive letters).
    pub fn from_char(c: char) -> Option<Digit> {
        let upper = c.to_ascii_uppercase();
        CHARS
            .iter()
            .position(|&k| k == upper)
            .and_then(|i| DIGITS.get(i).copied())
    }
}

impl std::fmt::Display for Digit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Where a detected digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// An RFC 4733 telephone-event on the negotiated payload type.
    TelephoneEvent,
    /// Dual tones in the decoded G.711 audio.
    InBand,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_chars_round_trip() {
        for code in 0..16u8 {
            let d = Digit::from_event_code(code).unwrap();
            assert_eq!(d.event_code(), code);
            assert_eq!(Digit::from_char(d.as_char()), Some(d));
        }
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::from_char('*'), Some(Digit::Star));
        assert_eq!(Digit::from_char('b'), Some(Digit::B));
        assert_eq!(Digit::from_char('x'), None);
        assert_eq!(Digit::Hash.to_string(), "#");
    }
}
