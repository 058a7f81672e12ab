//! SDES key exchange (RFC 4568): the `a=crypto` attribute and the master key it carries.
//!
//! The key is a secret type: no `Debug`, no `Clone`, zeroized on drop, and errors never quote
//! the attribute text. Printing an attribute yields a zeroizing string.

use std::fmt::Write as _;

use zeroize::{Zeroize, Zeroizing};

use super::base64;

/// Crypto suites this gateway negotiates (RFC 4568 §6.2, RFC 6188, RFC 7714).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpSuite {
    /// AES_CM_128_HMAC_SHA1_80 (the mandatory one).
    AesCm128HmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32.
    AesCm128HmacSha1_32,
    /// AES_256_CM_HMAC_SHA1_80 (RFC 6188).
    AesCm256HmacSha1_80,
    /// AEAD_AES_128_GCM (RFC 7714).
    AeadAes128Gcm,
    /// AEAD_AES_256_GCM (RFC 7714).
    AeadAes256Gcm,
}

impl SrtpSuite {
    /// The SDP name.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite of an SDP name (case-sensitive, as registered).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
            SrtpSuite::AesCm256HmacSha1_80,
            SrtpSuite::AeadAes128Gcm,
            SrtpSuite::AeadAes256Gcm,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80
            | SrtpSuite::AesCm128HmacSha1_32
            | SrtpSuite::AeadAes128Gcm => 16,
            SrtpSuite::AesCm256HmacSha1_80 | SrtpSuite::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes (14 for AES-CM, 12 for GCM; RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm => 12,
            _ => 14,
        }
    }

    pub(crate) fn profile(self) -> rtc_srtp::protection_profile::ProtectionProfile {
        use rtc_srtp::protection_profile::ProtectionProfile as P;
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => P::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => P::Aes128CmHmacSha1_32,
            SrtpSuite::AesCm256HmacSha1_80 => P::Aes256CmHmacSha1_80,
            SrtpSuite::AeadAes128Gcm => P::AeadAes128Gcm,
            SrtpSuite::AeadAes256Gcm => P::AeadAes256Gcm,
        }
    }
}

/// Why an `a=crypto` attribute was refused. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdesError {
    /// Not `tag suite inline:key…`.
    #[error("a=crypto attribute is not `<tag> <suite> inline:<key>`; check the peer's SDP")]
    Syntax,
    /// The tag is not a 1–9 digit decimal number (RFC 4568 §9.1).
    #[error("a=crypto tag is not a decimal number of at most 9 digits")]
    BadTag,
    /// A suite this gateway does not implement.
    #[error("a=crypto suite {suite:?} is not supported; offer AES_CM_128_HMAC_SHA1_80")]
    UnsupportedSuite {
        /// The suite name (public information).
        suite: String,
    },
    /// The inline key is not valid base64 or has the wrong length for the suite.
    #[error("a=crypto inline key is not base64 of {expected} bytes (key + salt) for {suite}")]
    BadKey {
        /// Suite name.
        suite: &'static str,
        /// Expected key+salt length.
        expected: usize,
    },
    /// Several keys or an MKI: the SRTP implementation has no MKI support.
    #[error(
        "a=crypto with an MKI or several keys is not supported; offer a single key without MKI"
    )]
    MkiUnsupported,
    /// Session parameters that change the transform (UNENCRYPTED_SRTP, KDR, …).
    #[error("a=crypto session parameter {param:?} is not supported; offer none")]
    UnsupportedParameter {
        /// The parameter name (without its value).
        param: String,
    },
}

/// An SRTP master key and salt. No `Debug`, no `Clone`; zeroized on drop.
pub struct SrtpKeyMaterial {
    suite: SrtpSuite,
    key_and_salt: Zeroizing<Vec<u8>>,
}

impl SrtpKeyMaterial {
    /// Key material from caller-supplied random bytes (the core takes no randomness of its own);
    /// `random` must hold at least `key_len + salt_len` bytes, of which that many are used.
    pub fn from_random(suite: SrtpSuite, random: &[u8]) -> Option<Self> {
        let n = suite.key_len() + suite.salt_len();
        let bytes = random.get(..n)?;
        Some(Self {
            suite,
            key_and_salt: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Key material from the exact `key || salt` bytes of `suite` (RFC 4568 §6.1), e.g. 30
    /// bytes for AES_CM_128_HMAC_SHA1_80, as decoded from an `a=crypto` inline key.
    pub fn from_bytes(suite: SrtpSuite, key_and_salt: &[u8]) -> Result<Self, SdesError> {
        let expected = suite.key_len() + suite.salt_len();
        if key_and_salt.len() != expected {
            return Err(SdesError::BadKey {
                suite: suite.name(),
                expected,
            });
        }
        Ok(Self {
            suite,
            key_and_salt: Zeroizing::new(key_and_salt.to_vec()),
        })
    }

    /// Whether `other` holds the same suite, key and salt (a re-INVITE that kept the keys).
    pub fn same_as(&self, other: &SrtpKeyMaterial) -> bool {
        // Both operands are secrets held by this process; no attacker-timed comparison.
        self.suite == other.suite && self.key_and_salt.as_slice() == other.key_and_salt.as_slice()
    }

    /// The suite this key is for.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    pub(crate) fn key(&self) -> &[u8] {
        self.key_and_salt
            .get(..self.suite.key_len())
            .unwrap_or_default()
    }

    pub(crate) fn salt(&self) -> &[u8] {
        self.key_and_salt
            .get(self.suite.key_len()..)
            .unwrap_or_default()
    }
}

/// A parsed `a=crypto` attribute (RFC 4568 §9.1) with one key and no MKI.
pub struct CryptoAttribute {
    /// Tag matching offer and answer.
    pub tag: u32,
    /// The key (its suite is the attribute's suite).
    pub key: SrtpKeyMaterial,
    /// Key lifetime as written (`2^31`, decimal), if present.
    pub lifetime: Option<String>,
}

impl CryptoAttribute {
    /// Parses the attribute value, with or without the leading `a=crypto:` / `crypto:`.
    pub fn parse(text: &str) -> Result<Self, SdesError> {
        let value = text
            .trim()
            .trim_start_matches("a=")
            .trim_start_matches("crypto:");
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite_name), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(SdesError::Syntax);
        };
        if let Some(param) = fields.next() {
            let name = param.split('=').next().unwrap_or_default();
            return Err(SdesError::UnsupportedParameter {
                param: name.to_owned(),
            });
        }
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::BadTag);
        }
        let tag: u32 = tag.parse().map_err(|_| SdesError::BadTag)?;
        let suite =
            SrtpSuite::from_name(suite_name).ok_or_else(|| SdesError::UnsupportedSuite {
                suite: suite_name.chars().take(40).collect(),
            })?;
        if key_params.contains(';') {
            return Err(SdesError::MkiUnsupported);
        }
        let inline = key_params
            .strip_prefix("inline:")
            .ok_or(SdesError::Syntax)?;
        let mut parts = inline.split('|');
        let key_text = parts.next().unwrap_or_default();
        let mut lifetime = None;
        for part in parts {
            if part.contains(':') {
                return Err(SdesError::MkiUnsupported);
            }
            if lifetime.is_some() {
                return Err(SdesError::Syntax);
            }
            lifetime = Some(part.to_owned());
        }
        let expected = suite.key_len() + suite.salt_len();
        let bad_key = SdesError::BadKey {
            suite: suite.name(),
            expected,
        };
        let decoded = base64::decode(key_text).ok_or(bad_key.clone())?;
        if decoded.len() != expected {
            return Err(bad_key);
        }
        Ok(Self {
            tag,
            key: SrtpKeyMaterial {
                suite,
                key_and_salt: decoded,
            },
            lifetime,
        })
    }

    /// The attribute value (`1 AES_CM_128_HMAC_SHA1_80 inline:…`), without `a=crypto:`.
    /// Contains the key: zeroized on drop; never log it.
    pub fn to_value(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        let mut encoded = base64::encode(&self.key.key_and_salt);
        let _ = write!(
            out,
            "{} {} inline:{}",
            self.tag,
            self.key.suite.name(),
            encoded.as_str()
        );
        encoded.zeroize();
        if let Some(lifetime) = &self.lifetime {
            let _ = write!(out, "|{lifetime}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §6.1 example key (public test material).
    const RFC_EXAMPLE: &str =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20";

    #[test]
    fn parses_and_prints_rfc_example() {
        let c = CryptoAttribute::parse(RFC_EXAMPLE).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.key.suite(), SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(c.key.key(), b"YS___semctl () {");
        assert_eq!(c.key.salt().len(), 14);
        assert_eq!(c.lifetime.as_deref(), Some("2^20"));
        assert_eq!(
            c.to_value().as_str(),
            RFC_EXAMPLE.trim_start_matches("a=crypto:")
        );
    }

    #[test]
    fn refusals_name_the_problem_without_the_key() {
        let cases = [
            ("1 AES_CM_128_HMAC_SHA1_80", SdesError::Syntax),
            (
                "x AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
                SdesError::BadTag,
            ),
            (
                "1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
                SdesError::UnsupportedSuite {
                    suite: "F8_128_HMAC_SHA1_80".into(),
                },
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
                SdesError::MkiUnsupported,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz UNENCRYPTED_SRTP",
                SdesError::UnsupportedParameter {
                    param: "UNENCRYPTED_SRTP".into(),
                },
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9",
                SdesError::BadKey {
                    suite: "AES_CM_128_HMAC_SHA1_80",
                    expected: 30,
                },
            ),
        ];
        for (text, expected) in cases {
            let err = CryptoAttribute::parse(text).err().unwrap();
            assert_eq!(err, expected, "{text}");
            assert!(!err.to_string().contains("WVNf"), "{err}");
        }
    }

    #[test]
    fn gcm_and_aes256_lengths() {
        let key = SrtpKeyMaterial::from_random(SrtpSuite::AeadAes128Gcm, &[7u8; 28]).unwrap();
        let attr = CryptoAttribute {
            tag: 2,
            key,
            lifetime: None,
        };
        let printed = attr.to_value();
        let back = CryptoAttribute::parse(&printed).unwrap();
        assert_eq!(back.key.key(), &[7u8; 16]);
        assert_eq!(back.key.salt(), &[7u8; 12]);
        assert!(SrtpKeyMaterial::from_random(SrtpSuite::AesCm256HmacSha1_80, &[0u8; 45]).is_none());
    }
}
