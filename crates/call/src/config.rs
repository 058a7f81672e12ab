//! Every setting of the call core, validated once when the [`crate::CallManager`] is built.

use std::net::SocketAddr;
use std::time::Duration;

use callseal_sip::Uri;

use crate::error::ConfigError;
use crate::identity::IdentityMode;
use crate::sdp::SdpPolicy;

/// Where callers are connected once the consent question is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A B-leg INVITE to this URI, sent to `next_hop` (the PBX's address after DNS, resolved by
    /// the shell; RFC 3263 resolution is not the core's business).
    Pbx {
        /// Request-URI of the B-leg INVITE (its user part is replaced by the called line).
        uri: Uri,
        /// Where the INVITE is sent.
        next_hop: SocketAddr,
    },
    /// No PBX: the shell's built-in echo endpoint stands in for the consultant (demo mode).
    Echo,
}

/// The consent question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSettings {
    /// Digit meaning "yes, record" (default `1`).
    pub consent_digit: char,
    /// Digit meaning "no" (default `2`).
    pub decline_digit: char,
    /// Wait for a digit after the prompt ended.
    pub digit_timeout: Duration,
    /// How often the prompt is played again when no digit comes (0 = once only).
    pub repeats: u8,
    /// SHA-256 of the consent prompt audio the shell plays (goes into the evidence).
    pub prompt_sha256: [u8; 32],
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            consent_digit: '1',
            decline_digit: '2',
            digit_timeout: Duration::from_secs(8),
            repeats: 1,
            prompt_sha256: [0; 32],
        }
    }
}

/// The satisfaction survey played when the consultant hangs up first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveySettings {
    /// Play the survey at all.
    pub enabled: bool,
    /// Lowest accepted answer digit.
    pub min: u8,
    /// Highest accepted answer digit.
    pub max: u8,
    /// Wait for the answer after the question ended.
    pub timeout: Duration,
    /// Line label stored with each answer; empty: the user part of the called URI.
    pub line: String,
}

impl Default for SurveySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            min: 1,
            max: 5,
            timeout: Duration::from_secs(8),
            line: String::new(),
        }
    }
}

/// Recording policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSettings {
    /// Days a recording stays releasable; decides the escrow epoch.
    pub retention_days: u32,
    /// Length of one escrow epoch window in days (1 = one epoch per UTC day).
    pub epoch_window_days: u32,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            retention_days: 30,
            epoch_window_days: 1,
        }
    }
}

/// Every setting of the call core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// The gateway's SIP address as written in Contact and Via (`advertised` of the shell).
    pub sip_address: SocketAddr,
    /// Transport token for our Via (`UDP` or `TCP`).
    pub transport: String,
    /// Where callers are connected.
    pub target: Target,
    /// How the PBX sees the caller.
    pub identity: IdentityMode,
    /// The consent question.
    pub consent: ConsentSettings,
    /// Digits that withdraw consent during the call (e.g. `*9`).
    pub withdraw_code: String,
    /// The survey.
    pub survey: SurveySettings,
    /// Recording policy.
    pub recording: RecordingSettings,
    /// SDP capabilities.
    pub sdp: SdpPolicy,
    /// How long the PBX may ring before the caller is told it is unreachable.
    pub ring_timeout: Duration,
    /// How long a call may stay in `Ending` waiting for BYE answers before it is freed.
    pub teardown_timeout: Duration,
    /// Calls alive at once; a new INVITE beyond gets 503 with Retry-After (RFC 3261 §21.5.4).
    pub max_calls: usize,
    /// Retry-After (seconds) in those 503s.
    pub retry_after_secs: u32,
}

impl CallConfig {
    /// Defaults for a gateway at `sip_address` connecting to `target`.
    pub fn new(sip_address: SocketAddr, target: Target) -> Self {
        Self {
            sip_address,
            transport: "UDP".to_owned(),
            target,
            identity: IdentityMode::Pseudonym,
            consent: ConsentSettings::default(),
            withdraw_code: "*9".to_owned(),
            survey: SurveySettings::default(),
            recording: RecordingSettings::default(),
            sdp: SdpPolicy::default(),
            ring_timeout: Duration::from_secs(60),
            teardown_timeout: Duration::from_secs(32),
            max_calls: 1000,
            retry_after_secs: 30,
        }
    }

    /// Checks the settings that could make the consent flow ambiguous.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.consent;
        if c.consent_digit == c.decline_digit
            || !crate::command::is_dtmf_digit(c.consent_digit)
            || !crate::command::is_dtmf_digit(c.decline_digit)
        {
            return Err(ConfigError::ConsentDigits {
                consent: c.consent_digit,
                decline: c.decline_digit,
            });
        }
        let code = &self.withdraw_code;
        if code.is_empty() || code.chars().count() > 8 || !code.chars().all(crate::is_dtmf_digit) {
            return Err(ConfigError::WithdrawCode { code: code.clone() });
        }
        if self.survey.min > self.survey.max || self.survey.max > 9 {
            return Err(ConfigError::SurveyDigits);
        }
        if self.recording.epoch_window_days == 0 {
            return Err(ConfigError::EpochWindow);
        }
        if self.sdp.codecs.is_empty() {
            return Err(ConfigError::NoCodecs);
        }
        if !(96..=127).contains(&self.sdp.telephone_event_pt) {
            return Err(ConfigError::TelephoneEventPt {
                pt: self.sdp.telephone_event_pt,
            });
        }
        Ok(())
    }

    /// The escrow epoch for a recording started at `unix_ms`: the last day of the epoch window
    /// that contains the day its retention ends.
    pub fn epoch_for(&self, unix_ms: u64) -> u32 {
        let day = unix_ms / 86_400_000 + u64::from(self.recording.retention_days);
        let w = u64::from(self.recording.epoch_window_days.max(1));
        let last = (day / w + 1) * w - 1;
        u32::try_from(last).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CallConfig {
        CallConfig::new("127.0.0.1:5060".parse().unwrap(), Target::Echo)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(cfg().validate(), Ok(()));
    }

    #[test]
    fn same_digits_rejected() {
        let mut c = cfg();
        c.consent.decline_digit = '1';
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ConsentDigits { .. })
        ));
    }

    #[test]
    fn withdraw_code_checked() {
        for bad in ["", "*x", "123456789"] {
            let mut c = cfg();
            c.withdraw_code = bad.into();
            assert!(
                matches!(c.validate(), Err(ConfigError::WithdrawCode { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn epoch_is_the_window_end_of_the_retention_day() {
        let mut c = cfg();
        // 2026-12-04 00:00 UTC is day 20_791.
        let t = 20_791 * 86_400_000 + 5_000;
        assert_eq!(c.epoch_for(t), 20_821);
        c.recording.epoch_window_days = 7;
        // 20_821 lies in the window 20_818..=20_824.
        assert_eq!(c.epoch_for(t), 20_824);
    }
}
