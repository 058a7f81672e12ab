//! Secret types of the escrow itself: operator tokens and the Ed25519 identity key.
//!
//! Neither implements Debug, Clone or Serialize; both zeroize on drop.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::EscrowError;
use crate::fsutil;

const TOKEN_PREFIX: &str = "cs1_";

/// A bearer token: 256 random bits, shown to its holder once, stored only as SHA-256.
pub struct Token {
    bytes: Zeroizing<[u8; 32]>,
}

impl Token {
    /// A fresh token from OS randomness.
    pub fn generate() -> Result<Self, EscrowError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| EscrowError::Crypto {
            what: "OS randomness for a token",
        })?;
        Ok(Token { bytes })
    }

    /// Parses the text form `cs1_<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, EscrowError> {
        let hexpart = s
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(EscrowError::Unauthenticated)?;
        if hexpart.len() != 64
            || !hexpart
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(EscrowError::Unauthenticated);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hexpart, bytes.as_mut_slice())
            .map_err(|_| EscrowError::Unauthenticated)?;
        Ok(Token { bytes })
    }

    /// The text form, to hand to the operator once (or to put in an Authorization header).
    pub fn expose(&self) -> Zeroizing<String> {
        let mut s = String::with_capacity(68);
        s.push_str(TOKEN_PREFIX);
        s.push_str(&hex::encode(self.bytes.as_slice()));
        Zeroizing::new(s)
    }

    /// The SHA-256 under which the token is stored and looked up.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.bytes.as_slice()).into()
    }
}

/// The escrow's Ed25519 identity: signs epoch tables, audit entries and destruction receipts.
pub struct IdentityKey {
    key: SigningKey,
}

const IDENTITY_MAGIC: &[u8; 8] = b"CSID\x01\0\0\0";

impl IdentityKey {
    /// A fresh identity from OS randomness.
    pub fn generate() -> Result<Self, EscrowError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|_| EscrowError::Crypto {
            what: "OS randomness for the identity key",
        })?;
        Ok(IdentityKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Loads the identity key file (mode 0600 required).
    pub fn load(path: &Path) -> Result<Self, EscrowError> {
        let bytes = Zeroizing::new(fsutil::read_private(path)?);
        let err = || EscrowError::KeyFile {
            path: path.display().to_string(),
            reason: "not a callseal identity key (bad magic or length)".into(),
        };
        if bytes.len() != 40 || bytes.get(..8) != Some(IDENTITY_MAGIC.as_slice()) {
            return Err(err());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[8..40]);
        Ok(IdentityKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Writes the identity key file (0600, atomic).
    pub fn store(&self, path: &Path) -> Result<(), EscrowError> {
        let mut buf = Zeroizing::new(IDENTITY_MAGIC.to_vec());
        let mut seed = self.key.to_bytes();
        buf.extend_from_slice(&seed);
        seed.zeroize();
        fsutil::write_atomic_private(path, &buf)
    }

    /// The public half, which gateways and operators pin.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `msg` (callers always include a domain-separation prefix in `msg`).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// Verifies an Ed25519 signature strictly (rejects small-order keys and malleable signatures).
pub fn verify_signature(key: &VerifyingKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_strict_parse() {
        let t = Token::generate().unwrap();
        let text = t.expose();
        assert_eq!(text.len(), 68);
        let back = Token::parse(&text).unwrap();
        assert_eq!(back.hash(), t.hash());
        for bad in [
            "",
            "cs1_",
            "cs1_XYZ",
            &text.to_uppercase(),
            &format!("{}0", text.as_str()),
        ] {
            assert!(Token::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn identity_persists() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("identity.key");
        let id = IdentityKey::generate().unwrap();
        id.store(&p).unwrap();
        let back = IdentityKey::load(&p).unwrap();
        assert_eq!(back.verifying_key(), id.verifying_key());
        let sig = back.sign(b"m");
        assert!(verify_signature(&id.verifying_key(), b"m", &sig));
        assert!(!verify_signature(&id.verifying_key(), b"n", &sig));
    }
}
