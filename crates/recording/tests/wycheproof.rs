//! Wycheproof vectors through the primitives the format calls: ChaCha20-Poly1305 exactly as the
//! writer and reader call it, and X25519 as the key wrap and the public-key check call it.
//! RFC 7748 §5.2 known answers for X25519 are here too.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use callseal_recording::keys::PublicKey;
use callseal_recording::primitives::{chacha20poly1305_open, chacha20poly1305_seal};
use wycheproof::TestResult;

#[test]
fn wycheproof_chacha20_poly1305() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::ChaCha20Poly1305)
        .expect("wycheproof ChaCha20-Poly1305 set");
    let (mut valid, mut invalid) = (0, 0);
    for group in set.test_groups {
        for t in group.tests {
            // Our construction always uses 12-byte nonces and 16-byte tags; other sizes cannot
            // be expressed through it (and are all "invalid" in the set).
            let (Ok(key), Ok(nonce)) = (
                <[u8; 32]>::try_from(&t.key[..]),
                <[u8; 12]>::try_from(&t.nonce[..]),
            ) else {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                invalid += 1;
                continue;
            };
            if t.tag.len() != 16 {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                invalid += 1;
                continue;
            }
            let mut buf = t.ct.to_vec();
            let opened = chacha20poly1305_open(&key, &nonce, &t.aad, &mut buf, &t.tag);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert!(opened, "tc {} did not open", t.tc_id);
                    assert_eq!(&buf[..], &t.pt[..], "tc {} plaintext", t.tc_id);
                    let mut sealed = t.pt.to_vec();
                    let tag =
                        chacha20poly1305_seal(&key, &nonce, &t.aad, &mut sealed).expect("seal");
                    assert_eq!(&sealed[..], &t.ct[..], "tc {} ciphertext", t.tc_id);
                    assert_eq!(&tag[..], &t.tag[..], "tc {} tag", t.tc_id);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(!opened, "tc {} opened but must not", t.tc_id);
                    assert_eq!(
                        &buf[..],
                        &t.ct[..],
                        "tc {}: buffer changed on failure",
                        t.tc_id
                    );
                    invalid += 1;
                }
            }
        }
    }
    assert!(
        valid > 100 && invalid > 50,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn wycheproof_x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519)
        .expect("wycheproof X25519 set");
    let mut checked = 0;
    let mut refused = 0;
    for group in set.test_groups {
        for t in group.tests {
            let (Ok(sk), Ok(pk)) = (
                <[u8; 32]>::try_from(&t.private_key[..]),
                <[u8; 32]>::try_from(&t.public_key[..]),
            ) else {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                continue;
            };
            let shared = x25519_dalek::x25519(sk, pk);
            if t.result != TestResult::Invalid {
                assert_eq!(
                    &shared[..],
                    &t.shared_secret[..],
                    "tc {} shared secret",
                    t.tc_id
                );
                checked += 1;
            }
            // Our public-key check: a key whose agreement is not contributory (all-zero shared
            // secret) is refused, and so is any non-canonical encoding.
            let accepted = PublicKey::from_bytes(pk).is_ok();
            let flags = format!("{:?}", t.flags);
            if shared == [0u8; 32] || flags.contains("LowOrderPublic") {
                assert!(!accepted, "tc {}: low-order public key accepted", t.tc_id);
            }
            if flags.contains("NonCanonicalPublic") {
                assert!(
                    !accepted,
                    "tc {}: non-canonical public key accepted",
                    t.tc_id
                );
            }
            if !accepted {
                refused += 1;
            }
        }
    }
    assert!(checked > 400, "{checked} checked");
    assert!(refused > 20, "{refused} refused");
}

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// RFC 7748 §5.2: the two single-step vectors and the iterated one (1 and 1000 iterations).
#[test]
fn rfc7748_x25519_known_answers() {
    assert_eq!(
        hex::encode(x25519_dalek::x25519(
            h32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
            h32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
        )),
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    );
    assert_eq!(
        hex::encode(x25519_dalek::x25519(
            h32("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
            h32("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"),
        )),
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"
    );
    let mut k = h32("0900000000000000000000000000000000000000000000000000000000000000");
    let mut u = k;
    for i in 1..=1000 {
        let next = x25519_dalek::x25519(k, u);
        u = k;
        k = next;
        if i == 1 {
            assert_eq!(
                hex::encode(k),
                "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
            );
        }
    }
    assert_eq!(
        hex::encode(k),
        "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
    );
}
