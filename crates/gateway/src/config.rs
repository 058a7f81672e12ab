//! The gateway's settings: one TOML file, every field optional with a sane default.
//!
//! `deploy/callseal.example.toml` documents every setting; a test below parses it, so the
//! example and this file cannot drift apart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::GatewayError;

/// Every setting of the gateway. `Config::default()` is what `callseal serve` runs with when
/// no file is given.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// Root of all state: `gateway/`, `escrow/`, `recordings/`. Created on first run.
    pub data_dir: PathBuf,
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub consent: ConsentConfig,
    pub survey: SurveyConfig,
    pub prompts: PromptConfig,
    pub recording: RecordingConfig,
    pub escrow: EscrowConfig,
    pub metrics: MetricsConfig,
    pub logging: LoggingConfig,
    pub limits: LimitsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./callseal-data"),
            sip: SipConfig::default(),
            media: MediaConfig::default(),
            consent: ConsentConfig::default(),
            survey: SurveyConfig::default(),
            prompts: PromptConfig::default(),
            recording: RecordingConfig::default(),
            escrow: EscrowConfig::default(),
            metrics: MetricsConfig::default(),
            logging: LoggingConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// How the PBX sees the caller (the B-leg's From/P-Asserted-Identity).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CallerIdentity {
    /// `C-7KQ2-9XMD`: HMAC-SHA256 of the number under the secret pepper.
    #[default]
    Pseudonym,
    /// All but the last two digits replaced by `x`.
    Masked,
    /// The number as received. Only where the PBX is inside the same trust boundary.
    Passthrough,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SipConfig {
    /// UDP listening sockets.
    pub udp: Vec<SocketAddr>,
    /// TCP listening sockets (RFC 3261 §18: every UA must do both).
    pub tcp: Vec<SocketAddr>,
    /// Address written into Via/Contact when it differs from the bound one (NAT, 0.0.0.0).
    pub advertised: Option<SocketAddr>,
    /// Where consenting and declining callers are connected. None: the built-in echo demo.
    pub pbx: Option<String>,
    pub caller_identity: CallerIdentity,
    /// Largest SIP message accepted on TCP before the connection is closed.
    pub max_message_bytes: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
        Self {
            udp: vec![local],
            tcp: vec![local],
            advertised: None,
            pbx: None,
            caller_identity: CallerIdentity::Pseudonym,
            max_message_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub bind: IpAddr,
    /// Address written into SDP `c=` lines (defaults to `bind`).
    pub advertised: Option<IpAddr>,
    /// First RTP port (even; RTP on even, RTCP on the next odd port, RFC 3550 §11).
    pub port_min: u16,
    /// Last port of the range (inclusive).
    pub port_max: u16,
    /// Seconds without any RTP from a leg after which the call is ended.
    pub inactivity_timeout_secs: u64,
    /// Media threads, each carrying its share of the calls (0: one per core the process may
    /// run on).
    pub threads: usize,
    /// Microseconds a busy media thread lets packets gather between two waits (0: none). A
    /// thread that found at most one packet ready wakes at once for the next; under load each
    /// wake-up then serves a batch, which saves a wait and a context switch per packet at the
    /// price of at most this added delay (200 µs took a quarter of the CPU off the relay at
    /// 1000 streams, docs/PERFORMANCE.md).
    pub coalesce_us: u64,
    /// `SCHED_FIFO` priority of the media threads, 1–99 (0: the normal scheduler). Where the
    /// process may not use real-time scheduling the threads run normally and the gateway says
    /// so at start.
    pub realtime_priority: u8,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertised: None,
            port_min: 20000,
            port_max: 20999,
            inactivity_timeout_secs: 60,
            threads: 0,
            coalesce_us: 200,
            realtime_priority: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ConsentConfig {
    pub consent_digit: char,
    pub decline_digit: char,
    /// Digit sequence that withdraws consent during the call.
    pub withdraw_code: String,
    /// Seconds to wait for a digit after the prompt ends.
    pub digit_timeout_secs: u64,
    /// How often the prompt is played again when no digit comes (0 = once only).
    pub repeats: u32,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        Self {
            consent_digit: '1',
            decline_digit: '2',
            withdraw_code: "*9".to_owned(),
            digit_timeout_secs: 8,
            repeats: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SurveyConfig {
    /// Play the satisfaction question when the consultant hangs up first.
    pub enabled: bool,
    /// Line label stored with each answer (never the caller, never the recording).
    pub line: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PromptConfig {
    /// Folder with NAME.wav files (8 kHz mono 16-bit) overriding the built-in prompts.
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RecordingConfig {
    /// Where sealed `<recording-id>.csrec` files go (default `<data_dir>/recordings`).
    pub folder: Option<PathBuf>,
    /// Days a recording may be released before its epoch key is shredded.
    pub retention_days: u32,
    /// Longest audio per sealed segment (a segment also ends at 8 KiB of audio): the most a
    /// process crash can lose (power loss: see the durability notes of the recording format).
    pub segment_ms: u32,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            folder: None,
            retention_days: 30,
            segment_ms: 1000,
        }
    }
}

/// Where the escrow lives.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EscrowMode {
    /// In this process, state in `<data_dir>/escrow` (`callseal serve`).
    #[default]
    InProcess,
    /// A separate `callseal escrow` reached over HTTPS (`callseal gateway`).
    Remote,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EscrowConfig {
    pub mode: EscrowMode,
    /// `https://host:port` of a remote escrow.
    pub url: Option<String>,
    /// PEM file with the escrow's CA certificate (pinned; system roots are not used).
    pub ca_cert: Option<PathBuf>,
    /// File holding this gateway's escrow access token (0600).
    pub token_file: Option<PathBuf>,
    /// The escrow's Ed25519 identity (64 hex digits, its `identity.pub`), pinned to verify
    /// the signed epoch table. In-process: read from `<data_dir>/escrow/identity.pub`.
    pub identity: Option<String>,
    /// First retry delay of the outbox, doubled up to `retry_max_secs`.
    pub retry_min_secs: u64,
    pub retry_max_secs: u64,
    /// How long a fetched epoch table is trusted before it is fetched again.
    pub epoch_refresh_secs: u64,
}

impl Default for EscrowConfig {
    fn default() -> Self {
        Self {
            mode: EscrowMode::InProcess,
            url: None,
            ca_cert: None,
            token_file: None,
            identity: None,
            retry_min_secs: 1,
            retry_max_secs: 60,
            epoch_refresh_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Prometheus `/metrics` listener; None disables it.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LoggingConfig {
    /// Call records (JSON lines, pseudonymous codes only); default `<data_dir>/gateway/calls.jsonl`.
    pub call_records: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// New calls beyond this get 503 (RFC 3261 §21.5.4) with Retry-After.
    pub max_calls: usize,
    /// Seconds a graceful shutdown waits for calls to end before finalising them.
    pub shutdown_grace_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_calls: 1000,
            shutdown_grace_secs: 5,
        }
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, GatewayError> {
        let text = std::fs::read_to_string(path).map_err(|source| GatewayError::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            GatewayError::ConfigParse { message, .. } => GatewayError::ConfigParse {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, GatewayError> {
        let config: Config = toml::from_str(text).map_err(|e| GatewayError::ConfigParse {
            path: None,
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks relations between settings that serde cannot.
    pub fn validate(&self) -> Result<(), GatewayError> {
        let bad = |setting: &'static str, reason: String| {
            Err(GatewayError::ConfigInvalid { setting, reason })
        };
        if self.sip.udp.is_empty() && self.sip.tcp.is_empty() {
            return bad(
                "sip.udp / sip.tcp",
                "no SIP listener configured; add at least one address".into(),
            );
        }
        let (lo, hi) = (self.media.port_min, self.media.port_max);
        if lo % 2 != 0 || lo < 1024 || hi <= lo || hi - lo < 3 {
            return bad(
                "media.port_min / media.port_max",
                format!(
                    "range {lo}-{hi} must start on an even port >= 1024 and hold at least two RTP/RTCP pairs"
                ),
            );
        }
        // A media socket must never be able to take a SIP listener's port (nor the other way
        // round, when the gateway restarts while calls of a former run hold media ports).
        // Only UDP competes with the UDP media sockets, and only on an address both can bind.
        let media = self.media.bind.to_canonical();
        let overlaps = |a: &SocketAddr| {
            let sip = a.ip().to_canonical();
            (sip == media || sip.is_unspecified() || media.is_unspecified())
                && (lo..=hi).contains(&a.port())
        };
        if let Some(a) = self.sip.udp.iter().find(|a| overlaps(a)) {
            return bad(
                "media.port_min / media.port_max",
                format!(
                    "the SIP listener {a} lies inside the media port range {lo}-{hi}; move the \
                     SIP port or the range so that they do not overlap"
                ),
            );
        }
        if self.media.coalesce_us > 5_000 {
            return bad(
                "media.coalesce_us",
                format!(
                    "{} µs would delay audio noticeably; use 0 to 5000 (a few hundred is typical)",
                    self.media.coalesce_us
                ),
            );
        }
        if self.media.realtime_priority > 99 {
            return bad(
                "media.realtime_priority",
                format!(
                    "{} is not a SCHED_FIFO priority; use 1 to 99 (10 is plenty: above every \
                     normal thread), or 0 for the normal scheduler",
                    self.media.realtime_priority
                ),
            );
        }
        if self.consent.consent_digit == self.consent.decline_digit {
            return bad(
                "consent.decline_digit",
                "must differ from consent.consent_digit".into(),
            );
        }
        for d in [self.consent.consent_digit, self.consent.decline_digit] {
            if !is_dtmf(d) {
                return bad(
                    "consent.consent_digit / decline_digit",
                    format!("'{d}' is not a DTMF key (0-9, *, #, A-D)"),
                );
            }
        }
        if self.consent.withdraw_code.is_empty() || !self.consent.withdraw_code.chars().all(is_dtmf)
        {
            return bad(
                "consent.withdraw_code",
                "must be one or more DTMF keys (0-9, *, #, A-D)".into(),
            );
        }
        if self.recording.retention_days == 0 {
            return bad("recording.retention_days", "must be at least 1".into());
        }
        if !(100..=5000).contains(&self.recording.segment_ms) {
            return bad(
                "recording.segment_ms",
                "must be between 100 and 5000".into(),
            );
        }
        if self.escrow.mode == EscrowMode::Remote {
            if self.escrow.url.is_none() {
                return bad(
                    "escrow.url",
                    "escrow.mode = \"remote\" needs the escrow's https:// URL".into(),
                );
            }
            if self.escrow.identity.is_none()
                || self.escrow.ca_cert.is_none()
                || self.escrow.token_file.is_none()
            {
                return bad(
                    "escrow.identity / ca_cert / token_file",
                    "escrow.mode = \"remote\" needs the escrow's identity (identity.pub), its CA certificate and this gateway's token file".into(),
                );
            }
        }
        if self.escrow.retry_min_secs == 0
            || self.escrow.retry_max_secs < self.escrow.retry_min_secs
        {
            return bad(
                "escrow.retry_min_secs / retry_max_secs",
                "need 0 < retry_min_secs <= retry_max_secs".into(),
            );
        }
        if let Some(pbx) = &self.sip.pbx
            && !(pbx.starts_with("sip:") || pbx.starts_with("sips:"))
        {
            return bad("sip.pbx", format!("'{pbx}' is not a sip: or sips: URI"));
        }
        Ok(())
    }

    /// `<data_dir>/gateway`: pepper, signing key, outbox, call records.
    pub fn gateway_dir(&self) -> PathBuf {
        self.data_dir.join("gateway")
    }

    /// `<data_dir>/escrow`, owned by the escrow crate.
    pub fn escrow_dir(&self) -> PathBuf {
        self.data_dir.join("escrow")
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.recording
            .folder
            .clone()
            .unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    pub fn call_records_path(&self) -> PathBuf {
        self.logging
            .call_records
            .clone()
            .unwrap_or_else(|| self.gateway_dir().join("calls.jsonl"))
    }

    pub fn digit_timeout(&self) -> Duration {
        Duration::from_secs(self.consent.digit_timeout_secs)
    }
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A' | 'B' | 'C' | 'D')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(
            c.sip.udp,
            vec!["127.0.0.1:5060".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(c.recording.retention_days, 30);
        assert_eq!(c.data_dir, PathBuf::from("./callseal-data"));
        assert_eq!(c.escrow.mode, EscrowMode::InProcess);
    }

    #[test]
    fn example_config_parses_and_sets_every_section() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/callseal.example.toml"
        ));
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.sip.caller_identity, CallerIdentity::Pseudonym);
        assert_eq!(c.consent.withdraw_code, "*9");
        // Every top-level section of Config appears in the example, uncommented.
        let table: toml::Table = toml::from_str(text).unwrap();
        for section in [
            "sip",
            "media",
            "consent",
            "survey",
            "prompts",
            "recording",
            "escrow",
            "metrics",
            "logging",
            "limits",
        ] {
            assert!(table.contains_key(section), "example lacks [{section}]");
        }
    }

    #[test]
    fn unknown_setting_is_rejected_with_its_name() {
        let err = Config::from_toml("[sip]\nudpp = []\n").unwrap_err();
        assert!(err.to_string().contains("udpp"), "{err}");
    }

    #[test]
    fn odd_port_range_is_rejected() {
        let err = Config::from_toml("[media]\nport_min = 20001\nport_max = 20100\n").unwrap_err();
        assert!(
            matches!(err, GatewayError::ConfigInvalid { setting, .. } if setting.contains("port_min"))
        );
    }

    #[test]
    fn a_sip_port_inside_the_media_range_is_rejected() {
        let err = Config::from_toml(
            "[sip]\nudp = ['127.0.0.1:20010']\n[media]\nport_min = 20000\nport_max = 20100\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("127.0.0.1:20010 lies inside"), "{err}");
        // A wildcard on either side can collide too.
        let err = Config::from_toml(
            "[sip]\nudp = ['0.0.0.0:20010']\n[media]\nport_min = 20000\nport_max = 20100\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lies inside"), "{err}");
        for fine in [
            // Outside the range.
            "[sip]\nudp = ['127.0.0.1:20102']\n[media]\nport_min = 20000\nport_max = 20100\n",
            // TCP never competes with UDP media sockets.
            "[sip]\nudp = ['127.0.0.1:5060']\ntcp = ['127.0.0.1:20010']\n[media]\nport_min = 20000\nport_max = 20100\n",
            // Another address than the media sockets bind to.
            "[sip]\nudp = ['127.0.0.2:20010']\n[media]\nport_min = 20000\nport_max = 20100\n",
        ] {
            Config::from_toml(fine).unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }

    #[test]
    fn same_digit_for_yes_and_no_is_rejected() {
        let err = Config::from_toml("[consent]\nconsent_digit = '2'\n").unwrap_err();
        assert!(matches!(
            err,
            GatewayError::ConfigInvalid {
                setting: "consent.decline_digit",
                ..
            }
        ));
    }

    #[test]
    fn remote_escrow_needs_identity_ca_and_token() {
        let err = Config::from_toml("[escrow]\nmode = 'remote'\nurl = 'https://127.0.0.1:7443'\n")
            .unwrap_err();
        assert!(err.to_string().contains("identity"), "{err}");
    }

    #[test]
    fn remote_escrow_needs_a_url() {
        let err = Config::from_toml("[escrow]\nmode = 'remote'\n").unwrap_err();
        assert!(matches!(
            err,
            GatewayError::ConfigInvalid {
                setting: "escrow.url",
                ..
            }
        ));
    }

    #[test]
    fn pbx_must_be_a_sip_uri() {
        let err = Config::from_toml("[sip]\npbx = '127.0.0.1:5070'\n").unwrap_err();
        assert!(matches!(
            err,
            GatewayError::ConfigInvalid {
                setting: "sip.pbx",
                ..
            }
        ));
        let ok = Config::from_toml("[sip]\npbx = 'sip:pbx@127.0.0.1:5070'\n").unwrap();
        assert_eq!(ok.sip.pbx.as_deref(), Some("sip:pbx@127.0.0.1:5070"));
    }
}
