//! G.711 µ-law (PCMU, PT 0) and A-law (PCMA, PT 8) on 16-bit linear samples.
//!
//! Encoding follows the segment algorithm of ITU-T G.711 as implemented by the G.191 reference
//! (16-bit input, one's complement for negative values so that the quantiser is symmetric);
//! decoding returns the centre of each quantisation interval scaled to 16 bits. Decoding and
//! µ-law ↔ A-law transcoding use 256-entry tables built at compile time.

/// A G.711 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, static PT 0 (RFC 3551 §6).
    Pcmu,
    /// A-law, static PT 8 (RFC 3551 §6).
    Pcma,
}

impl Codec {
    /// The static payload type of RFC 3551 Table 4.
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of a static payload type, if it is G.711.
    pub const fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The encoding of silence (linear 0).
    pub const fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xff,
            Codec::Pcma => 0xd5,
        }
    }

    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(sample),
            Codec::Pcma => alaw_encode(sample),
        }
    }

    /// Decodes one octet.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_decode(code),
            Codec::Pcma => alaw_decode(code),
        }
    }

    /// Encodes `samples`, appending one octet per sample to `out`.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        out.extend(samples.iter().map(|&s| self.encode(s)));
    }

    /// Decodes `codes`, appending one sample per octet to `out`.
    pub fn decode_into(self, codes: &[u8], out: &mut Vec<i16>) {
        out.extend(codes.iter().map(|&c| self.decode(c)));
    }

    /// Converts G.711 octets from `self` to `to` in place (no-op when equal).
    pub fn transcode_in_place(self, to: Codec, codes: &mut [u8]) {
        let table = match (self, to) {
            (Codec::Pcmu, Codec::Pcma) => &ULAW_TO_ALAW,
            (Codec::Pcma, Codec::Pcmu) => &ALAW_TO_ULAW,
            _ => return,
        };
        for c in codes {
            *c = table[usize::from(*c)];
        }
    }
}

/// Decodes a µ-law octet to a 16-bit sample.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decodes an A-law octet to a 16-bit sample.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Encodes a 16-bit sample as µ-law.
pub const fn ulaw_encode(sample: i16) -> u8 {
    // 14-bit magnitude (one's complement for negatives) plus the µ-law bias of 33, clipped.
    let positive = sample >= 0;
    let magnitude = if positive { sample >> 2 } else { !sample >> 2 } as i32 + 33;
    let biased = if magnitude > 0x1fff {
        0x1fff
    } else {
        magnitude
    };
    // Segment = position of the highest set bit above bit 5 (values 33..=63 are segment 0).
    let segment = (31 - (biased as u32 | 0x3f).leading_zeros()) as i32 - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0f;
    let code = !((segment << 4) | mantissa) as u8 & 0x7f;
    if positive { code | 0x80 } else { code }
}

/// Encodes a 16-bit sample as A-law.
pub const fn alaw_encode(sample: i16) -> u8 {
    let positive = sample >= 0;
    // 12-bit magnitude (one's complement for negatives).
    let magnitude = if positive { sample >> 4 } else { !sample >> 4 } as i32;
    let code = if magnitude < 16 {
        magnitude
    } else {
        // Segments 1..=7 cover [16·2^(s-1), 32·2^(s-1)).
        let segment = (31 - (magnitude as u32).leading_zeros()) as i32 - 3;
        (segment << 4) | ((magnitude >> (segment - 1)) & 0x0f)
    };
    let signed = if positive { code | 0x80 } else { code };
    (signed ^ 0x55) as u8
}

const fn ulaw_decode_const(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }) as i16
}

const fn alaw_decode_const(code: u8) -> i16 {
    let c = code ^ 0x55;
    let exponent = ((c >> 4) & 0x07) as i32;
    let mantissa = (c & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if c & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

const fn build_decode(ulaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if ulaw {
            ulaw_decode_const(i as u8)
        } else {
            alaw_decode_const(i as u8)
        };
        i += 1;
    }
    t
}

const fn build_transcode(from_ulaw: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if from_ulaw {
            alaw_encode(ulaw_decode_const(i as u8))
        } else {
            ulaw_encode(alaw_decode_const(i as u8))
        };
        i += 1;
    }
    t
}

static ULAW_DECODE: [i16; 256] = build_decode(true);
static ALAW_DECODE: [i16; 256] = build_decode(false);
static ULAW_TO_ALAW: [u8; 256] = build_transcode(true);
static ALAW_TO_ULAW: [u8; 256] = build_transcode(false);

#[cfg(test)]
mod tests;
