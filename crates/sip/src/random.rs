//! Identifiers that must be unique (branches, tags, Call-IDs) from randomness supplied by the
//! caller. The crate never reads OS randomness: the shell seeds a generator once, tests use
//! fixed seeds and get reproducible runs.

/// A source of 64-bit random values.
pub trait RandomSource {
    /// The next value.
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, full-period. Uniqueness, not secrecy, is
/// what branches and tags need (RFC 3261 §8.1.1.7, §19.3), as long as the seed is random.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
    /// A generator seeded from 32 bytes (e.g. from the shell's `getrandom`), folded to 64 bits.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = 0u64;
        for chunk in seed.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            s = s.rotate_left(17) ^ u64::from_le_bytes(b);
        }
        Self::new(s)
    }
}

impl RandomSource for SeededRandom {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn push_hex(out: &mut String, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(char::from(HEX[((v >> (i * 4)) & 0xf) as usize]));
    }
}

/// A new RFC 3261 branch: the magic cookie and 64 random bits in hex (§8.1.1.7).
pub fn new_branch(rng: &mut impl RandomSource) -> String {
    let mut s = String::with_capacity(23);
    s.push_str(crate::BRANCH_MAGIC_COOKIE);
    push_hex(&mut s, rng.next_u64());
    s
}

/// A new From/To tag: 64 random bits in hex (§19.3 asks for at least 32).
pub fn new_tag(rng: &mut impl RandomSource) -> String {
    let mut s = String::with_capacity(16);
    push_hex(&mut s, rng.next_u64());
    s
}

/// A new Call-ID `<128 random bits in hex>@host` (§8.1.1.4).
pub fn new_call_id(rng: &mut impl RandomSource, host: &str) -> String {
    let mut s = String::with_capacity(33 + host.len());
    push_hex(&mut s, rng.next_u64());
    push_hex(&mut s, rng.next_u64());
    if !host.is_empty() {
        s.push('@');
        s.push_str(host);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_reproducible_and_distinct() {
        let mut a = SeededRandom::new(7);
        let mut b = SeededRandom::new(7);
        let (ba, bb) = (new_branch(&mut a), new_branch(&mut b));
        assert_eq!(ba, bb);
        assert!(ba.starts_with("z9hG4bK") && ba.len() == 23);
        assert_ne!(new_tag(&mut a), new_tag(&mut a));
        let id = new_call_id(&mut a, "gw.example.com");
        assert_eq!(id.len(), 32 + 1 + 14);
        assert!(id.ends_with("@gw.example.com"));
        let mut c = SeededRandom::from_seed([1u8; 32]);
        assert_ne!(c.next_u64(), SeededRandom::new(7).next_u64());
    }
}
