//! SQLite backend: WAL journal, `secure_delete=ON` (freed pages are zeroed), synchronous=FULL,
//! and `wal_checkpoint(TRUNCATE)` after each shred so no deleted page survives in the WAL.
//! Schema versions are tracked in `PRAGMA user_version` and applied in order at open.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    AuditRow, EpochRow, KeyKind, OperatorRow, ReceiptRow, RecordingQuery, RecordingRow,
    RecordingState, Storage, StoreError, StoreResult, TokenRow, Tx,
};
use crate::ids::Timestamp;
use crate::keyring::RowSlot;
use crate::retention::EpochPhase;

/// Schema migrations; entry `i` brings `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE epochs (
    epoch INTEGER PRIMARY KEY,
    public_key BLOB NOT NULL,
    secret BLOB,
    phase TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    shred_after INTEGER NOT NULL,
    pending_since INTEGER,
    deferred_until INTEGER,
    destroyed_at INTEGER
);
CREATE TABLE recordings (
    id BLOB PRIMARY KEY,
    epoch INTEGER NOT NULL,
    line TEXT NOT NULL,
    caller_code TEXT NOT NULL,
    gateway TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    consent BLOB NOT NULL,
    digest BLOB NOT NULL,
    deposited_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    destroyed_at INTEGER
) WITHOUT ROWID;
CREATE INDEX recordings_epoch ON recordings(epoch);
CREATE TABLE keys (
    id BLOB NOT NULL,
    kind INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (id, kind)
);
CREATE INDEX keys_epoch ON keys(epoch, kind);
CREATE TABLE secrets (name TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    x25519 BLOB,
    signing_key BLOB,
    ack_hash BLOB,
    ack_at INTEGER,
    disabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
    hash BLOB PRIMARY KEY,
    operator TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX tokens_operator ON tokens(operator);
CREATE TABLE retention (line TEXT PRIMARY KEY, days INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE audit (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, hash BLOB NOT NULL, signature BLOB NOT NULL);
CREATE TABLE receipts (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, signature BLOB NOT NULL);
"#];

/// The SQLite storage backend.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        // Create the file 0600 ourselves: SQLite would use the umask, and gives its -wal and
        // -shm files the database file's permissions.
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::Create {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        let conn = Connection::open(path)?;
        Self::configure(conn)
    }

    /// An in-memory database (tests, benchmarks of the logic alone).
    pub fn in_memory() -> StoreResult<Self> {
        Self::configure(Connection::open_in_memory()?)
    }

    fn configure(mut conn: Connection) -> StoreResult<Self> {
        // WAL for concurrent readers; FULL so a committed release/shred survives power loss;
        // secure_delete so deleted keys are overwritten in place, not left in free pages.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        // An in-memory database reports "memory"; a file that cannot do WAL must not be used,
        // as the checkpoint after a shred relies on it.
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(StoreError::NotWal { mode });
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(SqliteStore { conn })
    }
}

impl Storage for SqliteStore {
    fn begin(&mut self) -> StoreResult<Box<dyn Tx + '_>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(Box::new(SqliteTx { tx }))
    }

    fn purge_logs(&mut self) -> StoreResult<()> {
        let (busy, _, _): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        if busy != 0 {
            return Err(StoreError::Corrupt {
                what: "WAL checkpoint blocked by a reader; retry".into(),
            });
        }
        Ok(())
    }
}

struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_ms)
}

fn arr<const N: usize>(v: Vec<u8>, what: &str) -> rusqlite::Result<[u8; N]> {
    v.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("{what}: wrong length").into(),
        )
    })
}

fn opt_arr<const N: usize>(v: Option<Vec<u8>>, what: &str) -> rusqlite::Result<Option<[u8; N]>> {
    v.map(|v| arr(v, what)).transpose()
}

fn bad_text(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what}").into(),
    )
}

fn epoch_from_row(r: &Row<'_>) -> rusqlite::Result<EpochRow> {
    let phase: String = r.get(3)?;
    Ok(EpochRow {
        epoch: r.get(0)?,
        public_key: arr(r.get(1)?, "epoch public key")?,
        secret: r.get(2)?,
        phase: EpochPhase::parse(&phase).ok_or_else(|| bad_text("epoch phase"))?,
        created_at: Timestamp::from_unix_ms(r.get(4)?),
        shred_after: Timestamp::from_unix_ms(r.get(5)?),
        pending_since: ts(r.get(6)?),
        deferred_until: ts(r.get(7)?),
        destroyed_at: ts(r.get(8)?),
    })
}

const EPOCH_COLS: &str = "epoch, public_key, secret, phase, created_at, shred_after, pending_since, deferred_until, destroyed_at";
const REC_COLS: &str = "id, epoch, line, caller_code, gateway, started_at, ended_at, consent, digest, deposited_at, state, reason, destroyed_at";

fn recording_from_row(r: &Row<'_>) -> rusqlite::Result<RecordingRow> {
    let state: String = r.get(10)?;
    Ok(RecordingRow {
        id: arr(r.get(0)?, "recording id")?,
        epoch: r.get(1)?,
        line: r.get(2)?,
        caller_code: r.get(3)?,
        gateway: r.get(4)?,
        started_at: Timestamp::from_unix_ms(r.get(5)?),
        ended_at: ts(r.get(6)?),
        consent: r.get(7)?,
        digest: arr(r.get(8)?, "deposit digest")?,
        deposited_at: Timestamp::from_unix_ms(r.get(9)?),
        state: RecordingState::parse(&state).ok_or_else(|| bad_text("recording state"))?,
        reason: r.get(11)?,
        destroyed_at: ts(r.get(12)?),
    })
}

const OP_COLS: &str = "id, role, x25519, signing_key, ack_hash, ack_at, disabled, created_at";

fn operator_from_row(r: &Row<'_>) -> rusqlite::Result<OperatorRow> {
    Ok(OperatorRow {
        id: r.get(0)?,
        role: r.get(1)?,
        x25519: opt_arr(r.get(2)?, "operator key")?,
        signing_key: opt_arr(r.get(3)?, "signing key")?,
        ack_hash: opt_arr(r.get(4)?, "agreement hash")?,
        ack_at: ts(r.get(5)?),
        disabled: r.get::<_, i64>(6)? != 0,
        created_at: Timestamp::from_unix_ms(r.get(7)?),
    })
}

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get::<_, i64>(0)? as u64,
        body: r.get(1)?,
        hash: arr(r.get(2)?, "audit hash")?,
        signature: arr(r.get(3)?, "audit signature")?,
    })
}

impl Tx for SqliteTx<'_> {
    fn commit(self: Box<Self>) -> StoreResult<()> {
        Ok(self.tx.commit()?)
    }

    fn meta_get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .tx
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn meta_delete(&mut self, key: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    fn meta_set(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
            .execute(params![key, value])?;
        Ok(())
    }

    fn epoch_insert(&mut self, e: &EpochRow) -> StoreResult<()> {
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO epochs ({EPOCH_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"
            ))?
            .execute(params![
                e.epoch,
                e.public_key.as_slice(),
                e.secret,
                e.phase.as_str(),
                e.created_at.unix_ms(),
                e.shred_after.unix_ms(),
                e.pending_since.map(Timestamp::unix_ms),
                e.deferred_until.map(Timestamp::unix_ms),
                e.destroyed_at.map(Timestamp::unix_ms),
            ])?;
        Ok(())
    }

    fn epoch_get(&mut self, epoch: u32) -> StoreResult<Option<EpochRow>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {EPOCH_COLS} FROM epochs WHERE epoch = ?1"))?
            .query_row([epoch], epoch_from_row)
            .optional()?)
    }

    fn epoch_update(&mut self, e: &EpochRow) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE epochs SET secret = ?2, phase = ?3, pending_since = ?4, deferred_until = ?5, destroyed_at = ?6 WHERE epoch = ?1",
            )?
            .execute(params![
                e.epoch,
                e.secret,
                e.phase.as_str(),
                e.pending_since.map(Timestamp::unix_ms),
                e.deferred_until.map(Timestamp::unix_ms),
                e.destroyed_at.map(Timestamp::unix_ms),
            ])?;
        Ok(())
    }

    fn epochs(&mut self, include_destroyed: bool) -> StoreResult<Vec<EpochRow>> {
        let sql = if include_destroyed {
            format!("SELECT {EPOCH_COLS} FROM epochs ORDER BY epoch")
        } else {
            format!("SELECT {EPOCH_COLS} FROM epochs WHERE phase != 'destroyed' ORDER BY epoch")
        };
        let mut st = self.tx.prepare_cached(&sql)?;
        let rows = st
            .query_map([], epoch_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn recording_insert(&mut self, r: &RecordingRow) -> StoreResult<()> {
        self.tx
            .prepare_cached(&format!("INSERT INTO recordings ({REC_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"))?
            .execute(params![
                r.id.as_slice(),
                r.epoch,
                r.line,
                r.caller_code,
                r.gateway,
                r.started_at.unix_ms(),
                r.ended_at.map(Timestamp::unix_ms),
                r.consent,
                r.digest.as_slice(),
                r.deposited_at.unix_ms(),
                r.state.as_str(),
                r.reason,
                r.destroyed_at.map(Timestamp::unix_ms),
            ])?;
        Ok(())
    }

    fn recording_get(&mut self, id: &[u8; 16]) -> StoreResult<Option<RecordingRow>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {REC_COLS} FROM recordings WHERE id = ?1"))?
            .query_row([id.as_slice()], recording_from_row)
            .optional()?)
    }

    fn recording_update(&mut self, r: &RecordingRow) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE recordings SET state = ?2, reason = ?3, destroyed_at = ?4, ended_at = ?5 WHERE id = ?1")?
            .execute(params![
                r.id.as_slice(),
                r.state.as_str(),
                r.reason,
                r.destroyed_at.map(Timestamp::unix_ms),
                r.ended_at.map(Timestamp::unix_ms)
            ])?;
        Ok(())
    }

    fn recordings(&mut self, q: &RecordingQuery) -> StoreResult<Vec<RecordingRow>> {
        let mut st = self.tx.prepare_cached(&format!(
            "SELECT {REC_COLS} FROM recordings WHERE (?1 IS NULL OR epoch = ?1) AND (?2 IS NULL OR line = ?2) \
             AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR id > ?4) AND (?6 IS NULL OR caller_code = ?6) \
             AND (?7 IS NULL OR started_at >= ?7) AND (?8 IS NULL OR started_at < ?8) ORDER BY id LIMIT ?5"
        ))?;
        let rows = st
            .query_map(
                params![
                    q.epoch,
                    q.line,
                    q.state.map(RecordingState::as_str),
                    q.after.as_ref().map(|a| a.as_slice()),
                    q.limit,
                    q.caller_code,
                    q.since.map(Timestamp::unix_ms),
                    q.until.map(Timestamp::unix_ms)
                ],
                recording_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn recordings_count(&mut self, epoch: u32) -> StoreResult<u64> {
        let n: i64 = self
            .tx
            .prepare_cached("SELECT COUNT(*) FROM recordings WHERE epoch = ?1")?
            .query_row([epoch], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn key_put(
        &mut self,
        id: &[u8; 16],
        kind: KeyKind,
        epoch: u32,
        sealed: &[u8],
    ) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO keys (id, kind, epoch, sealed) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(id, kind) DO UPDATE SET epoch = excluded.epoch, sealed = excluded.sealed",
            )?
            .execute(params![id.as_slice(), kind.code(), epoch, sealed])?;
        Ok(())
    }

    fn key_get(&mut self, id: &[u8; 16], kind: KeyKind) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .tx
            .prepare_cached("SELECT sealed FROM keys WHERE id = ?1 AND kind = ?2")?
            .query_row(params![id.as_slice(), kind.code()], |r| r.get(0))
            .optional()?)
    }

    fn key_delete(&mut self, id: &[u8; 16], kind: KeyKind) -> StoreResult<bool> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM keys WHERE id = ?1 AND kind = ?2")?
            .execute(params![id.as_slice(), kind.code()])?;
        Ok(n > 0)
    }

    fn keys_delete_epoch(&mut self, epoch: u32, kind: KeyKind) -> StoreResult<u64> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM keys WHERE epoch = ?1 AND kind = ?2")?
            .execute(params![epoch, kind.code()])?;
        Ok(n as u64)
    }

    fn secret_get(&mut self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .tx
            .prepare_cached("SELECT sealed FROM secrets WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    fn secret_put(&mut self, name: &str, sealed: &[u8]) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO secrets (name, sealed) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET sealed = excluded.sealed")?
            .execute(params![name, sealed])?;
        Ok(())
    }

    fn reseal_all(&mut self, visit: &mut super::ResealVisitor<'_>) -> StoreResult<u64> {
        let mut count = 0u64;
        // Epoch secrets.
        let rows: Vec<(u32, Vec<u8>)> = self
            .tx
            .prepare("SELECT epoch, secret FROM epochs WHERE secret IS NOT NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        {
            let mut up = self
                .tx
                .prepare("UPDATE epochs SET secret = ?2 WHERE epoch = ?1")?;
            for (epoch, sealed) in rows {
                let new =
                    visit(&RowSlot::EpochSecret(epoch), &sealed).ok_or(StoreError::Aborted)?;
                up.execute(params![epoch, new])?;
                count += 1;
            }
        }
        // Named secrets.
        let rows: Vec<(String, Vec<u8>)> = self
            .tx
            .prepare("SELECT name, sealed FROM secrets")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        {
            let mut up = self
                .tx
                .prepare("UPDATE secrets SET sealed = ?2 WHERE name = ?1")?;
            for (name, sealed) in rows {
                let new =
                    visit(&RowSlot::Named(name.clone()), &sealed).ok_or(StoreError::Aborted)?;
                up.execute(params![name, new])?;
                count += 1;
            }
        }
        // Key rows, in rowid batches so memory stays bounded with millions of recordings.
        let mut last_rowid = 0i64;
        loop {
            let batch: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = self
                .tx
                .prepare_cached("SELECT rowid, id, kind, sealed FROM keys WHERE rowid > ?1 ORDER BY rowid LIMIT 10000")?
                .query_map([last_rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            let Some(last) = batch.last() else { break };
            last_rowid = last.0;
            let mut up = self
                .tx
                .prepare_cached("UPDATE keys SET sealed = ?2 WHERE rowid = ?1")?;
            for (rowid, id, kind, sealed) in batch {
                let id: [u8; 16] = id.try_into().map_err(|_| StoreError::Corrupt {
                    what: "key row id is not 16 bytes".into(),
                })?;
                let slot = match kind {
                    0 => RowSlot::RecordingKey(id),
                    1 => RowSlot::HoldKey(id),
                    _ => {
                        return Err(StoreError::Corrupt {
                            what: format!("unknown key kind {kind}"),
                        });
                    }
                };
                let new = visit(&slot, &sealed).ok_or(StoreError::Aborted)?;
                up.execute(params![rowid, new])?;
                count += 1;
            }
        }
        Ok(count)
    }

    fn operator_insert(&mut self, o: &OperatorRow) -> StoreResult<()> {
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO operators ({OP_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"
            ))?
            .execute(params![
                o.id,
                o.role,
                o.x25519.as_ref().map(|k| k.as_slice()),
                o.signing_key.as_ref().map(|k| k.as_slice()),
                o.ack_hash.as_ref().map(|k| k.as_slice()),
                o.ack_at.map(Timestamp::unix_ms),
                i64::from(o.disabled),
                o.created_at.unix_ms(),
            ])?;
        Ok(())
    }

    fn operator_get(&mut self, id: &str) -> StoreResult<Option<OperatorRow>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {OP_COLS} FROM operators WHERE id = ?1"))?
            .query_row([id], operator_from_row)
            .optional()?)
    }

    fn operator_update(&mut self, o: &OperatorRow) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE operators SET x25519 = ?2, signing_key = ?3, ack_hash = ?4, ack_at = ?5, disabled = ?6 WHERE id = ?1")?
            .execute(params![
                o.id,
                o.x25519.as_ref().map(|k| k.as_slice()),
                o.signing_key.as_ref().map(|k| k.as_slice()),
                o.ack_hash.as_ref().map(|k| k.as_slice()),
                o.ack_at.map(Timestamp::unix_ms),
                i64::from(o.disabled),
            ])?;
        Ok(())
    }

    fn operators(&mut self) -> StoreResult<Vec<OperatorRow>> {
        let mut st = self
            .tx
            .prepare_cached(&format!("SELECT {OP_COLS} FROM operators ORDER BY id"))?;
        let rows = st
            .query_map([], operator_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn operator_count(&mut self) -> StoreResult<u64> {
        let n: i64 = self
            .tx
            .query_row("SELECT COUNT(*) FROM operators", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn token_insert(&mut self, t: &TokenRow) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO tokens (hash, operator, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![t.hash.as_slice(), t.operator, t.expires_at.unix_ms(), t.created_at.unix_ms()])?;
        Ok(())
    }

    fn token_get(&mut self, hash: &[u8; 32]) -> StoreResult<Option<TokenRow>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT hash, operator, expires_at, created_at FROM tokens WHERE hash = ?1",
            )?
            .query_row([hash.as_slice()], |r| {
                Ok(TokenRow {
                    hash: arr(r.get(0)?, "token hash")?,
                    operator: r.get(1)?,
                    expires_at: Timestamp::from_unix_ms(r.get(2)?),
                    created_at: Timestamp::from_unix_ms(r.get(3)?),
                })
            })
            .optional()?)
    }

    fn tokens_delete(&mut self, operator: &str) -> StoreResult<u64> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM tokens WHERE operator = ?1")?
            .execute([operator])? as u64)
    }

    fn token_latest_expiry(&mut self, operator: &str) -> StoreResult<Option<Timestamp>> {
        let n: Option<i64> = self
            .tx
            .prepare_cached("SELECT MAX(expires_at) FROM tokens WHERE operator = ?1")?
            .query_row([operator], |r| r.get(0))?;
        Ok(n.map(Timestamp::from_unix_ms))
    }

    fn retention_get(&mut self, line: &str) -> StoreResult<Option<u32>> {
        Ok(self
            .tx
            .prepare_cached("SELECT days FROM retention WHERE line = ?1")?
            .query_row([line], |r| r.get(0))
            .optional()?)
    }

    fn retention_set(&mut self, line: &str, days: u32, at: Timestamp) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO retention (line, days, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(line) DO UPDATE SET days = excluded.days, updated_at = excluded.updated_at",
            )?
            .execute(params![line, days, at.unix_ms()])?;
        Ok(())
    }

    fn retention_list(&mut self) -> StoreResult<Vec<(String, u32)>> {
        let mut st = self
            .tx
            .prepare_cached("SELECT line, days FROM retention ORDER BY line")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn audit_append(&mut self, a: &AuditRow) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO audit (seq, body, hash, signature) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                a.seq as i64,
                a.body,
                a.hash.as_slice(),
                a.signature.as_slice()
            ])?;
        Ok(())
    }

    fn audit_last(&mut self) -> StoreResult<Option<AuditRow>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT seq, body, hash, signature FROM audit ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([], audit_from_row)
            .optional()?)
    }

    fn audit_range(&mut self, from: u64, limit: u32) -> StoreResult<Vec<AuditRow>> {
        let mut st = self.tx.prepare_cached(
            "SELECT seq, body, hash, signature FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(
                params![i64::try_from(from).unwrap_or(i64::MAX), limit],
                audit_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn audit_count(&mut self) -> StoreResult<u64> {
        let n: i64 = self
            .tx
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn receipt_insert(&mut self, r: &ReceiptRow) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO receipts (seq, body, signature) VALUES (?1, ?2, ?3)")?
            .execute(params![r.seq as i64, r.body, r.signature.as_slice()])?;
        Ok(())
    }

    fn receipt_last_seq(&mut self) -> StoreResult<Option<u64>> {
        let n: Option<i64> = self
            .tx
            .query_row("SELECT MAX(seq) FROM receipts", [], |r| r.get(0))?;
        Ok(n.map(|n| n as u64))
    }

    fn receipts(&mut self, from: u64, limit: u32) -> StoreResult<Vec<ReceiptRow>> {
        let mut st = self.tx.prepare_cached(
            "SELECT seq, body, signature FROM receipts WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(
                params![i64::try_from(from).unwrap_or(i64::MAX), limit],
                |r| {
                    Ok(ReceiptRow {
                        seq: r.get::<_, i64>(0)? as u64,
                        body: r.get(1)?,
                        signature: arr(r.get(2)?, "receipt signature")?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_and_its_wal_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let s = SqliteStore::open(&path).unwrap();
        s.conn
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for f in ["db", "db-wal", "db-shm"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} has mode {mode:o}");
        }
    }

    #[test]
    fn our_connection_zeroes_deleted_content_and_syncs_fully() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db")).unwrap();
        let sd: i64 = s
            .conn
            .query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!((sd, sync), (1, 2), "secure_delete=ON, synchronous=FULL");
    }

    #[test]
    fn migrations_apply_once_and_refuse_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        drop(SqliteStore::open(&p).unwrap());
        drop(SqliteStore::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "WAL mode is persistent in the file");
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            SqliteStore::open(&p).err(),
            Some(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }
}
