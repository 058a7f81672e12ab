//! Exhaustive G.711 checks against reference formulas written independently of the
//! implementation: decoding from the piecewise-linear segment definition, encoding by searching
//! the decision intervals of every code.

use super::*;

/// µ-law reconstruction level, 14-bit domain: (2m + 33)·2^e − 33, scaled by 4 to 16 bits.
fn ref_ulaw_decode(code: u8) -> i32 {
    let bits = !code;
    let e = i32::from((bits >> 4) & 7);
    let m = i32::from(bits & 15);
    let magnitude = ((2 * m + 33) * (1 << e) - 33) * 4;
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// A-law reconstruction level, 13-bit domain: 2m + 1 in segment 0, (2m + 33)·2^(e−1) above,
/// scaled by 8 to 16 bits.
fn ref_alaw_decode(code: u8) -> i32 {
    let bits = code ^ 0x55;
    let e = i32::from((bits >> 4) & 7);
    let m = i32::from(bits & 15);
    let magnitude = if e == 0 {
        (2 * m + 1) * 8
    } else {
        (2 * m + 33) * (1 << (e - 1)) * 8
    };
    if bits & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// The µ-law code whose decision interval holds `x`: the 14-bit magnitude plus bias 33 lies in
/// [(16 + m)·2^(e+1), (17 + m)·2^(e+1)); search all (e, m).
fn ref_ulaw_encode(x: i16) -> u8 {
    let x = i32::from(x);
    let (negative, mag14) = if x < 0 {
        (true, (-x - 1) >> 2)
    } else {
        (false, x >> 2)
    };
    let biased = (mag14 + 33).min(8191);
    for e in 0..8 {
        for m in 0..16 {
            let lo = (16 + m) << (e + 1);
            let hi = (17 + m) << (e + 1);
            if (lo..hi).contains(&biased) {
                let code = !((e << 4) | m) as u8 & 0x7f;
                return if negative { code } else { code | 0x80 };
            }
        }
    }
    unreachable!("biased magnitude {biased} outside every µ-law interval")
}

/// The A-law code whose decision interval holds `x` (12-bit magnitude): segment 0 covers
/// [m, m + 1), segment e ≥ 1 covers [(16 + m)·2^(e−1), (17 + m)·2^(e−1)).
fn ref_alaw_encode(x: i16) -> u8 {
    let x = i32::from(x);
    let (negative, mag12) = if x < 0 {
        (true, (-x - 1) >> 4)
    } else {
        (false, x >> 4)
    };
    for e in 0..8 {
        for m in 0..16 {
            let (lo, hi) = if e == 0 {
                (m, m + 1)
            } else {
                ((16 + m) << (e - 1), (17 + m) << (e - 1))
            };
            if (lo..hi).contains(&mag12) {
                let code = ((e << 4) | m) as u8;
                return if negative {
                    code ^ 0x55
                } else {
                    (code | 0x80) ^ 0x55
                };
            }
        }
    }
    unreachable!("magnitude {mag12} outside every A-law interval")
}

#[test]
fn all_256_ulaw_decodes_match_reference() {
    for code in 0..=255u8 {
        assert_eq!(
            i32::from(ulaw_decode(code)),
            ref_ulaw_decode(code),
            "code {code:#04x}"
        );
    }
    assert_eq!(ulaw_decode(0xff), 0);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(ulaw_decode(0x00), -32124);
}

#[test]
fn all_256_alaw_decodes_match_reference() {
    for code in 0..=255u8 {
        assert_eq!(
            i32::from(alaw_decode(code)),
            ref_alaw_decode(code),
            "code {code:#04x}"
        );
    }
    assert_eq!(alaw_decode(0xd5), 8);
    assert_eq!(alaw_decode(0xaa), 32256);
    assert_eq!(alaw_decode(0x2a), -32256);
}

#[test]
fn all_65536_ulaw_encodes_match_reference() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(ulaw_encode(x), ref_ulaw_encode(x), "sample {x}");
    }
}

#[test]
fn all_65536_alaw_encodes_match_reference() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(alaw_encode(x), ref_alaw_encode(x), "sample {x}");
    }
}

#[test]
fn encode_of_decode_is_identity_except_negative_zero() {
    for code in 0..=255u8 {
        let expected_u = if code == 0x7f { 0xff } else { code };
        assert_eq!(
            ulaw_encode(ulaw_decode(code)),
            expected_u,
            "µ-law {code:#04x}"
        );
        // A-law has no code for 0: every code round-trips.
        assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
    }
}

#[test]
fn transcoding_tables_agree_with_decode_then_encode() {
    let mut u: Vec<u8> = (0..=255).collect();
    Codec::Pcmu.transcode_in_place(Codec::Pcma, &mut u);
    for (code, a) in (0..=255u8).zip(&u) {
        assert_eq!(*a, alaw_encode(ulaw_decode(code)));
    }
    let mut same: Vec<u8> = (0..=255).collect();
    Codec::Pcma.transcode_in_place(Codec::Pcma, &mut same);
    assert_eq!(same, (0..=255).collect::<Vec<u8>>());
    assert_eq!(Codec::Pcmu.encode(0), Codec::Pcmu.silence());
    assert_eq!(Codec::Pcma.encode(0), Codec::Pcma.silence());
}
