//! Epochs and crypto-shredding: creation ahead of need, the retention round, the two-phase
//! shred, the table-key rotation that follows every destruction, and crash recovery.
//!
//! A destruction is three durable steps, each one safe to repeat:
//! 1. one transaction deletes the secret(s), writes the receipt and the completion audit entry
//!    and sets `rotation_pending`;
//! 2. the keyring stages the next table key; one transaction re-seals every live row under it,
//!    records the new generation and clears `rotation_pending`;
//! 3. the WAL is checkpointed and truncated, then the keyring drops the old key.
//!
//! [`Service::recover`] looks at `rotation_pending`, the database's generation and the keyring's
//! staged generation after a restart and finishes whichever step was interrupted.

use callseal_recording::keys::{EpochId, SecretKey};

use super::{Action, Actor, CrashPoint, Inner, Service, bump, describe_alert};
use crate::Timestamp;
use crate::clock::ClockVerdict;
use crate::error::EscrowError;
use crate::keyring::RowSlot;
use crate::model::{EpochInfo, EpochState};
use crate::retention::{EpochPhase, EpochView, RetentionAction, shred_after};
use crate::store::{EpochRow, KeyKind, Tx};
use crate::table::{EpochEntry, EpochTable, SignedEpochTable};

const META_GENERATION: &str = "table_generation";
const META_ROTATION_PENDING: &str = "rotation_pending";
const META_LAST_SEEN: &str = "clock_last_seen";
/// The actor name of the escrow's own scheduler in the audit log.
pub(crate) const SYSTEM: &str = "escrow";

/// What one retention round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Epochs created.
    pub created: Vec<u32>,
    /// Epochs moved to pending destruction.
    pub begun: Vec<u32>,
    /// Epochs destroyed.
    pub destroyed: Vec<u32>,
    /// Epochs due but held back because the clock is untrusted.
    pub blocked: Vec<u32>,
    /// When the next action is due.
    pub next_due: Option<Timestamp>,
    /// Whether the clock was trusted.
    pub clock_trusted: bool,
}

fn u64_meta(tx: &mut dyn Tx, key: &str) -> Result<Option<u64>, EscrowError> {
    Ok(tx
        .meta_get(key)
        .map_err(EscrowError::storage("read metadata"))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes))
}

impl Service {
    /// One retention round: create missing epochs, begin and complete due shreds (only with a
    /// trusted clock), raise clock alerts. The shell calls it on a timer.
    pub fn tick(&self) -> Result<TickReport, EscrowError> {
        // Finish a rotation an earlier failure (e.g. a blocked checkpoint) left half done.
        self.rotate()?;
        let (wall, mono) = (self.now(), self.clock.mono());
        let plan = {
            let mut inner = self.lock()?;
            let Inner {
                store, scheduler, ..
            } = &mut *inner;
            let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
            let views: Vec<EpochView> = tx
                .epochs(false)
                .map_err(EscrowError::storage("list epochs"))?
                .into_iter()
                .map(|e| EpochView {
                    epoch: e.epoch,
                    phase: e.phase,
                    shred_after: e.shred_after,
                    pending_since: e.pending_since,
                    deferred_until: e.deferred_until,
                })
                .collect();
            let policy = super::admin::read_retention(tx.as_mut())?;
            let mut days: Vec<u32> = policy.lines.iter().map(|l| l.days).collect();
            days.push(policy.default_days);
            drop(tx);
            scheduler.plan(wall, mono, &views, &days)
        };
        let mut report = TickReport {
            blocked: plan.blocked.clone(),
            next_due: plan.next_due,
            clock_trusted: plan.clock == ClockVerdict::Trusted,
            ..TickReport::default()
        };
        for action in plan.actions {
            match action {
                RetentionAction::Alert(a) => {
                    bump(&self.metrics.clock_alerts);
                    tracing::warn!(alert = %describe_alert(a), "clock alert");
                    if let Ok(mut slot) = self.alert.lock() {
                        *slot = Some(a);
                    }
                    self.write(|s, tx, _| {
                        s.audit_append(tx, SYSTEM, "clock_alert", None, None, &describe_alert(a))
                            .map(|_| ())
                    })?;
                }
                RetentionAction::CreateEpochs(list) => {
                    self.create_epochs(&list)?;
                    report.created.extend(list);
                }
                RetentionAction::BeginShred(e) => {
                    self.begin_shred(e)?;
                    report.begun.push(e);
                }
                RetentionAction::CompleteShred(e) => {
                    self.complete_shred(e)?;
                    report.destroyed.push(e);
                }
            }
        }
        if report.clock_trusted {
            self.write(|_, tx, _| {
                tx.meta_set(META_LAST_SEEN, &wall.unix_ms().to_be_bytes())
                    .map_err(EscrowError::storage("write the heartbeat"))
            })?;
        }
        Ok(report)
    }

    /// Compares the persisted heartbeat with the clock at start-up.
    pub(crate) fn resume_clock(&self) -> Result<(), EscrowError> {
        let (wall, mono) = (self.now(), self.clock.mono());
        let mut inner = self.lock()?;
        let Inner {
            store, scheduler, ..
        } = &mut *inner;
        let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
        let last = tx
            .meta_get(META_LAST_SEEN)
            .map_err(EscrowError::storage("read the heartbeat"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(|b| Timestamp::from_unix_ms(i64::from_be_bytes(b)));
        drop(tx);
        if let Some(a) = scheduler.resume(last, wall, mono) {
            drop(inner);
            bump(&self.metrics.clock_alerts);
            if let Ok(mut slot) = self.alert.lock() {
                *slot = Some(a);
            }
            self.write(|s, tx, _| {
                s.audit_append(tx, SYSTEM, "clock_alert", None, None, &describe_alert(a))
                    .map(|_| ())
            })?;
        }
        Ok(())
    }

    fn create_epochs(&self, list: &[u32]) -> Result<(), EscrowError> {
        self.write(|s, tx, kr| {
            for &epoch in list {
                if tx
                    .epoch_get(epoch)
                    .map_err(EscrowError::storage("read an epoch"))?
                    .is_some()
                {
                    continue;
                }
                let secret = SecretKey::generate().map_err(|_| EscrowError::Crypto {
                    what: "generating an epoch key",
                })?;
                let sealed = kr.seal(
                    &RowSlot::EpochSecret(epoch),
                    secret.expose_bytes().as_slice(),
                )?;
                tx.epoch_insert(&EpochRow {
                    epoch,
                    public_key: secret.public_key().to_bytes(),
                    secret: Some(sealed),
                    phase: EpochPhase::Active,
                    created_at: s.now(),
                    shred_after: shred_after(epoch),
                    pending_since: None,
                    deferred_until: None,
                    destroyed_at: None,
                })
                .map_err(EscrowError::storage("create an epoch"))?;
                s.audit_append(
                    tx,
                    SYSTEM,
                    "epoch_create",
                    Some(&format!("epoch {epoch}")),
                    None,
                    "done",
                )?;
            }
            Ok(())
        })
    }

    /// Phase one: the epoch's keys become unusable; an admin may still cancel.
    fn begin_shred(&self, epoch: u32) -> Result<(), EscrowError> {
        self.write(|s, tx, _| {
            let mut row = tx
                .epoch_get(epoch)
                .map_err(EscrowError::storage("read an epoch"))?
                .ok_or(EscrowError::UnknownEpoch { epoch })?;
            if row.phase != EpochPhase::Active {
                return Ok(());
            }
            row.phase = EpochPhase::PendingDestruction;
            row.pending_since = Some(s.now());
            tx.epoch_update(&row)
                .map_err(EscrowError::storage("update an epoch"))?;
            s.audit_append(
                tx,
                SYSTEM,
                "shred_begin",
                Some(&format!("epoch {epoch}")),
                Some("retention"),
                "pending",
            )?;
            Ok(())
        })?;
        self.faults.check(CrashPoint::AfterBegin)
    }

    /// Phase two: destroy the epoch secret and every epoch-wrapped key, then rotate.
    fn complete_shred(&self, epoch: u32) -> Result<(), EscrowError> {
        let done = self.write(|s, tx, _| {
            let mut row = tx
                .epoch_get(epoch)
                .map_err(EscrowError::storage("read an epoch"))?
                .ok_or(EscrowError::UnknownEpoch { epoch })?;
            if row.phase != EpochPhase::PendingDestruction {
                return Ok(false);
            }
            let now = s.now();
            let keys = tx
                .keys_delete_epoch(epoch, KeyKind::Epoch)
                .map_err(EscrowError::storage("delete wrapped keys"))?;
            row.secret = None;
            row.phase = EpochPhase::Destroyed;
            row.destroyed_at = Some(now);
            tx.epoch_update(&row)
                .map_err(EscrowError::storage("update an epoch"))?;
            let receipt =
                s.receipt_write(tx, format!("epoch {epoch}"), "retention".into(), keys, now)?;
            s.audit_append(
                tx,
                SYSTEM,
                "shred_complete",
                Some(&format!("epoch {epoch}")),
                Some("retention"),
                &format!("destroyed: {keys} keys, receipt {receipt}"),
            )?;
            tx.meta_set(META_ROTATION_PENDING, &[1])
                .map_err(EscrowError::storage("flag the rotation"))?;
            Ok(true)
        })?;
        if done {
            bump(&self.metrics.shreds);
            tracing::info!(epoch, "epoch destroyed");
        }
        self.faults.check(CrashPoint::AfterDestroy)?;
        self.rotate()
    }

    /// Replaces the table key (steps 2 and 3 of a destruction); a no-op without a pending flag.
    pub(crate) fn rotate(&self) -> Result<(), EscrowError> {
        let mut inner = self.lock()?;
        let Inner { store, keyring, .. } = &mut *inner;
        let pending = {
            let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
            tx.meta_get(META_ROTATION_PENDING)
                .map_err(EscrowError::storage("read metadata"))?
                .is_some()
        };
        if pending {
            if keyring.staged_generation().is_none() {
                keyring.stage_next()?;
            }
            self.faults.check(CrashPoint::AfterStage)?;
            let next = keyring
                .staged_generation()
                .ok_or_else(|| EscrowError::Internal {
                    what: "no staged key after staging".into(),
                })?;
            let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
            let mut failure = None;
            let mut visit = |slot: &RowSlot, sealed: &[u8]| match keyring.reseal(slot, sealed) {
                Ok(v) => Some(v),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            };
            let resealed = tx.reseal_all(&mut visit);
            if let Err(e) = resealed {
                return Err(failure.take().unwrap_or(EscrowError::Storage {
                    context: "re-seal rows",
                    source: e,
                }));
            }
            tx.meta_set(META_GENERATION, &next.to_be_bytes())
                .map_err(EscrowError::storage("write the generation"))?;
            tx.meta_delete(META_ROTATION_PENDING)
                .map_err(EscrowError::storage("clear the rotation flag"))?;
            tx.commit()
                .map_err(EscrowError::storage("commit the rotation"))?;
            self.faults.check(CrashPoint::AfterReseal)?;
        }
        if keyring.staged_generation().is_some() {
            store
                .purge_logs()
                .map_err(EscrowError::storage("checkpoint the WAL"))?;
            self.faults.check(CrashPoint::AfterCheckpoint)?;
            keyring.commit_next()?;
        }
        Ok(())
    }

    /// After a restart: make the keyring and the database agree again and finish a rotation
    /// that a crash interrupted.
    pub(crate) fn recover(&self) -> Result<(), EscrowError> {
        {
            let mut inner = self.lock()?;
            let Inner { store, keyring, .. } = &mut *inner;
            let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
            let db_gen = u64_meta(tx.as_mut(), META_GENERATION)?;
            let pending = tx
                .meta_get(META_ROTATION_PENDING)
                .map_err(EscrowError::storage("read metadata"))?
                .is_some();
            let db_gen = match db_gen {
                Some(g) => g,
                None => {
                    // A database that never rotated: adopt the keyring's generation.
                    tx.meta_set(META_GENERATION, &keyring.generation().to_be_bytes())
                        .map_err(EscrowError::storage("write the generation"))?;
                    tx.commit().map_err(EscrowError::storage("commit"))?;
                    keyring.generation()
                }
            };
            let staged = keyring.staged_generation();
            if staged == Some(db_gen) {
                // The re-seal committed; only the checkpoint and the keyring commit are left.
            } else if db_gen == keyring.generation() {
                if staged.is_some() && !pending {
                    keyring.abort_next()?;
                }
            } else {
                return Err(EscrowError::KeyFile {
                    path: "keyring".into(),
                    reason: format!(
                        "it holds table key generation {} but the database needs generation {db_gen}; the keyring and the database do not belong together (a restored backup?)",
                        keyring.generation()
                    ),
                });
            }
        }
        self.rotate()
    }

    /// Cancels a pending shred (admin): the epoch becomes usable again and is not shredded
    /// before `deferred_until`.
    pub fn cancel_shred(
        &self,
        actor: &Actor,
        epoch: u32,
        deferred_until: Timestamp,
    ) -> Result<(), EscrowError> {
        self.authorize(actor, Action::OperateRetention)?;
        let target = format!("epoch {epoch}");
        let res = self.write(|s, tx, _| {
            let mut row = tx
                .epoch_get(epoch)
                .map_err(EscrowError::storage("read an epoch"))?
                .ok_or(EscrowError::UnknownEpoch { epoch })?;
            match row.phase {
                EpochPhase::PendingDestruction => {}
                EpochPhase::Destroyed => {
                    return Err(EscrowError::EpochDestroyed {
                        epoch,
                        at: row.destroyed_at.unwrap_or(row.shred_after),
                    });
                }
                EpochPhase::Active => {
                    return Err(EscrowError::invalid("epoch", "is not pending destruction"));
                }
            }
            row.phase = EpochPhase::Active;
            row.pending_since = None;
            row.deferred_until = Some(deferred_until);
            tx.epoch_update(&row)
                .map_err(EscrowError::storage("update an epoch"))?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "shred_cancel",
                Some(&target),
                None,
                &format!("done: deferred until {deferred_until}"),
            )?;
            Ok(())
        });
        res.map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "shred_cancel",
                Some(&target),
                None,
                e,
            )
        })
    }

    /// All epochs with their states and recording counts (admin, auditor).
    pub fn epochs(&self, actor: &Actor) -> Result<Vec<EpochInfo>, EscrowError> {
        self.authorize(actor, Action::ListEpochs)?;
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let rows = tx
            .epochs(true)
            .map_err(EscrowError::storage("list epochs"))?;
        rows.into_iter()
            .map(|e| {
                let recordings = tx
                    .recordings_count(e.epoch)
                    .map_err(EscrowError::storage("count recordings"))?;
                let state = match e.phase {
                    EpochPhase::Active if recordings == 0 => EpochState::Upcoming,
                    EpochPhase::Active => EpochState::Active,
                    EpochPhase::PendingDestruction => EpochState::PendingShred,
                    EpochPhase::Destroyed => EpochState::Shredded,
                };
                Ok(EpochInfo {
                    epoch: e.epoch,
                    state,
                    shred_after: e.shred_after,
                    pending_since: e.pending_since,
                    destroyed_at: e.destroyed_at,
                    recordings,
                })
            })
            .collect()
    }

    /// The signed table of active epochs and the retention policy, for gateways.
    pub fn epoch_table(&self, actor: &Actor) -> Result<SignedEpochTable, EscrowError> {
        self.authorize(actor, Action::EpochTable)?;
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let retention = super::admin::read_retention(tx.as_mut())?;
        let epochs = tx
            .epochs(false)
            .map_err(EscrowError::storage("list epochs"))?
            .into_iter()
            .filter(|e| e.phase == EpochPhase::Active)
            .map(|e| {
                let public_key = callseal_recording::keys::PublicKey::from_bytes(e.public_key)
                    .map_err(|_| EscrowError::Crypto {
                        what: "a stored epoch public key",
                    })?;
                Ok(EpochEntry {
                    epoch: EpochId(e.epoch),
                    public_key,
                    shred_after: e.shred_after,
                })
            })
            .collect::<Result<Vec<_>, EscrowError>>()?;
        drop(tx);
        drop(inner);
        let table = EpochTable {
            escrow_key: self.identity_hex(),
            issued_at: self.now(),
            retention,
            epochs,
        };
        SignedEpochTable::sign(&table, &self.identity)
    }
}
