//! Errors of the escrow and their stable wire codes.
//!
//! One enum for the whole crate; every variant maps to exactly one [`ErrorCode`], which maps to
//! exactly one HTTP status. Messages say what happened and what to do, and never contain key
//! material, tokens or caller numbers.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes shared by the service, the HTTP API and the client.
///
/// The string forms (`key_shredded`, …) are part of the API contract: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No bearer token, or a token the escrow does not know.
    Unauthenticated,
    /// The token was valid once but has expired.
    TokenExpired,
    /// The operator's role may not perform this action.
    Forbidden,
    /// The operator has not acknowledged the confidentiality agreement, or was disabled.
    OperatorInactive,
    /// A key release was asked for without a purpose.
    PurposeRequired,
    /// The stated purpose is longer than allowed or contains control characters.
    PurposeTooLong,
    /// A request field is malformed (ids, lengths, encodings).
    InvalidInput,
    /// A retention period outside the allowed range.
    InvalidRetention,
    /// The recording id is not known to the escrow.
    UnknownRecording,
    /// The operator id is not known.
    UnknownOperator,
    /// The epoch id is not (or no longer) offered by the escrow.
    UnknownEpoch,
    /// The recording's key was destroyed by retention or erasure; nobody can recover it.
    KeyShredded,
    /// The epoch is pending destruction: its keys are unusable until an admin cancels.
    ShredPending,
    /// The recording was erased (consent withdrawn or deletion request).
    Erased,
    /// The action conflicts with a legal hold on the recording.
    LegalHold,
    /// The recording is not under legal hold.
    NotHeld,
    /// A deposit reused a recording id with different content.
    DepositConflict,
    /// The object already exists (e.g. operator id).
    AlreadyExists,
    /// The acknowledgement does not match the current confidentiality agreement.
    AgreementMismatch,
    /// The audit log could not be written; the request was refused (fail closed).
    AuditUnavailable,
    /// The wall clock is not trusted; an operator must confirm it before shredding resumes.
    ClockUntrusted,
    /// The request body is larger than the API accepts.
    PayloadTooLarge,
    /// The escrow could not be reached (client side only).
    Unavailable,
    /// Storage failed; the request had no effect.
    Storage,
    /// An internal invariant failed; the request had no effect.
    Internal,
}

impl ErrorCode {
    /// All codes, for documentation tests and exhaustive matrices.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::Unauthenticated,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::OperatorInactive,
        ErrorCode::PurposeRequired,
        ErrorCode::PurposeTooLong,
        ErrorCode::InvalidInput,
        ErrorCode::InvalidRetention,
        ErrorCode::UnknownRecording,
        ErrorCode::UnknownOperator,
        ErrorCode::UnknownEpoch,
        ErrorCode::KeyShredded,
        ErrorCode::ShredPending,
        ErrorCode::Erased,
        ErrorCode::LegalHold,
        ErrorCode::NotHeld,
        ErrorCode::DepositConflict,
        ErrorCode::AlreadyExists,
        ErrorCode::AgreementMismatch,
        ErrorCode::AuditUnavailable,
        ErrorCode::ClockUntrusted,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Storage,
        ErrorCode::Internal,
    ];

    /// The stable string form used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::OperatorInactive => "operator_inactive",
            ErrorCode::PurposeRequired => "purpose_required",
            ErrorCode::PurposeTooLong => "purpose_too_long",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InvalidRetention => "invalid_retention",
            ErrorCode::UnknownRecording => "unknown_recording",
            ErrorCode::UnknownOperator => "unknown_operator",
            ErrorCode::UnknownEpoch => "unknown_epoch",
            ErrorCode::KeyShredded => "key_shredded",
            ErrorCode::ShredPending => "shred_pending",
            ErrorCode::Erased => "erased",
            ErrorCode::LegalHold => "legal_hold",
            ErrorCode::NotHeld => "not_held",
            ErrorCode::DepositConflict => "deposit_conflict",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::AgreementMismatch => "agreement_mismatch",
            ErrorCode::AuditUnavailable => "audit_unavailable",
            ErrorCode::ClockUntrusted => "clock_untrusted",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Storage => "storage",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the API answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated | ErrorCode::TokenExpired => 401,
            ErrorCode::Forbidden | ErrorCode::OperatorInactive => 403,
            ErrorCode::PurposeRequired
            | ErrorCode::PurposeTooLong
            | ErrorCode::InvalidInput
            | ErrorCode::InvalidRetention
            | ErrorCode::AgreementMismatch => 400,
            ErrorCode::UnknownRecording | ErrorCode::UnknownOperator | ErrorCode::UnknownEpoch => {
                404
            }
            ErrorCode::KeyShredded | ErrorCode::Erased => 410,
            ErrorCode::ShredPending
            | ErrorCode::LegalHold
            | ErrorCode::NotHeld
            | ErrorCode::DepositConflict
            | ErrorCode::AlreadyExists => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::AuditUnavailable | ErrorCode::ClockUntrusted | ErrorCode::Unavailable => 503,
            ErrorCode::Storage | ErrorCode::Internal => 500,
        }
    }

    /// Whether a client may retry the same request later with a chance of success.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::AuditUnavailable
                | ErrorCode::ClockUntrusted
                | ErrorCode::Unavailable
                | ErrorCode::Storage
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}

/// Everything that can go wrong inside the escrow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EscrowError {
    #[error("no valid bearer token was presented; log in again or ask an admin for a token")]
    Unauthenticated,
    #[error("the token of operator {operator} expired; ask an admin for a new token")]
    TokenExpired { operator: String },
    #[error("operator {operator} (role {role}) may not {action}; that needs the {needed} role")]
    Forbidden {
        operator: String,
        role: String,
        action: &'static str,
        needed: String,
    },
    #[error(
        "operator {operator} is {status}; acknowledge the confidentiality agreement or ask an admin"
    )]
    OperatorInactive {
        operator: String,
        status: &'static str,
    },
    #[error("a key release needs a purpose; state why you need to listen")]
    PurposeRequired,
    #[error("the purpose is {len} characters (at most {max}, no control characters); shorten it")]
    PurposeTooLong { len: usize, max: usize },
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("retention of {days} days is outside the allowed range {min}..={max} days")]
    InvalidRetention { days: i64, min: u32, max: u32 },
    #[error("recording {id} is not known to the escrow; check the id")]
    UnknownRecording { id: String },
    #[error("operator {id} is not known; list operators to check the id")]
    UnknownOperator { id: String },
    #[error("epoch {epoch} is not offered by the escrow; refresh the epoch table")]
    UnknownEpoch { epoch: u32 },
    #[error("the key of recording {id} was shredded on {at}; it can never be recovered")]
    KeyShredded {
        id: String,
        at: crate::ids::Timestamp,
    },
    #[error(
        "epoch {epoch} was destroyed on {at}; its keys can never be recovered, so there is no shred left to cancel"
    )]
    EpochDestroyed {
        epoch: u32,
        at: crate::ids::Timestamp,
    },
    #[error(
        "epoch {epoch} is pending destruction; its keys are unusable unless an admin cancels the shred"
    )]
    ShredPending { epoch: u32 },
    #[error("recording {id} was erased; it can never be released")]
    Erased {
        id: String,
        at: Option<crate::ids::Timestamp>,
    },
    #[error("recording {id} is under legal hold; release the hold first")]
    LegalHold { id: String },
    #[error("recording {id} is not under legal hold")]
    NotHeld { id: String },
    #[error(
        "recording {id} was already deposited with different content; the gateway must not reuse ids"
    )]
    DepositConflict { id: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error(
        "the acknowledged agreement hash does not match the current confidentiality agreement; read it again and acknowledge the current text"
    )]
    AgreementMismatch,
    #[error("the audit log could not be written, so the request was refused: {reason}")]
    AuditUnavailable { reason: String },
    #[error(
        "the wall clock is {ahead_ms} ms ahead of monotonic time; shredding is suspended until an admin confirms the clock"
    )]
    ClockUntrusted { ahead_ms: i64 },
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("storage failed ({context}): {source}")]
    Storage {
        context: &'static str,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("key file {path} could not be used: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "cryptographic operation failed: {what}; the stored data may be corrupt or from another escrow"
    )]
    Crypto { what: &'static str },
    #[error("simulated crash at {point:?}")]
    InjectedCrash { point: crate::service::CrashPoint },
    #[error("internal error: {what}")]
    Internal { what: String },
}

impl EscrowError {
    /// The stable wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            EscrowError::Unauthenticated => ErrorCode::Unauthenticated,
            EscrowError::TokenExpired { .. } => ErrorCode::TokenExpired,
            EscrowError::Forbidden { .. } => ErrorCode::Forbidden,
            EscrowError::OperatorInactive { .. } => ErrorCode::OperatorInactive,
            EscrowError::PurposeRequired => ErrorCode::PurposeRequired,
            EscrowError::PurposeTooLong { .. } => ErrorCode::PurposeTooLong,
            EscrowError::InvalidInput { .. } => ErrorCode::InvalidInput,
            EscrowError::InvalidRetention { .. } => ErrorCode::InvalidRetention,
            EscrowError::UnknownRecording { .. } => ErrorCode::UnknownRecording,
            EscrowError::UnknownOperator { .. } => ErrorCode::UnknownOperator,
            EscrowError::UnknownEpoch { .. } => ErrorCode::UnknownEpoch,
            EscrowError::KeyShredded { .. } | EscrowError::EpochDestroyed { .. } => {
                ErrorCode::KeyShredded
            }
            EscrowError::ShredPending { .. } => ErrorCode::ShredPending,
            EscrowError::Erased { .. } => ErrorCode::Erased,
            EscrowError::LegalHold { .. } => ErrorCode::LegalHold,
            EscrowError::NotHeld { .. } => ErrorCode::NotHeld,
            EscrowError::DepositConflict { .. } => ErrorCode::DepositConflict,
            EscrowError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            EscrowError::AgreementMismatch => ErrorCode::AgreementMismatch,
            EscrowError::AuditUnavailable { .. } => ErrorCode::AuditUnavailable,
            EscrowError::ClockUntrusted { .. } => ErrorCode::ClockUntrusted,
            EscrowError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            EscrowError::Storage { .. } => ErrorCode::Storage,
            EscrowError::KeyFile { .. }
            | EscrowError::Crypto { .. }
            | EscrowError::InjectedCrash { .. }
            | EscrowError::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// Structured fields of the error for API clients (never secrets).
    pub fn detail(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let v = match self {
            EscrowError::TokenExpired { operator } => json!({ "operator": operator }),
            EscrowError::Forbidden {
                operator,
                role,
                action,
                needed,
            } => {
                json!({ "operator": operator, "role": role, "action": action, "needed": needed })
            }
            EscrowError::OperatorInactive { operator, status } => {
                json!({ "operator": operator, "status": status })
            }
            EscrowError::PurposeTooLong { len, max } => json!({ "len": len, "max": max }),
            EscrowError::InvalidInput { field, reason } => {
                json!({ "field": field, "reason": reason })
            }
            EscrowError::InvalidRetention { days, min, max } => {
                json!({ "days": days, "min": min, "max": max })
            }
            EscrowError::UnknownRecording { id }
            | EscrowError::LegalHold { id }
            | EscrowError::NotHeld { id }
            | EscrowError::DepositConflict { id } => json!({ "id": id }),
            EscrowError::UnknownOperator { id } => json!({ "id": id }),
            EscrowError::UnknownEpoch { epoch } | EscrowError::ShredPending { epoch } => {
                json!({ "epoch": epoch })
            }
            EscrowError::KeyShredded { id, at } => {
                json!({ "id": id, "at": at, "date": at.to_string() })
            }
            // `id` names the epoch too, for clients that read the id of every `key_shredded`.
            EscrowError::EpochDestroyed { epoch, at } => json!({
                "epoch": epoch,
                "id": format!("epoch {epoch}"),
                "at": at,
                "date": at.to_string(),
            }),
            EscrowError::Erased { id, at } => {
                json!({ "id": id, "at": at, "date": at.map(|t| t.to_string()) })
            }
            EscrowError::AlreadyExists { what } => json!({ "what": what }),
            EscrowError::ClockUntrusted { ahead_ms } => json!({ "ahead_ms": ahead_ms }),
            EscrowError::PayloadTooLarge { limit } => json!({ "limit": limit }),
            _ => json!({}),
        };
        match v {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// The API form: code, message, detail. Internal details (paths, storage errors) are not
    /// sent to clients; the escrow logs them.
    pub fn to_api(&self) -> crate::model::ApiError {
        let code = self.code();
        let message = match code {
            ErrorCode::Storage => {
                "the escrow's storage failed; the request had no effect; retry later".to_owned()
            }
            ErrorCode::Internal => {
                "internal error in the escrow; the request had no effect; see the escrow's log"
                    .to_owned()
            }
            _ => self.to_string(),
        };
        crate::model::ApiError {
            code,
            message,
            detail: self.detail(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        EscrowError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn storage(context: &'static str) -> impl FnOnce(crate::store::StoreError) -> Self {
        move |source| EscrowError::Storage { context, source }
    }
}
