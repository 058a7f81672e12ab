//! SRTP contexts: the AES_CM_128_HMAC_SHA1_80 known-answer packet published with libsrtp's
//! test driver, replay protection, and the rollover counter across the sequence wrap
//! (RFC 3711 §3.3.1, App. A).

use super::*;

const MASTER_KEY: [u8; 16] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
];
const MASTER_SALT: [u8; 14] = [
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
];
/// SSRC 0xcafebabe, seq 0x1234, ROC 0, 16 payload bytes of 0xab.
const PLAIN: &str = "800f1234decafbadcafebabeabababababababababababababababab";
const PROTECTED: &str =
    "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb";

fn key() -> SrtpKeyMaterial {
    let mut bytes = MASTER_KEY.to_vec();
    bytes.extend_from_slice(&MASTER_SALT);
    SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &bytes).unwrap()
}

fn pair() -> (SrtpContext, SrtpContext) {
    (
        SrtpContext::new(&key(), Direction::Outbound).unwrap(),
        SrtpContext::new(&key(), Direction::Inbound).unwrap(),
    )
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut out = Vec::new();
    crate::rtp::RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 0x1122_3344,
    }
    .write(&[0x55; 160], &mut out);
    out
}

#[test]
fn known_answer_protect_and_unprotect() {
    let (mut tx, mut rx) = pair();
    let plain = hex::decode(PLAIN).unwrap();
    let protected = tx.protect_rtp(&plain).unwrap();
    assert_eq!(hex::encode(&protected), PROTECTED);
    assert_eq!(rx.unprotect_rtp(&protected).unwrap(), plain);
}

#[test]
fn replay_and_tampering_are_rejected() {
    let (mut tx, mut rx) = pair();
    let protected = tx.protect_rtp(&rtp(10)).unwrap();
    assert!(rx.unprotect_rtp(&protected).is_ok());
    assert!(matches!(
        rx.unprotect_rtp(&protected),
        Err(SrtpError::Rejected { .. })
    ));
    let mut tampered = tx.protect_rtp(&rtp(11)).unwrap();
    tampered[20] ^= 1;
    assert!(rx.unprotect_rtp(&tampered).is_err());
    // The forged copy did not mark seq 11 as seen: the genuine one still passes.
    tampered[20] ^= 1;
    assert_eq!(rx.unprotect_rtp(&tampered).unwrap(), rtp(11));
    assert!(rx.unprotect_rtp(&[0x80, 0, 0]).is_err());
}

#[test]
fn replay_window_accepts_reordering_inside_and_refuses_older() {
    let (mut tx, mut rx) = pair();
    let packets: Vec<Vec<u8>> = (0..300u16)
        .map(|s| tx.protect_rtp(&rtp(s)).unwrap())
        .collect();
    for p in &packets[..5] {
        rx.unprotect_rtp(p).unwrap();
    }
    // Skip 5..=9, jump ahead to 299: 299 − 5 > REPLAY_WINDOW, so 5 is now too old.
    rx.unprotect_rtp(&packets[299]).unwrap();
    assert!(rx.unprotect_rtp(&packets[5]).is_err());
    // 299 − 200 = 99 < REPLAY_WINDOW: late but new, accepted once.
    rx.unprotect_rtp(&packets[200]).unwrap();
    assert!(rx.unprotect_rtp(&packets[200]).is_err());
}

#[test]
fn rollover_counter_follows_the_sequence_wrap() {
    let (mut tx, mut rx) = pair();
    let seqs: Vec<u16> = (65_530..=65_535).chain(0..6).collect();
    let protected: Vec<Vec<u8>> = seqs
        .iter()
        .map(|&s| tx.protect_rtp(&rtp(s)).unwrap())
        .collect();
    // Deliver with one packet from before the wrap arriving after it (App. A: ROC − 1).
    let order = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11];
    for i in order {
        assert_eq!(
            rx.unprotect_rtp(&protected[i]).unwrap(),
            rtp(seqs[i]),
            "seq {}",
            seqs[i]
        );
    }
    // A receiver that never saw the wrap assumes ROC 0 and cannot authenticate seq 0 of ROC 1:
    // proof that the index, not the bare sequence number, is authenticated.
    let mut fresh = SrtpContext::new(&key(), Direction::Inbound).unwrap();
    assert!(fresh.unprotect_rtp(&protected[6]).is_err());
}

#[test]
fn srtcp_round_trip_and_replay() {
    let (mut tx, mut rx) = pair();
    // Receiver report with no blocks, SSRC 0x01020304.
    let rr = hex::decode("80c9000101020304").unwrap();
    let protected = tx.protect_rtcp(&rr).unwrap();
    assert_ne!(protected, rr);
    assert_eq!(rx.unprotect_rtcp(&protected).unwrap(), rr);
    assert!(rx.unprotect_rtcp(&protected).is_err());
}

#[test]
fn key_length_is_checked_and_errors_do_not_echo_keys() {
    let err = SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &[0xab; 29])
        .err()
        .unwrap();
    assert_eq!(
        err,
        SdesError::BadKey {
            suite: "AES_CM_128_HMAC_SHA1_80",
            expected: 30
        }
    );
    assert!(key().same_as(&key()));
    let other = SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &[1; 30]).unwrap();
    assert!(!key().same_as(&other));
}

fn rtp_from(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut out = Vec::new();
    crate::rtp::RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: 0,
        ssrc,
    }
    .write(&[0x55; 20], &mut out);
    out
}

#[test]
fn forged_ssrcs_cannot_grow_state_without_bound() {
    let (mut tx, mut rx) = pair();
    let mut forger = SrtpContext::new(
        &SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &[9; 30]).unwrap(),
        Direction::Outbound,
    )
    .unwrap();
    // The genuine source authenticates first.
    rx.unprotect_rtp(&tx.protect_rtp(&rtp_from(1, 1)).unwrap())
        .unwrap();
    for ssrc in 1000..1000 + MAX_UNAUTHENTICATED_SSRCS as u32 {
        let forged = forger.protect_rtp(&rtp_from(ssrc, 1)).unwrap();
        let err = rx.unprotect_rtp(&forged).unwrap_err();
        assert!(!err.to_string().contains("new SSRC refused"), "{err}");
    }
    // Full: a further unknown SSRC is refused without being looked at, even a genuine one.
    let genuine_new = tx.protect_rtp(&rtp_from(2, 1)).unwrap();
    let err = rx.unprotect_rtp(&genuine_new).unwrap_err();
    assert!(err.to_string().contains("new SSRC refused"), "{err}");
    // The authenticated source goes on, and a source that failed once may still succeed.
    rx.unprotect_rtp(&tx.protect_rtp(&rtp_from(1, 2)).unwrap())
        .unwrap();
    rx.unprotect_rtp(&tx.protect_rtp(&rtp_from(1000, 5)).unwrap())
        .unwrap();
    assert!(rx.unprotect_rtp(&[0x80; 6]).is_err());
    assert!(rx.unprotect_rtcp(&[0x80; 3]).is_err());
}
