//! Tags, branches and Call-IDs from a seed the shell draws from OS randomness (the core has
//! no randomness of its own). RFC 3261 §19.3 asks for at least 32 random bits per tag and
//! global uniqueness for Call-IDs: each id is 64 bits of HMAC-SHA256(seed, counter).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Generates unpredictable identifiers. No `Debug`: the seed is a secret.
pub struct IdGenerator {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl IdGenerator {
    /// A generator keyed by 32 random bytes.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            seed: Zeroizing::new(seed),
            counter: 0,
        }
    }

    /// 16 lowercase hex digits, different on every call.
    pub fn token(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        let mut out = String::with_capacity(16);
        // HMAC accepts any key length; the fallback only keeps the function total.
        match Hmac::<Sha256>::new_from_slice(self.seed.as_slice()) {
            Ok(mut mac) => {
                mac.update(&self.counter.to_be_bytes());
                let tag = mac.finalize().into_bytes();
                for b in tag.iter().take(8) {
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 0xf)]));
                }
            }
            Err(_) => out.push_str(&format!("{:016x}", self.counter)),
        }
        out
    }

    /// A Via branch with the RFC 3261 §8.1.1.7 magic cookie.
    pub fn branch(&mut self) -> String {
        format!("{}{}", callseal_sip::BRANCH_MAGIC_COOKIE, self.token())
    }

    /// A random 62-bit number (SDP session ids, RFC 8866 §5.2 wants it unique).
    pub fn number(&mut self) -> u64 {
        u64::from_str_radix(&self.token(), 16).unwrap_or(self.counter) >> 2
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_depend_on_the_seed() {
        let mut a = IdGenerator::new([1; 32]);
        let mut b = IdGenerator::new([2; 32]);
        let (a1, a2, b1) = (a.token(), a.token(), b.token());
        assert_ne!(a1, a2);
        assert_ne!(a1, b1);
        assert_eq!(a1.len(), 16);
        assert!(a.branch().starts_with("z9hG4bK"));
    }
}
