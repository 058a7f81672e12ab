//! What the commands need from the escrow, as the CLI shows it.
//!
//! The commands are written against [`Escrow`] and these views (which are also the `--json`
//! schema, documented in docs/cli.md); `remote.rs` implements it over the escrow crate's typed
//! HTTPS client. Times are Unix milliseconds in JSON and UTC dates in tables.

use serde::Serialize;

use crate::args::{Role, Status};
use crate::error::CliError;

/// A recording as the escrow knows it (metadata only; never a key).
#[derive(Debug, Clone, Serialize)]
pub struct RecordingView {
    pub id: String,
    pub status: Status,
    pub caller_code: String,
    pub line: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    /// The retention epoch (UTC day number of its last day).
    pub epoch: u32,
    /// When the key is (or was) shredded at the latest, Unix ms.
    pub shred_at_ms: Option<i64>,
    pub held: bool,
    pub consent: Option<ConsentView>,
    /// When the key was shredded or the recording erased, Unix ms.
    pub destroyed_at_ms: Option<i64>,
    pub gateway: Option<String>,
}

/// The consent evidence deposited with a recording.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentView {
    pub decision: String,
    pub digit: Option<String>,
    pub decided_at_ms: Option<i64>,
    pub prompt_sha256: Option<String>,
    pub signed_by: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    pub caller_code: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub line: Option<String>,
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub name: String,
    pub role: Role,
    /// active, pending_agreement or disabled.
    pub status: String,
    pub created_at_ms: Option<i64>,
    pub acknowledged_at_ms: Option<i64>,
    pub token_expires_at_ms: Option<i64>,
}

/// What enrolling an operator returns; the token is shown once and never stored by the CLI.
pub struct Enrolment {
    pub operator: OperatorView,
    pub token: crate::secrets::Token,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementView {
    pub text: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetentionView {
    pub default_days: u32,
    pub lines: Vec<LineRetention>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineRetention {
    pub line: String,
    pub days: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochView {
    pub id: u32,
    /// upcoming, active, pending_shred or shredded.
    pub state: String,
    pub shred_at_ms: Option<i64>,
    pub shredded_at_ms: Option<i64>,
    pub recordings: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntryView {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub purpose: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditVerifyView {
    pub ok: bool,
    pub entries: u64,
    pub head: Option<String>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceiptView {
    pub id: String,
    /// What was destroyed: `epoch 20480` or `recording <id>`.
    pub subject: String,
    pub reason: String,
    pub destroyed_at_ms: i64,
    pub recordings: Option<u64>,
    pub signature: String,
    pub signature_valid: Option<bool>,
}

/// The escrow operations the CLI uses. Every method maps escrow errors to [`CliError`].
#[allow(async_fn_in_trait)]
pub trait Escrow {
    async fn recordings(&self, filter: &RecordingFilter) -> Result<Vec<RecordingView>, CliError>;
    async fn recording(&self, id: &str) -> Result<RecordingView, CliError>;
    /// The recording's data key re-wrapped to `operator_public` (the escrow audits first).
    async fn release_key(
        &self,
        id: &str,
        purpose: &str,
        operator_public: &callseal_recording::keys::PublicKey,
    ) -> Result<callseal_recording::keys::WrappedKey, CliError>;
    async fn erase(&self, id: &str, reason: &str) -> Result<(), CliError>;
    async fn hold(&self, id: &str, reason: &str) -> Result<(), CliError>;
    async fn release_hold(&self, id: &str) -> Result<(), CliError>;
    async fn operators(&self) -> Result<Vec<OperatorView>, CliError>;
    async fn add_operator(
        &self,
        name: &str,
        role: Role,
        public_key: Option<&str>,
    ) -> Result<Enrolment, CliError>;
    async fn disable_operator(&self, name: &str) -> Result<(), CliError>;
    async fn agreement(&self) -> Result<AgreementView, CliError>;
    async fn acknowledge(&self, sha256: &str) -> Result<(), CliError>;
    async fn retention(&self) -> Result<RetentionView, CliError>;
    async fn set_retention(&self, days: u32, line: Option<&str>)
    -> Result<RetentionView, CliError>;
    async fn epochs(&self) -> Result<Vec<EpochView>, CliError>;
    async fn audit(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntryView>, CliError>;
    async fn verify_audit(&self) -> Result<AuditVerifyView, CliError>;
    async fn receipts(&self, id: Option<&str>) -> Result<Vec<ReceiptView>, CliError>;
}
