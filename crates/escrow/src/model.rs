//! The escrow's request and answer types: what the service takes and returns, and exactly what
//! travels as JSON over the HTTPS API. Times are [`Timestamp`]s (Unix milliseconds).

use callseal_recording::keys::{EpochId, PublicKey, RecordingId, WrappedKey};
use serde::{Deserialize, Serialize};

use crate::ids::{CallerCode, GatewayId, LineId, OperatorId, Role, Timestamp};
use crate::wire;

/// The consent evidence a gateway deposits with a recording (only consenting callers are
/// recorded, so the decision is implied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentEvidence {
    /// The DTMF digit the caller pressed (`0`-`9`, `*`, `#`), if consent was given by DTMF.
    pub digit: Option<char>,
    /// When the caller consented.
    pub decided_at: Timestamp,
    /// SHA-256 (64 lowercase hex digits) of the consent prompt audio that was played.
    pub prompt_sha256: String,
    /// The gateway's Ed25519 public key (64 hex digits) that signed this evidence. The escrow
    /// pins the first key a gateway account uses and refuses any other afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_key: Option<String>,
    /// Ed25519 signature (128 hex digits) over [`ConsentEvidence::signed_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ConsentEvidence {
    /// The bytes a gateway signs:
    /// `callseal-consent-v1|<recording id>|<digit or ->|<decided_at ms>|<prompt_sha256>`.
    pub fn signed_message(&self, recording: &RecordingId) -> Vec<u8> {
        let digit = self.digit.map_or_else(|| "-".to_owned(), |d| d.to_string());
        format!(
            "callseal-consent-v1|{recording}|{digit}|{}|{}",
            self.decided_at.unix_ms(),
            self.prompt_sha256
        )
        .into_bytes()
    }
}

/// A gateway's deposit of one recording's wrapped data key and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deposit {
    /// The recording id (32 lowercase hex digits on the wire).
    #[serde(with = "wire::recording_id")]
    pub recording: RecordingId,
    /// The epoch the key is wrapped to.
    #[serde(with = "wire::epoch_id")]
    pub epoch: EpochId,
    /// The data key wrapped to the epoch's public key (hex on the wire).
    #[serde(with = "wire::wrapped_key")]
    pub wrapped_key: WrappedKey,
    /// The caller's pseudonymous code.
    pub caller_code: CallerCode,
    /// The hospital line called.
    pub line: LineId,
    /// The depositing gateway (must be the gateway account's own id).
    pub gateway: GatewayId,
    /// Call start.
    pub started_at: Timestamp,
    /// Call end; `None` while the call is still running (a gateway may deposit at recording
    /// start and deposit again with the end time; see [`DepositOutcome::Updated`]).
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    /// How consent was given.
    pub consent: ConsentEvidence,
}

/// What a deposit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositOutcome {
    /// Newly stored.
    Stored,
    /// An earlier deposit without an end time was completed with this one's `ended_at`.
    Updated,
    /// The same deposit was already stored (idempotent retry).
    AlreadyStored,
    /// The recording had been erased before its deposit arrived; the key was discarded.
    Discarded,
}

/// Status of a recording as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// Key held, releasable.
    Sealed,
    /// Under legal hold (survives its epoch's shred).
    Held,
    /// Its epoch is pending destruction: unusable, an admin may still cancel.
    PendingShred,
    /// Its key was destroyed by retention.
    Shredded,
    /// Erased on request.
    Erased,
}

impl RecordingStatus {
    /// Parses the snake_case form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sealed" => RecordingStatus::Sealed,
            "held" => RecordingStatus::Held,
            "pending_shred" => RecordingStatus::PendingShred,
            "shredded" => RecordingStatus::Shredded,
            "erased" => RecordingStatus::Erased,
            _ => return None,
        })
    }
}

/// One recording's metadata (never a key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// Recording id.
    #[serde(with = "wire::recording_id")]
    pub id: RecordingId,
    /// Status.
    pub status: RecordingStatus,
    /// Pseudonymous caller code.
    pub caller_code: String,
    /// Hospital line.
    pub line: String,
    /// Depositing gateway.
    pub gateway: String,
    /// Call start.
    pub started_at: Timestamp,
    /// Call end (`None` while running or if the gateway never reported it).
    pub ended_at: Option<Timestamp>,
    /// When the escrow received the deposit.
    pub deposited_at: Timestamp,
    /// Retention epoch.
    pub epoch: u32,
    /// When retention ends (the epoch's shred time).
    pub shred_after: Timestamp,
    /// Consent evidence as deposited.
    pub consent: Option<ConsentEvidence>,
    /// Hold or erasure reason.
    pub reason: Option<String>,
    /// When the key was destroyed (shredded or erased).
    pub destroyed_at: Option<Timestamp>,
}

/// Filter for listing recordings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFilter {
    /// Caller code.
    pub caller_code: Option<CallerCode>,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// Line.
    pub line: Option<LineId>,
    /// Status.
    pub status: Option<RecordingStatus>,
    /// Epoch.
    pub epoch: Option<u32>,
    /// At most this many (default and maximum 10 000).
    pub limit: Option<u32>,
}

/// State of an epoch as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochState {
    /// Created ahead of need; no recording wrapped to it yet.
    Upcoming,
    /// Holds recordings; retention not over.
    Active,
    /// Retention over; keys unusable; destruction follows (an admin may cancel).
    PendingShred,
    /// Destroyed.
    Shredded,
}

/// One epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInfo {
    /// Epoch id (UTC day number of its last day).
    pub epoch: u32,
    /// State.
    pub state: EpochState,
    /// When retention ends.
    pub shred_after: Timestamp,
    /// When it entered pending destruction.
    pub pending_since: Option<Timestamp>,
    /// When it was destroyed.
    pub destroyed_at: Option<Timestamp>,
    /// Recordings wrapped to it.
    pub recordings: u64,
}

/// Account status of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorStatus {
    /// May act within their role.
    Active,
    /// Has not acknowledged the confidentiality agreement yet.
    PendingAgreement,
    /// Disabled by an admin.
    Disabled,
}

impl OperatorStatus {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorStatus::Active => "active",
            OperatorStatus::PendingAgreement => "pending_agreement",
            OperatorStatus::Disabled => "disabled",
        }
    }
}

/// One operator account (public data only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInfo {
    /// Account id.
    pub id: OperatorId,
    /// Role.
    pub role: Role,
    /// Status.
    pub status: OperatorStatus,
    /// Enrolled X25519 public key (hex), if any.
    pub public_key: Option<String>,
    /// When created.
    pub created_at: Timestamp,
    /// When the agreement was acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// Latest expiry among the operator's tokens.
    pub token_expires_at: Option<Timestamp>,
}

/// A request to enrol an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    /// Account id.
    pub id: OperatorId,
    /// Role.
    pub role: Role,
    /// X25519 public key (needed for key releases), 64 hex digits.
    #[serde(default, with = "opt_public_key")]
    pub public_key: Option<PublicKey>,
}

mod opt_public_key {
    use super::*;
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<PublicKey>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => s.collect_str(k),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PublicKey>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The answer to an enrolment: the account and its token, shown once.
#[derive(Serialize, Deserialize)]
pub struct Enrolled {
    /// The new account.
    pub operator: OperatorInfo,
    /// The bearer token text (`cs1_…`); the escrow keeps only its hash.
    pub token: String,
}

/// The confidentiality agreement operators acknowledge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Full text.
    pub text: String,
    /// SHA-256 of the text, 64 lowercase hex digits (what the acknowledgement records).
    pub sha256: String,
}

/// Retention policy: a default and overrides per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Days for lines without an override.
    pub default_days: u32,
    /// Per-line overrides.
    pub lines: Vec<LineRetention>,
}

/// Retention of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRetention {
    /// The line.
    pub line: LineId,
    /// Days.
    pub days: u32,
}

impl RetentionPolicy {
    /// Days for `line` (its override, else the default).
    pub fn days_for(&self, line: Option<&LineId>) -> u32 {
        line.and_then(|l| self.lines.iter().find(|r| &r.line == l))
            .map_or(self.default_days, |r| r.days)
    }
}

/// One audit entry (exactly the signed body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Who (operator id, `escrow` for the scheduler, `unknown` for an unknown token).
    pub actor: String,
    /// What (`key_release`, `shred_begin`, `erase`, …).
    pub action: String,
    /// On what (`recording <id>`, `epoch <n>`, `operator <id>`), if anything.
    pub target: Option<String>,
    /// The stated purpose or reason.
    pub purpose: Option<String>,
    /// `granted`, `done`, or `denied: <code>`.
    pub outcome: String,
    /// Hash of the previous entry (64 hex digits; zeros for the first).
    pub prev: String,
}

/// Result of verifying the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Whether every entry verified.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// Hash of the last verified entry (hex).
    pub head: Option<String>,
    /// The first problem found.
    pub problem: Option<String>,
}

/// A signed destruction receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Receipt number.
    pub seq: u64,
    /// The signed body (JSON text of [`ReceiptBody`]).
    pub body: String,
    /// Ed25519 signature over `callseal/receipt/v1\0` ‖ body, hex.
    pub signature: String,
    /// Whether the escrow verified the signature with its identity key when answering.
    pub signature_valid: bool,
}

/// What a receipt states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// Receipt number.
    pub seq: u64,
    /// `epoch <n>` or `recording <id>`.
    pub subject: String,
    /// `retention`, `erasure: <reason>`, `hold released after retention`.
    pub reason: String,
    /// When the keys were destroyed.
    pub destroyed_at: Timestamp,
    /// Wrapped keys destroyed.
    pub keys_destroyed: u64,
    /// The identity key that signed (hex).
    pub escrow_key: String,
}

impl Receipt {
    /// Parses the body.
    pub fn parsed(&self) -> Result<ReceiptBody, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// Health of the escrow (`/health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` when the clock is untrusted.
    pub status: String,
    /// Whether the wall clock is trusted for shredding.
    pub clock_trusted: bool,
    /// Alert text when it is not.
    pub alert: Option<String>,
    /// The escrow's identity public key (hex).
    pub identity: String,
    /// Epochs pending destruction.
    pub pending_epochs: u64,
}

/// Who the caller is (`/v1/whoami`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// Operator id.
    pub id: OperatorId,
    /// Role.
    pub role: Role,
    /// Status.
    pub status: OperatorStatus,
    /// Token expiry.
    pub token_expires_at: Timestamp,
}

/// A key release request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Why.
    pub purpose: String,
    /// The operator's own X25519 public key; must equal the enrolled one.
    #[serde(with = "wire::public_key")]
    pub operator_key: PublicKey,
}

/// A released key: the data key re-wrapped to the operator's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The wrapped key (recipient kind: operator).
    #[serde(with = "wire::wrapped_key")]
    pub wrapped_key: WrappedKey,
    /// The audit entry recording the release.
    pub audit_seq: u64,
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The error.
    pub error: ApiError,
}

/// A stable error code, a message and structured details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code (`key_shredded`, …).
    pub code: crate::ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// Fields of the error (ids, dates, limits), for clients that build their own message.
    #[serde(default)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}
