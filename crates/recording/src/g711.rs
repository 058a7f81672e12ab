//! G.711 decoding (ITU-T G.711 §§2–3): one code byte to one 16-bit linear sample, through two
//! 256-entry tables computed at compile time.

/// µ-law (PCMU) code byte → linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = build(false);

/// A-law (PCMA) code byte → linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = build(true);

/// Decodes µ-law bytes into `out`, one sample per byte (up to the shorter of the two).
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) {
    for (o, c) in out.iter_mut().zip(codes) {
        *o = ULAW_TO_LINEAR[usize::from(*c)];
    }
}

/// Decodes A-law bytes into `out`, one sample per byte (up to the shorter of the two).
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) {
    for (o, c) in out.iter_mut().zip(codes) {
        *o = ALAW_TO_LINEAR[usize::from(*c)];
    }
}

const fn build(a_law: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if a_law { alaw(i as u8) } else { ulaw(i as u8) };
        i += 1;
    }
    table
}

/// µ-law: the code is transmitted inverted; 3 exponent bits select a segment whose step
/// doubles, with a bias of 0x84 (132) so that the segments join (G.711 Table 2).
const fn ulaw(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law: even bits are inverted on the line (XOR 0x55); segment 0 is linear, the others
/// double; a set sign bit means positive (G.711 Table 1).
const fn alaw(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 256 codes of both laws against the reference table produced by SoX.
    #[test]
    fn all_codes_match_the_reference_table() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/recording/g711-reference.txt"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut seen = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut cols = line.split_whitespace();
            let code = u8::from_str_radix(cols.next().unwrap(), 16).unwrap();
            let mu: i16 = cols.next().unwrap().parse().unwrap();
            let a: i16 = cols.next().unwrap().parse().unwrap();
            assert_eq!(ULAW_TO_LINEAR[usize::from(code)], mu, "µ-law {code:02x}");
            assert_eq!(ALAW_TO_LINEAR[usize::from(code)], a, "A-law {code:02x}");
            assert_eq!(usize::from(code), seen, "reference table out of order");
            seen += 1;
        }
        assert_eq!(seen, 256);
    }

    #[test]
    fn structural_properties() {
        // µ-law: 0xff and 0x7f are the two zeros; 0x00/0x80 the extremes; sign symmetry.
        assert_eq!(ULAW_TO_LINEAR[0xff], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7f], 0);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        // A-law: 0xd5/0x55 are the smallest magnitudes (±8); 0xaa/0x2a the extremes.
        assert_eq!(ALAW_TO_LINEAR[0xd5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xaa], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2a], -32256);
        for c in 0..128usize {
            assert_eq!(ULAW_TO_LINEAR[c], -ULAW_TO_LINEAR[c | 0x80]);
            assert_eq!(ALAW_TO_LINEAR[c], -ALAW_TO_LINEAR[c | 0x80]);
        }
        // Within the positive half, µ-law magnitude falls as the code rises (inverted code).
        for c in 0x80..0xffusize {
            assert!(ULAW_TO_LINEAR[c] > ULAW_TO_LINEAR[c + 1]);
        }
        let mut out = [0i16; 3];
        decode_ulaw(&[0x00, 0xff, 0x80], &mut out);
        assert_eq!(out, [-32124, 0, 32124]);
        decode_alaw(&[0xd5, 0x55, 0xaa], &mut out);
        assert_eq!(out, [8, -8, 32256]);
    }
}
