//! Key material of a sealed recording and its escrow wrap.
//!
//! Every recording has its own random 256-bit [`DataKey`]. The gateway seals audio with it and
//! wraps it with HPKE (RFC 9180) to the public key of an escrow retention epoch; after the call it
//! forgets the data key and can no longer open what it wrote. Destroying the epoch's
//! [`SecretKey`] makes every [`WrappedKey`] of that epoch inert (crypto-shredding).
//!
//! None of the secret types implements `Debug`, `Clone` or `Serialize`; all of them are zeroized
//! on drop.

mod ids;
mod wrap;

pub use ids::{EpochId, RecordingId};
pub use wrap::{Recipient, WrappedKey, rewrap, unwrap, wrap};

use hpke::{Deserializable, Kem as _, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The HPKE KEM of the wrap: DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1, KEM id 0x0020).
pub(crate) type WrapKem = hpke::kem::X25519HkdfSha256;

/// Errors of key generation, parsing and (un)wrapping.
///
/// Messages never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error(
        "the operating system random number generator failed ({reason}); no key was created, retry or check the platform's entropy source"
    )]
    Randomness {
        /// The platform's error text (contains no secret).
        reason: String,
    },
    /// A public key is not usable for X25519 key agreement.
    #[error("invalid X25519 public key: {reason}; obtain the key again from its owner")]
    InvalidPublicKey {
        /// Why the key was rejected.
        reason: &'static str,
    },
    /// A wrapped key blob could not be parsed.
    #[error("malformed wrapped key: {reason}; the blob is damaged or not a callseal wrapped key")]
    MalformedWrappedKey {
        /// What was wrong with the blob.
        reason: &'static str,
    },
    /// A wrapped key blob has a version this build does not understand.
    #[error(
        "wrapped key version {found} is not supported (this build reads version {supported}); upgrade callseal"
    )]
    UnsupportedWrapVersion {
        /// Version byte found in the blob.
        found: u8,
        /// Version this build reads and writes.
        supported: u8,
    },
    /// HPKE decapsulation or decryption failed.
    #[error(
        "the wrapped key could not be opened with this secret key: wrong epoch or operator key, the epoch key was shredded, or the blob was altered"
    )]
    Unwrap,
    /// HPKE encapsulation or encryption failed (e.g. a non-contributory shared secret).
    #[error("wrapping the data key failed ({reason}); check the recipient public key")]
    Wrap {
        /// Which HPKE step failed.
        reason: &'static str,
    },
    /// A textual id could not be parsed.
    #[error("invalid {what}: {reason}")]
    ParseId {
        /// Which kind of id.
        what: &'static str,
        /// What is expected.
        reason: &'static str,
    },
}

/// A per-recording 256-bit data key (DEK).
///
/// Random from the OS, zeroized on drop, no `Debug`/`Clone`/`Serialize`. The recording's payload
/// and header keys are derived from it (see `docs/recording-format.md`).
pub struct DataKey {
    bytes: Zeroizing<[u8; DataKey::LEN]>,
}

impl DataKey {
    /// Length of a data key in bytes.
    pub const LEN: usize = 32;

    /// Draws a fresh data key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; Self::LEN]);
        fill_random(bytes.as_mut())?;
        Ok(Self { bytes })
    }

    /// Builds a data key from raw bytes (test vectors, interoperability with another
    /// implementation). Production code obtains keys from [`DataKey::generate`] or [`unwrap`].
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        let mut bytes = bytes;
        let key = Self {
            bytes: Zeroizing::new(bytes),
        };
        bytes.zeroize();
        key
    }

    /// The raw key bytes, for the key schedule and the wrap.
    pub(crate) fn expose(&self) -> &[u8; Self::LEN] {
        &self.bytes
    }
}

impl ZeroizeOnDrop for DataKey {}

/// An X25519 public key (an epoch's, an operator's or a hold key's).
///
/// [`PublicKey::from_bytes`] rejects encodings that are non-canonical or of low order, so a key
/// agreement with an accepted key is always contributory (RFC 7748 §6.1, RFC 9180 §7.1.4).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    bytes: [u8; PublicKey::LEN],
}

impl PublicKey {
    /// Length of an encoded public key.
    pub const LEN: usize = 32;

    /// Parses a public key, rejecting the all-zero key, other low-order points and
    /// non-canonical encodings.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Result<Self, KeyError> {
        // The top bit is masked by X25519 (RFC 7748 §5); a key we generated never sets it, so a
        // set bit means someone else's encoding: refuse rather than silently alias two keys.
        if bytes[31] & 0x80 != 0 {
            return Err(KeyError::InvalidPublicKey {
                reason: "the most significant bit is set (non-canonical encoding)",
            });
        }
        if !is_canonical_field_element(&bytes) {
            return Err(KeyError::InvalidPublicKey {
                reason: "the u-coordinate is not reduced modulo 2^255-19 (non-canonical encoding)",
            });
        }
        if is_low_order(&bytes) {
            return Err(KeyError::InvalidPublicKey {
                reason: "the point has small order, so key agreement with it is not contributory",
            });
        }
        Ok(Self { bytes })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.bytes
    }

    pub(crate) fn to_hpke(&self) -> Result<<WrapKem as hpke::Kem>::PublicKey, KeyError> {
        <WrapKem as hpke::Kem>::PublicKey::from_bytes(&self.bytes).map_err(|_| {
            KeyError::InvalidPublicKey {
                reason: "rejected by the HPKE implementation",
            }
        })
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::fmt::Display for PublicKey {
    /// 64 lowercase hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        ids::write_hex(f, &self.bytes)
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    /// Parses exactly 64 lowercase hex digits, then validates like [`PublicKey::from_bytes`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = ids::parse_hex::<{ Self::LEN }>(s).ok_or(KeyError::ParseId {
            what: "X25519 public key",
            reason: "expected exactly 64 lowercase hex digits",
        })?;
        Self::from_bytes(bytes)
    }
}

/// An X25519 secret key (an epoch's or an operator's).
///
/// No `Debug`/`Clone`/`Serialize`; zeroized on drop. The escrow stores it with
/// [`SecretKey::expose_bytes`] and loads it with [`SecretKey::from_bytes`].
pub struct SecretKey {
    inner: <WrapKem as hpke::Kem>::PrivateKey,
}

impl SecretKey {
    /// Length of an encoded secret key.
    pub const LEN: usize = 32;

    /// Draws a fresh secret key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; Self::LEN]);
        fill_random(bytes.as_mut())?;
        Ok(Self::from_bytes_ref(&bytes))
    }

    /// Loads a stored secret key. The scalar is clamped (RFC 7748 §5), as X25519 does anyway, so
    /// every 32-byte string is a valid key; [`SecretKey::expose_bytes`] returns the clamped form.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        let bytes = Zeroizing::new(bytes);
        Self::from_bytes_ref(&bytes)
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let pk = WrapKem::sk_to_pk(&self.inner).to_bytes();
        let mut bytes = [0u8; PublicKey::LEN];
        bytes.copy_from_slice(&pk);
        PublicKey { bytes }
    }

    /// The clamped scalar, for storage by its owner (the escrow's keyring, an operator's key
    /// file). Zeroized when the returned value is dropped.
    pub fn expose_bytes(&self) -> Zeroizing<[u8; Self::LEN]> {
        let mut out = Zeroizing::new([0u8; Self::LEN]);
        self.inner.write_exact(out.as_mut());
        out
    }

    pub(crate) fn as_hpke(&self) -> &<WrapKem as hpke::Kem>::PrivateKey {
        &self.inner
    }

    fn from_bytes_ref(bytes: &[u8; Self::LEN]) -> Self {
        // hpke clamps on deserialization (RFC 9180 §7.1.2) and zeroizes its scalar on drop.
        // Deserialization only fails on a length mismatch, impossible for a 32-byte array; the
        // fallback keeps the function total without a panic path.
        match <WrapKem as hpke::Kem>::PrivateKey::from_bytes(bytes) {
            Ok(inner) => Self { inner },
            Err(_) => Self {
                inner: WrapKem::derive_keypair(bytes).0,
            },
        }
    }
}

/// Fills `buf` from the OS random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|e| KeyError::Randomness {
        reason: e.to_string(),
    })
}

/// p = 2^255 - 19, little-endian.
const FIELD_PRIME_LE: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// True if the little-endian value is < p (the top bit is checked separately).
fn is_canonical_field_element(u: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if u[i] != FIELD_PRIME_LE[i] {
            return u[i] < FIELD_PRIME_LE[i];
        }
    }
    false
}

/// A point has order dividing 8 iff multiplying it by a clamped scalar (a multiple of the
/// cofactor 8 whose odd part is below both prime subgroup orders) gives the identity, which
/// X25519 encodes as u = 0. Public keys are not secret, so variable time is fine here.
fn is_low_order(u: &[u8; 32]) -> bool {
    let mut k = [0u8; 32];
    k[0] = 9;
    let out = x25519_dalek::x25519(k, *u);
    out == [0u8; 32]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The low-order points of Curve25519 and their non-canonical aliases below 2^255
    /// (as listed in the libsodium / Bernstein "cr.yp.to/ecdh.html" blocklist).
    fn low_order_points() -> Vec<[u8; 32]> {
        let hex = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        hex.iter()
            .map(|h| <[u8; 32]>::try_from(hex::decode(h).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn public_key_rejects_low_order_points() {
        let pts = low_order_points();
        for p in &pts[..4] {
            let err = PublicKey::from_bytes(*p).unwrap_err();
            assert!(
                matches!(err, KeyError::InvalidPublicKey { reason } if reason.contains("small order")),
                "{p:02x?} accepted or wrong reason"
            );
        }
        // p - 1 is canonical and of order 2.
        assert!(matches!(
            PublicKey::from_bytes(pts[4]).unwrap_err(),
            KeyError::InvalidPublicKey { reason } if reason.contains("small order")
        ));
    }

    #[test]
    fn public_key_rejects_non_canonical_encodings() {
        // p itself (aliases 0), p + 1 (aliases 1) and any value with the top bit set.
        let mut p = FIELD_PRIME_LE;
        assert!(PublicKey::from_bytes(p).is_err());
        p[0] = 0xee;
        assert!(PublicKey::from_bytes(p).is_err());
        let mut top = SecretKey::generate().unwrap().public_key().to_bytes();
        top[31] |= 0x80;
        assert!(matches!(
            PublicKey::from_bytes(top).unwrap_err(),
            KeyError::InvalidPublicKey { reason } if reason.contains("most significant")
        ));
    }

    #[test]
    fn generated_keys_round_trip() {
        let sk = SecretKey::generate().unwrap();
        let pk = sk.public_key();
        assert_eq!(PublicKey::from_bytes(pk.to_bytes()).unwrap(), pk);
        let stored = sk.expose_bytes();
        let again = SecretKey::from_bytes(*stored);
        assert_eq!(again.public_key(), pk);
        assert_eq!(*again.expose_bytes(), *stored);
        // Clamped: low 3 bits clear, bit 254 set, bit 255 clear.
        assert_eq!(stored[0] & 7, 0);
        assert_eq!(stored[31] & 0xc0, 0x40);
        let text = pk.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PublicKey>().unwrap(), pk);
        assert!(text.to_uppercase().parse::<PublicKey>().is_err());
    }

    #[test]
    fn rfc7748_public_key_derivation() {
        // RFC 7748 §6.1: Alice's private key and public key.
        let sk: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let pk = SecretKey::from_bytes(sk).public_key();
        assert_eq!(
            hex::encode(pk.to_bytes()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn data_keys_differ() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        let c = DataKey::from_bytes([7; 32]);
        assert_eq!(c.expose(), &[7; 32]);
    }
}
