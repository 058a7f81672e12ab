//! The storage boundary: rows in, rows out, inside transactions.
//!
//! Storage never sees a plaintext secret: epoch secrets and wrapped keys arrive sealed under the
//! keyring's table key. The trait is shaped after what a relational backend can do atomically,
//! so a PostgreSQL backend can implement it with one `BEGIN … COMMIT` per [`Tx`] (see
//! `docs/escrow.md`, "Storage backends").

mod sqlite;

pub use sqlite::SqliteStore;

use crate::ids::Timestamp;
use crate::keyring::RowSlot;
use crate::retention::EpochPhase;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite library reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value does not have the expected shape.
    #[error("stored data is corrupt: {what}")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
    /// The database schema is newer than this build.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); upgrade callseal"
    )]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database file could not be created with private permissions.
    #[error(
        "cannot create the database file {path} (mode 0600): {source}; check the folder's permissions and free space"
    )]
    Create {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database refused write-ahead logging (e.g. on a network file system).
    #[error(
        "the database would not switch to WAL mode (it reports {mode:?}); keep the data folder on a local file system"
    )]
    NotWal {
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// A visitor aborted a bulk operation (its own error is reported by the caller).
    #[error("bulk operation aborted")]
    Aborted,
    /// A simulated failure (tests of fail-closed behaviour).
    #[error("injected storage failure: {what}")]
    Injected {
        /// Which operation failed.
        what: &'static str,
    },
}

/// One epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRow {
    pub epoch: u32,
    pub public_key: [u8; 32],
    /// The epoch secret sealed under the table key; `None` once destroyed.
    pub secret: Option<Vec<u8>>,
    pub phase: EpochPhase,
    pub created_at: Timestamp,
    pub shred_after: Timestamp,
    pub pending_since: Option<Timestamp>,
    pub deferred_until: Option<Timestamp>,
    pub destroyed_at: Option<Timestamp>,
}

/// Lifecycle of one recording independent of its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Follows its epoch.
    Active,
    /// Under legal hold: survives its epoch's shred.
    Held,
    /// Erased (or a tombstone for an id erased before its deposit arrived).
    Erased,
    /// Held past its retention and then released: shredded.
    Shredded,
}

impl RecordingState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecordingState::Active => "active",
            RecordingState::Held => "held",
            RecordingState::Erased => "erased",
            RecordingState::Shredded => "shredded",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(RecordingState::Active),
            "held" => Some(RecordingState::Held),
            "erased" => Some(RecordingState::Erased),
            "shredded" => Some(RecordingState::Shredded),
            _ => None,
        }
    }
}

/// One recording's metadata (its keys live in separate key rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub id: [u8; 16],
    pub epoch: u32,
    pub line: String,
    pub caller_code: String,
    pub gateway: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// JSON of the gateway-signed consent evidence.
    pub consent: Vec<u8>,
    /// SHA-256 over the canonical deposit, for idempotency checks.
    pub digest: [u8; 32],
    pub deposited_at: Timestamp,
    pub state: RecordingState,
    /// Erasure or hold reason.
    pub reason: Option<String>,
    pub destroyed_at: Option<Timestamp>,
}

/// Which copy of a recording's wrapped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// As deposited, wrapped to the epoch key.
    Epoch,
    /// Re-wrapped to the legal-hold key.
    Hold,
}

impl KeyKind {
    pub(crate) fn code(self) -> i64 {
        match self {
            KeyKind::Epoch => 0,
            KeyKind::Hold => 1,
        }
    }
    pub(crate) fn slot(self, id: [u8; 16]) -> RowSlot {
        match self {
            KeyKind::Epoch => RowSlot::RecordingKey(id),
            KeyKind::Hold => RowSlot::HoldKey(id),
        }
    }
}

/// Filter for listing recordings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingQuery {
    pub epoch: Option<u32>,
    pub caller_code: Option<String>,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    pub line: Option<String>,
    pub state: Option<RecordingState>,
    /// Return ids strictly greater than this (keyset pagination).
    pub after: Option<[u8; 16]>,
    pub limit: u32,
}

/// One operator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub id: String,
    pub role: String,
    pub x25519: Option<[u8; 32]>,
    pub signing_key: Option<[u8; 32]>,
    pub ack_hash: Option<[u8; 32]>,
    pub ack_at: Option<Timestamp>,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// One bearer token (hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub hash: [u8; 32],
    pub operator: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: u64,
    pub body: Vec<u8>,
    pub hash: [u8; 32],
    pub signature: [u8; 64],
}

/// One destruction receipt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    pub seq: u64,
    pub body: Vec<u8>,
    pub signature: [u8; 64],
}

/// Re-seals one sealed value for its row slot; `None` aborts the bulk operation.
pub type ResealVisitor<'a> = dyn FnMut(&RowSlot, &[u8]) -> Option<Vec<u8>> + 'a;

/// Result alias of storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A storage backend.
pub trait Storage: Send {
    /// Starts a transaction; dropping it without [`Tx::commit`] rolls back.
    fn begin(&mut self) -> StoreResult<Box<dyn Tx + '_>>;
    /// Forces deleted pages out of every log file (SQLite: `wal_checkpoint(TRUNCATE)`). Called
    /// after each shred so no freed page lingers in a write-ahead log.
    fn purge_logs(&mut self) -> StoreResult<()>;
}

/// One transaction. All writes of an operation (state, keys, audit, receipt) go through one.
pub trait Tx {
    /// Makes every write of this transaction durable.
    fn commit(self: Box<Self>) -> StoreResult<()>;

    fn meta_get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    fn meta_set(&mut self, key: &str, value: &[u8]) -> StoreResult<()>;
    fn meta_delete(&mut self, key: &str) -> StoreResult<()>;

    fn epoch_insert(&mut self, row: &EpochRow) -> StoreResult<()>;
    fn epoch_get(&mut self, epoch: u32) -> StoreResult<Option<EpochRow>>;
    fn epoch_update(&mut self, row: &EpochRow) -> StoreResult<()>;
    /// All epochs, oldest first; `include_destroyed` false skips destroyed ones.
    fn epochs(&mut self, include_destroyed: bool) -> StoreResult<Vec<EpochRow>>;

    fn recording_insert(&mut self, row: &RecordingRow) -> StoreResult<()>;
    fn recording_get(&mut self, id: &[u8; 16]) -> StoreResult<Option<RecordingRow>>;
    fn recording_update(&mut self, row: &RecordingRow) -> StoreResult<()>;
    fn recordings(&mut self, q: &RecordingQuery) -> StoreResult<Vec<RecordingRow>>;
    fn recordings_count(&mut self, epoch: u32) -> StoreResult<u64>;

    fn key_put(
        &mut self,
        id: &[u8; 16],
        kind: KeyKind,
        epoch: u32,
        sealed: &[u8],
    ) -> StoreResult<()>;
    fn key_get(&mut self, id: &[u8; 16], kind: KeyKind) -> StoreResult<Option<Vec<u8>>>;
    fn key_delete(&mut self, id: &[u8; 16], kind: KeyKind) -> StoreResult<bool>;
    /// Deletes every key row of `kind` in `epoch`; returns how many.
    fn keys_delete_epoch(&mut self, epoch: u32, kind: KeyKind) -> StoreResult<u64>;

    fn secret_get(&mut self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    fn secret_put(&mut self, name: &str, sealed: &[u8]) -> StoreResult<()>;

    /// Rewrites every sealed value (epoch secrets, key rows, named secrets) with the visitor's
    /// result; the visitor returns `None` to abort. Returns the number of rows rewritten.
    fn reseal_all(&mut self, visit: &mut ResealVisitor<'_>) -> StoreResult<u64>;

    fn operator_insert(&mut self, row: &OperatorRow) -> StoreResult<()>;
    fn operator_get(&mut self, id: &str) -> StoreResult<Option<OperatorRow>>;
    fn operator_update(&mut self, row: &OperatorRow) -> StoreResult<()>;
    fn operators(&mut self) -> StoreResult<Vec<OperatorRow>>;
    fn operator_count(&mut self) -> StoreResult<u64>;

    fn token_insert(&mut self, row: &TokenRow) -> StoreResult<()>;
    fn token_get(&mut self, hash: &[u8; 32]) -> StoreResult<Option<TokenRow>>;
    fn tokens_delete(&mut self, operator: &str) -> StoreResult<u64>;
    /// The latest expiry among an operator's tokens.
    fn token_latest_expiry(&mut self, operator: &str) -> StoreResult<Option<Timestamp>>;

    fn retention_get(&mut self, line: &str) -> StoreResult<Option<u32>>;
    fn retention_set(&mut self, line: &str, days: u32, at: Timestamp) -> StoreResult<()>;
    fn retention_list(&mut self) -> StoreResult<Vec<(String, u32)>>;

    fn audit_append(&mut self, row: &AuditRow) -> StoreResult<()>;
    fn audit_last(&mut self) -> StoreResult<Option<AuditRow>>;
    /// Entries with `seq >= from`, ascending, at most `limit`.
    fn audit_range(&mut self, from: u64, limit: u32) -> StoreResult<Vec<AuditRow>>;

    fn receipt_insert(&mut self, row: &ReceiptRow) -> StoreResult<()>;
    fn receipt_last_seq(&mut self) -> StoreResult<Option<u64>>;
    fn receipts(&mut self, from: u64, limit: u32) -> StoreResult<Vec<ReceiptRow>>;
    /// Number of audit entries.
    fn audit_count(&mut self) -> StoreResult<u64>;
}
