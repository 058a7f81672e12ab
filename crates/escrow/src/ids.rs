//! Strict identifier and value types.
//!
//! Every identifier that crosses the API is parsed into one of these types before it reaches
//! storage; none is ever used to build a file path. Parsing is strict (fixed alphabets, bounded
//! lengths), so `../../etc/passwd`, empty strings and control characters are rejected up front.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::EscrowError;

/// Milliseconds per UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// A UTC wall-clock instant, milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_ms(ms: i64) -> Self {
        Timestamp(ms)
    }
    /// Milliseconds since the Unix epoch.
    pub const fn unix_ms(self) -> i64 {
        self.0
    }
    /// The UTC day number (days since 1970-01-01) this instant falls in.
    pub const fn day(self) -> i64 {
        self.0.div_euclid(DAY_MS)
    }
    /// The first instant of UTC day `day`.
    pub const fn start_of_day(day: i64) -> Self {
        Timestamp(day.saturating_mul(DAY_MS))
    }
    /// This instant plus `ms` milliseconds (saturating).
    pub const fn plus_ms(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, millisecond precision (civil date from the day number, proleptic
    /// Gregorian, after H. Hinnant's `civil_from_days`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.day());
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (h, rem) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (min, rem) = (rem / 60_000, rem % 60_000);
        let (s, ms) = (rem / 1000, rem % 1000);
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
    }
}

/// Civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Checks `s` against a token alphabet and a length bound.
fn check_token(
    field: &'static str,
    s: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), EscrowError> {
    if s.is_empty() {
        return Err(EscrowError::invalid(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(EscrowError::invalid(
            field,
            format!("longer than {max} bytes"),
        ));
    }
    if let Some(bad) = s.bytes().find(|b| !allowed(*b)) {
        return Err(EscrowError::invalid(
            field,
            format!("character 0x{bad:02x} is not allowed"),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $allowed:expr, $first:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates.
            pub fn new(s: &str) -> Result<Self, EscrowError> {
                check_token($field, s, $max, $allowed)?;
                if !s.bytes().next().is_some_and($first) {
                    return Err(EscrowError::invalid($field, "must start with a letter or digit"));
                }
                Ok($name(s.to_owned()))
            }
            /// A literal known to be valid (checked in debug builds).
            #[allow(dead_code)]
            pub(crate) fn literal(s: &'static str) -> Self {
                debug_assert!($name::new(s).is_ok(), "invalid literal id");
                $name(s.to_owned())
            }
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $name {
            type Err = EscrowError;
            fn from_str(s: &str) -> Result<Self, EscrowError> {
                $name::new(s)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn slug_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn any_byte(_: u8) -> bool {
    true
}

fn line_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.')
}

string_id!(
    /// An operator account id: 1–64 of `[a-z0-9._-]`, starting with a letter or digit.
    OperatorId, "operator id", 64, slug_byte, alnum
);
string_id!(
    /// A gateway id (the gateway account's operator id): same rules as [`OperatorId`].
    GatewayId, "gateway id", 64, slug_byte, alnum
);
string_id!(
    /// A hospital line (called number or service name) for retention policy: 1–64 of
    /// `[A-Za-z0-9+._-]`. Lines are service numbers, never caller numbers.
    LineId, "line", 64, line_byte, |b: u8| b != b'.'
);
string_id!(
    /// The pseudonymous caller code shown to consultants (e.g. `C-7KQ2-9XMD`): 1–32 of
    /// `[A-Z0-9-]`. The escrow never sees the caller's number.
    CallerCode, "caller code", 32, |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-', any_byte
);

/// Maximum purpose length in characters.
pub const PURPOSE_MAX: usize = 500;
/// Maximum erasure / hold reason length in characters.
pub const REASON_MAX: usize = 500;

fn check_text(
    s: &str,
    max: usize,
    empty: EscrowError,
    long: impl FnOnce(usize) -> EscrowError,
) -> Result<String, EscrowError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(empty);
    }
    let chars = trimmed.chars().count();
    if chars > max || trimmed.chars().any(char::is_control) {
        return Err(long(chars));
    }
    Ok(trimmed.to_owned())
}

/// Why a listener asks for a key: non-empty, at most [`PURPOSE_MAX`] characters, no control
/// characters. Stored in the audit log verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Purpose(String);

impl Purpose {
    /// Validates a purpose statement.
    pub fn new(s: &str) -> Result<Self, EscrowError> {
        check_text(s, PURPOSE_MAX, EscrowError::PurposeRequired, |len| {
            EscrowError::PurposeTooLong {
                len,
                max: PURPOSE_MAX,
            }
        })
        .map(Purpose)
    }
    /// The statement.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a recording is erased or held: non-empty, at most [`REASON_MAX`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    /// Validates a reason.
    pub fn new(s: &str) -> Result<Self, EscrowError> {
        check_text(
            s,
            REASON_MAX,
            EscrowError::invalid("reason", "must not be empty"),
            |len| {
                EscrowError::invalid(
                    "reason",
                    format!("{len} characters; at most {REASON_MAX}, no control characters"),
                )
            },
        )
        .map(Reason)
    }
    /// The reason text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Reason::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Operator roles (separation of duties: an admin cannot listen, a listener cannot administer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages operators, retention, holds and erasures.
    Admin,
    /// Reads the audit log, receipts and metadata.
    Auditor,
    /// Obtains purpose-bound key releases.
    Listener,
    /// A gateway: deposits keys, fetches epochs, erases on withdrawn consent.
    Gateway,
}

impl Role {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Listener => "listener",
            Role::Gateway => "gateway",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = EscrowError;
    fn from_str(s: &str) -> Result<Self, EscrowError> {
        match s {
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            "listener" => Ok(Role::Listener),
            "gateway" => Ok(Role::Gateway),
            _ => Err(EscrowError::invalid(
                "role",
                "expected admin, auditor, listener or gateway",
            )),
        }
    }
}

/// A retention period in whole days, within [`RetentionDays::MIN`]..=[`RetentionDays::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RetentionDays(u32);

impl RetentionDays {
    /// Shortest allowed retention.
    pub const MIN: u32 = 1;
    /// Longest allowed retention (ten years).
    pub const MAX: u32 = 3650;

    /// Validates a retention period given as a signed number (negative values are rejected
    /// with a clear error rather than wrapping).
    pub fn new(days: i64) -> Result<Self, EscrowError> {
        if days < i64::from(Self::MIN) || days > i64::from(Self::MAX) {
            return Err(EscrowError::InvalidRetention {
                days,
                min: Self::MIN,
                max: Self::MAX,
            });
        }
        Ok(RetentionDays(days as u32))
    }
    /// The number of days.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for RetentionDays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RetentionDays::new(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_looking_ids_are_rejected() {
        for bad in [
            "../etc",
            "a/b",
            "..",
            ".x",
            "",
            "A",
            "a b",
            "a\0",
            "a%2f",
            &"x".repeat(65),
        ] {
            assert!(OperatorId::new(bad).is_err(), "{bad:?} accepted");
            assert!(GatewayId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            OperatorId::new("alice_2")
                .map(|o| o.to_string())
                .ok()
                .as_deref(),
            Some("alice_2")
        );
        assert!(LineId::new("../x").is_err());
        assert!(LineId::new("..").is_err());
        assert_eq!(
            OperatorId::new("dr.meyer")
                .map(|o| o.to_string())
                .ok()
                .as_deref(),
            Some("dr.meyer")
        );
        assert!(LineId::new("+4930123.ivf").is_ok());
    }

    #[test]
    fn purpose_bounds() {
        assert_eq!(
            Purpose::new("  ").map(|_| ()).map_err(|e| e.code()),
            Err(crate::ErrorCode::PurposeRequired)
        );
        let long = "x".repeat(PURPOSE_MAX + 1);
        assert_eq!(
            Purpose::new(&long).map(|_| ()).map_err(|e| e.code()),
            Err(crate::ErrorCode::PurposeTooLong)
        );
        assert_eq!(
            Purpose::new("a\u{7}b").map(|_| ()).map_err(|e| e.code()),
            Err(crate::ErrorCode::PurposeTooLong)
        );
        assert_eq!(
            Purpose::new(" quality review ")
                .map(|p| p.as_str().to_owned())
                .ok()
                .as_deref(),
            Some("quality review")
        );
    }

    #[test]
    fn retention_bounds() {
        for bad in [-1, 0, 3651, i64::MAX, i64::MIN] {
            assert_eq!(
                RetentionDays::new(bad).map_err(|e| e.code()),
                Err(crate::ErrorCode::InvalidRetention)
            );
        }
        assert_eq!(
            RetentionDays::new(30).map(RetentionDays::get).ok(),
            Some(30)
        );
        assert!(serde_json::from_str::<RetentionDays>("-5").is_err());
    }

    #[test]
    fn timestamp_formats_rfc3339() {
        assert_eq!(
            Timestamp::from_unix_ms(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(1_764_720_000_123).to_string(),
            "2025-12-03T00:00:00.123Z"
        );
        assert_eq!(Timestamp::from_unix_ms(-1).day(), -1);
    }
}
