//! The key schedule of a recording and the AEAD calls the writer and reader make.
//!
//! ```text
//! commitment  = HKDF-SHA256(salt = "", IKM = DEK).Expand("callseal recording v1 key commitment", 32)
//! PRK         = HKDF-Extract(salt = recording_id, IKM = DEK)              (RFC 5869 §2.2)
//! payload_key = HKDF-Expand(PRK, "callseal recording v1 payload key", 32) (RFC 5869 §2.3)
//! header_key  = HKDF-Expand(PRK, "callseal recording v1 header key", 32)
//! header_mac  = HMAC-SHA256(header_key, header bytes before the MAC)      (RFC 2104)
//! ```
//!
//! The commitment does not depend on the recording id, so a damaged id is reported as a damaged
//! header, not as a wrong key.

use crate::format::{COMMITMENT_LEN, MAC_LEN, TAG_LEN};
use crate::keys::{DataKey, RecordingId};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use hkdf::hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const COMMITMENT_INFO: &[u8] = b"callseal recording v1 key commitment";
const PAYLOAD_INFO: &[u8] = b"callseal recording v1 payload key";
const HEADER_INFO: &[u8] = b"callseal recording v1 header key";

/// The keys of one recording, derived from its data key. No `Debug`/`Clone`; zeroized on drop.
pub(crate) struct RecordingKeys {
    payload: ChaCha20Poly1305,
    header_key: Zeroizing<[u8; 32]>,
    commitment: [u8; COMMITMENT_LEN],
}

impl RecordingKeys {
    pub(crate) fn derive(key: &DataKey, recording: RecordingId) -> Self {
        let mut commitment = [0u8; COMMITMENT_LEN];
        expand(
            &Hkdf::<Sha256>::new(None, key.expose()),
            COMMITMENT_INFO,
            &mut commitment,
        );
        let prk = Hkdf::<Sha256>::new(Some(recording.as_bytes()), key.expose());
        let mut payload_key = Zeroizing::new([0u8; 32]);
        expand(&prk, PAYLOAD_INFO, payload_key.as_mut());
        let mut header_key = Zeroizing::new([0u8; 32]);
        expand(&prk, HEADER_INFO, header_key.as_mut());
        Self {
            payload: ChaCha20Poly1305::new(&Key::from(*payload_key)),
            header_key,
            commitment,
        }
    }

    /// The key commitment stored in the header.
    pub(crate) fn commitment(&self) -> &[u8; COMMITMENT_LEN] {
        &self.commitment
    }

    /// True if `stored` equals this key's commitment (constant time).
    pub(crate) fn commitment_matches(&self, stored: &[u8]) -> bool {
        stored.ct_eq(&self.commitment).into()
    }

    /// HMAC-SHA256 of the header bytes before the MAC.
    pub(crate) fn header_mac(&self, header: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.header_key.as_ref()) {
            mac.update(header);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// Seals a segment's plaintext in place.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        seal_in_place(&self.payload, nonce, aad, buf)
    }

    /// Opens a segment in place; on failure `buf` is left as ciphertext.
    pub(crate) fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        open_in_place(&self.payload, nonce, aad, buf, tag)
    }
}

fn expand(prk: &Hkdf<Sha256>, info: &[u8], out: &mut [u8]) {
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32 (RFC 5869 §2.3): cannot fail.
    let _ = prk.expand(info, out);
}

/// ChaCha20-Poly1305 (RFC 8439 §2.8) seal in place, returning the tag. `None` only for a
/// message beyond the 256 GiB limit of RFC 8439 §2.8, which a segment never reaches.
pub(crate) fn seal_in_place(
    aead: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
) -> Option<[u8; TAG_LEN]> {
    let tag = aead
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        .ok()?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&tag);
    Some(out)
}

/// ChaCha20-Poly1305 open in place. The tag is verified before any byte is decrypted, so on
/// failure `buf` still holds the ciphertext.
pub(crate) fn open_in_place(
    aead: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> bool {
    let Ok(tag) = Tag::try_from(tag) else {
        return false;
    };
    aead.decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &tag)
        .is_ok()
}

/// A ChaCha20-Poly1305 instance for a raw key (test vectors and the benchmark reference).
pub(crate) fn aead_for_key(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(*key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 §2.8.2: the AEAD_CHACHA20_POLY1305 example.
    #[test]
    fn rfc8439_aead_known_answer() {
        let key: [u8; 32] =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce: [u8; 12] = hex::decode("070000004041424344454647")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let expected_ct = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
        let expected_tag = "1ae10b594f09e26a7e902ecbd0600691";
        let aead = aead_for_key(&key);
        let mut buf = pt.to_vec();
        let tag = seal_in_place(&aead, &nonce, &aad, &mut buf).unwrap();
        assert_eq!(hex::encode(&buf), expected_ct);
        assert_eq!(hex::encode(tag), expected_tag);
        assert!(open_in_place(&aead, &nonce, &aad, &mut buf, &tag));
        assert_eq!(&buf[..], &pt[..]);
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        let mut ct = hex::decode(expected_ct).unwrap();
        assert!(!open_in_place(&aead, &nonce, &aad, &mut ct, &bad_tag));
        assert_eq!(
            hex::encode(&ct),
            expected_ct,
            "ciphertext changed on failure"
        );
    }

    #[test]
    fn schedule_separates_keys_and_binds_recording_id() {
        let key = DataKey::from_bytes([9; 32]);
        let a = RecordingKeys::derive(&key, RecordingId::from_bytes([1; 16]));
        let b = RecordingKeys::derive(&key, RecordingId::from_bytes([2; 16]));
        // The commitment depends on the key only; the header key on the recording id too.
        assert_eq!(a.commitment(), b.commitment());
        assert_ne!(a.header_mac(b"x"), b.header_mac(b"x"));
        let other = RecordingKeys::derive(
            &DataKey::from_bytes([8; 32]),
            RecordingId::from_bytes([1; 16]),
        );
        assert!(!a.commitment_matches(other.commitment()));
        assert!(a.commitment_matches(b.commitment()));
        assert!(!a.commitment_matches(&[0; 31]));
        // Payload keys differ between recordings: the same nonce gives different ciphertext.
        let mut x = [0u8; 16];
        let mut y = [0u8; 16];
        let n = [0u8; 12];
        a.seal(&n, b"", &mut x).unwrap();
        b.seal(&n, b"", &mut y).unwrap();
        assert_ne!(x, y);
    }

    /// The schedule's outputs, computed independently with the HKDF and HMAC definitions of
    /// RFC 5869 and RFC 2104 (built here from SHA-256 alone), so that a change of labels or
    /// salts cannot pass unnoticed.
    #[test]
    fn schedule_matches_rfc5869_by_hand() {
        use sha2::Digest;
        fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
            let mut k = [0u8; 64];
            if key.len() > 64 {
                k[..32].copy_from_slice(&Sha256::digest(key));
            } else {
                k[..key.len()].copy_from_slice(key);
            }
            let mut inner = Sha256::new();
            inner.update(k.map(|b| b ^ 0x36));
            inner.update(msg);
            let mut outer = Sha256::new();
            outer.update(k.map(|b| b ^ 0x5c));
            outer.update(inner.finalize());
            outer.finalize().into()
        }
        let dek = [0x42u8; 32];
        let rid = [0x17u8; 16];
        let keys = RecordingKeys::derive(&DataKey::from_bytes(dek), RecordingId::from_bytes(rid));
        let prk0 = hmac(&[0u8; 32], &dek);
        let commitment = hmac(&prk0, &[COMMITMENT_INFO, &[1]].concat());
        assert_eq!(keys.commitment(), &commitment);
        let prk = hmac(&rid, &dek);
        let header_key = hmac(&prk, &[HEADER_INFO, &[1]].concat());
        assert_eq!(keys.header_mac(b"header"), hmac(&header_key, b"header"));
        let payload_key = hmac(&prk, &[PAYLOAD_INFO, &[1]].concat());
        let reference = aead_for_key(&payload_key);
        let mut x = *b"sixteen bytes!!!";
        let mut y = x;
        let n = [7u8; 12];
        assert_eq!(
            keys.seal(&n, b"aad", &mut x),
            seal_in_place(&reference, &n, b"aad", &mut y)
        );
        assert_eq!(x, y);
    }
}
