//! Recordings: deposits, metadata, purpose-bound key release, erasure and legal hold.

use std::collections::HashMap;

use callseal_recording::keys::{
    EpochId, PublicKey, Recipient, RecordingId, SecretKey, WrappedKey, rewrap,
};
use sha2::{Digest, Sha256};

use super::{Action, Actor, Service, bump};
use crate::clock::ClockVerdict;
use crate::error::EscrowError;
use crate::ids::{Purpose, Reason, Role, Timestamp};
use crate::keyring::{Keyring, RowSlot};
use crate::model::{
    ConsentEvidence, Deposit, DepositOutcome, RecordingFilter, RecordingInfo, RecordingStatus,
    Released,
};
use crate::retention::{EpochPhase, shred_after};
use crate::store::{EpochRow, KeyKind, RecordingQuery, RecordingRow, RecordingState, Tx};

const HOLD_KEY: &str = "hold_key";
const META_ROTATION_PENDING: &str = "rotation_pending";
const TOMBSTONE_DIGEST: [u8; 32] = [0; 32];
const LIST_MAX: u32 = 10_000;

fn rid(id: &RecordingId) -> String {
    id.to_string()
}

fn validate(actor: &Actor, d: &Deposit) -> Result<(), EscrowError> {
    if actor.role == Role::Gateway && d.gateway.as_str() != actor.operator.as_str() {
        return Err(EscrowError::invalid(
            "gateway",
            format!(
                "is {}, but the token belongs to gateway {}",
                d.gateway, actor.operator
            ),
        ));
    }
    let w = &d.wrapped_key;
    if w.recipient() != Recipient::Epoch {
        return Err(EscrowError::invalid(
            "wrapped key",
            "is not wrapped to an epoch key",
        ));
    }
    if w.recording_id() != d.recording || w.epoch() != d.epoch {
        return Err(EscrowError::invalid(
            "wrapped key",
            "names another recording or epoch than the deposit",
        ));
    }
    if d.ended_at.is_some_and(|e| e < d.started_at) {
        return Err(EscrowError::invalid("ended_at", "is before started_at"));
    }
    if d.consent
        .digit
        .is_some_and(|c| !(c.is_ascii_digit() || c == '*' || c == '#'))
    {
        return Err(EscrowError::invalid("consent digit", "must be 0-9, * or #"));
    }
    let p = &d.consent.prompt_sha256;
    if p.len() != 64
        || !p
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(EscrowError::invalid(
            "consent prompt_sha256",
            "must be 64 lowercase hex digits",
        ));
    }
    Ok(())
}

/// Identity of a deposit for idempotency: everything but the end time, which a second deposit
/// may add.
fn digest(d: &Deposit) -> Result<[u8; 32], EscrowError> {
    let mut d = d.clone();
    d.ended_at = None;
    let bytes = serde_json::to_vec(&d).map_err(|e| EscrowError::Internal {
        what: e.to_string(),
    })?;
    Ok(Sha256::digest(&bytes).into())
}

/// The audit outcome of a deposit request: how many deposits ended which way.
fn deposit_outcome(results: &[Result<DepositOutcome, EscrowError>]) -> String {
    let n = |want: DepositOutcome| {
        results
            .iter()
            .filter(|r| matches!(r, Ok(o) if *o == want))
            .count()
    };
    let refused = results.iter().filter(|r| r.is_err()).count();
    format!(
        "done: {} stored, {} updated, {} already stored, {} discarded, {refused} refused",
        n(DepositOutcome::Stored),
        n(DepositOutcome::Updated),
        n(DepositOutcome::AlreadyStored),
        n(DepositOutcome::Discarded),
    )
}

/// Checks the gateway's signature over the consent evidence, pinning the gateway's key on first
/// use. Evidence without signature fields is accepted unsigned.
fn check_consent_signature(tx: &mut dyn Tx, actor: &Actor, d: &Deposit) -> Result<(), EscrowError> {
    let c = &d.consent;
    let (key_hex, sig_hex) = match (&c.gateway_key, &c.signature) {
        (None, None) => return Ok(()),
        (Some(k), Some(s)) => (k, s),
        _ => {
            return Err(EscrowError::invalid(
                "consent signature",
                "gateway_key and signature come together",
            ));
        }
    };
    let bad = |r: &str| EscrowError::invalid("consent signature", r.to_owned());
    let key: [u8; 32] = hex::decode(key_hex)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| bad("gateway_key is not 64 hex digits"))?;
    let sig: [u8; 64] = hex::decode(sig_hex)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| bad("signature is not 128 hex digits"))?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| bad("gateway_key is not an Ed25519 key"))?;
    if !crate::secret::verify_signature(&vk, &c.signed_message(&d.recording), &sig) {
        return Err(bad(
            "does not verify: the evidence was altered or signed with another key",
        ));
    }
    let mut op = tx
        .operator_get(actor.operator.as_str())
        .map_err(EscrowError::storage("read an operator"))?
        .ok_or_else(|| EscrowError::UnknownOperator {
            id: actor.operator.to_string(),
        })?;
    match op.signing_key {
        Some(pinned) if pinned == key => Ok(()),
        Some(_) => Err(bad(
            "gateway_key is not the key this gateway used before; an admin must re-enrol the gateway",
        )),
        None => {
            op.signing_key = Some(key);
            tx.operator_update(&op)
                .map_err(EscrowError::storage("pin the gateway key"))
        }
    }
}

fn status(r: &RecordingRow, epoch: Option<&EpochRow>) -> (RecordingStatus, Option<Timestamp>) {
    match r.state {
        RecordingState::Erased => (RecordingStatus::Erased, r.destroyed_at),
        RecordingState::Shredded => (RecordingStatus::Shredded, r.destroyed_at),
        RecordingState::Held => (RecordingStatus::Held, None),
        RecordingState::Active => match epoch.map(|e| (e.phase, e.destroyed_at)) {
            Some((EpochPhase::Active, _)) => (RecordingStatus::Sealed, None),
            Some((EpochPhase::PendingDestruction, _)) => (RecordingStatus::PendingShred, None),
            Some((EpochPhase::Destroyed, at)) => (RecordingStatus::Shredded, at),
            None => (RecordingStatus::Shredded, None),
        },
    }
}

fn info(r: RecordingRow, epoch: Option<&EpochRow>) -> Result<RecordingInfo, EscrowError> {
    let (status, destroyed) = status(&r, epoch);
    let consent: Option<ConsentEvidence> = serde_json::from_slice(&r.consent).ok();
    Ok(RecordingInfo {
        id: RecordingId::from_bytes(r.id),
        status,
        caller_code: r.caller_code,
        line: r.line,
        gateway: r.gateway,
        started_at: r.started_at,
        ended_at: r.ended_at,
        deposited_at: r.deposited_at,
        epoch: r.epoch,
        shred_after: shred_after(r.epoch),
        consent,
        reason: r.reason,
        destroyed_at: destroyed.or(r.destroyed_at),
    })
}

fn get_recording(tx: &mut dyn Tx, id: &RecordingId) -> Result<RecordingRow, EscrowError> {
    tx.recording_get(id.as_bytes())
        .map_err(EscrowError::storage("read a recording"))?
        .ok_or_else(|| EscrowError::UnknownRecording { id: rid(id) })
}

fn get_epoch(tx: &mut dyn Tx, epoch: u32) -> Result<EpochRow, EscrowError> {
    tx.epoch_get(epoch)
        .map_err(EscrowError::storage("read an epoch"))?
        .ok_or(EscrowError::UnknownEpoch { epoch })
}

fn open_secret(kr: &Keyring, slot: &RowSlot, sealed: &[u8]) -> Result<SecretKey, EscrowError> {
    let plain = kr.open_row(slot, sealed)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| EscrowError::Crypto {
            what: "a stored secret has the wrong length",
        })?;
    Ok(SecretKey::from_bytes(bytes))
}

fn epoch_secret(kr: &Keyring, e: &EpochRow, id: &RecordingId) -> Result<SecretKey, EscrowError> {
    match (e.phase, &e.secret) {
        (EpochPhase::PendingDestruction, _) => Err(EscrowError::ShredPending { epoch: e.epoch }),
        (EpochPhase::Destroyed, _) | (_, None) => Err(EscrowError::KeyShredded {
            id: rid(id),
            at: e.destroyed_at.unwrap_or(e.shred_after),
        }),
        (EpochPhase::Active, Some(sealed)) => {
            open_secret(kr, &RowSlot::EpochSecret(e.epoch), sealed)
        }
    }
}

fn wrapped(
    tx: &mut dyn Tx,
    kr: &Keyring,
    id: &RecordingId,
    kind: KeyKind,
    gone: impl FnOnce() -> EscrowError,
) -> Result<WrappedKey, EscrowError> {
    let sealed = tx
        .key_get(id.as_bytes(), kind)
        .map_err(EscrowError::storage("read a wrapped key"))?
        .ok_or_else(gone)?;
    let plain = kr.open_row(&kind.slot(id.to_bytes()), &sealed)?;
    WrappedKey::from_bytes(&plain).map_err(|_| EscrowError::Crypto {
        what: "a stored wrapped key is malformed",
    })
}

/// The escrow-wide legal-hold key, created on first use.
fn hold_key(tx: &mut dyn Tx, kr: &Keyring) -> Result<SecretKey, EscrowError> {
    let slot = RowSlot::Named(HOLD_KEY.into());
    if let Some(sealed) = tx
        .secret_get(HOLD_KEY)
        .map_err(EscrowError::storage("read the hold key"))?
    {
        return open_secret(kr, &slot, &sealed);
    }
    let key = SecretKey::generate().map_err(|_| EscrowError::Crypto {
        what: "generating the hold key",
    })?;
    let sealed = kr.seal(&slot, key.expose_bytes().as_slice())?;
    tx.secret_put(HOLD_KEY, &sealed)
        .map_err(EscrowError::storage("store the hold key"))?;
    Ok(key)
}

impl Service {
    /// Stores one deposit (gateway); idempotent by recording id.
    pub fn deposit(&self, actor: &Actor, d: &Deposit) -> Result<DepositOutcome, EscrowError> {
        self.deposit_batch(actor, std::slice::from_ref(d))?
            .pop()
            .unwrap_or_else(|| {
                Err(EscrowError::Internal {
                    what: "empty deposit result".into(),
                })
            })
    }

    /// Stores many deposits in one transaction (the gateway's outbox flush); one result each.
    pub fn deposit_batch(
        &self,
        actor: &Actor,
        deposits: &[Deposit],
    ) -> Result<Vec<Result<DepositOutcome, EscrowError>>, EscrowError> {
        self.authorize(actor, Action::Deposit)?;
        let now = self.now();
        let results = self.write(|s, tx, kr| {
            let mut epochs: HashMap<u32, EpochRow> = HashMap::new();
            let mut out = Vec::with_capacity(deposits.len());
            for d in deposits {
                out.push(Self::deposit_one(tx, kr, &mut epochs, actor, d, now));
            }
            // One entry per request, in the same transaction: without it nothing is stored.
            let target = match deposits {
                [d] => Some(format!("recording {}", d.recording)),
                _ => None,
            };
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "deposit",
                target.as_deref(),
                None,
                &deposit_outcome(&out),
            )?;
            Ok(out)
        })?;
        for r in &results {
            if matches!(r, Ok(DepositOutcome::Stored)) {
                bump(&self.metrics.deposits);
            }
        }
        Ok(results)
    }

    fn deposit_one(
        tx: &mut dyn Tx,
        kr: &Keyring,
        epochs: &mut HashMap<u32, EpochRow>,
        actor: &Actor,
        d: &Deposit,
        now: Timestamp,
    ) -> Result<DepositOutcome, EscrowError> {
        validate(actor, d)?;
        let digest = digest(d)?;
        if let Some(mut existing) = tx
            .recording_get(d.recording.as_bytes())
            .map_err(EscrowError::storage("read a recording"))?
        {
            if existing.state == RecordingState::Erased && existing.digest == TOMBSTONE_DIGEST {
                return Ok(DepositOutcome::Discarded);
            }
            if existing.digest != digest {
                return Err(EscrowError::DepositConflict {
                    id: rid(&d.recording),
                });
            }
            return match (existing.ended_at, d.ended_at) {
                (None, Some(end)) => {
                    existing.ended_at = Some(end);
                    tx.recording_update(&existing)
                        .map_err(EscrowError::storage("update a recording"))?;
                    Ok(DepositOutcome::Updated)
                }
                (Some(a), Some(b)) if a != b => Err(EscrowError::DepositConflict {
                    id: rid(&d.recording),
                }),
                _ => Ok(DepositOutcome::AlreadyStored),
            };
        }
        check_consent_signature(tx, actor, d)?;
        let EpochId(epoch) = d.epoch;
        let e = match epochs.entry(epoch) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(get_epoch(tx, epoch)?),
        };
        if e.phase == EpochPhase::Destroyed {
            return Err(EscrowError::KeyShredded {
                id: rid(&d.recording),
                at: e.destroyed_at.unwrap_or(e.shred_after),
            });
        }
        let consent = serde_json::to_vec(&d.consent).map_err(|e| EscrowError::Internal {
            what: e.to_string(),
        })?;
        tx.recording_insert(&RecordingRow {
            id: d.recording.to_bytes(),
            epoch,
            line: d.line.to_string(),
            caller_code: d.caller_code.to_string(),
            gateway: d.gateway.to_string(),
            started_at: d.started_at,
            ended_at: d.ended_at,
            consent,
            digest,
            deposited_at: now,
            state: RecordingState::Active,
            reason: None,
            destroyed_at: None,
        })
        .map_err(EscrowError::storage("store a recording"))?;
        let sealed = kr.seal(
            &KeyKind::Epoch.slot(d.recording.to_bytes()),
            &d.wrapped_key.to_bytes(),
        )?;
        tx.key_put(d.recording.as_bytes(), KeyKind::Epoch, epoch, &sealed)
            .map_err(EscrowError::storage("store a wrapped key"))?;
        Ok(DepositOutcome::Stored)
    }

    /// Recording metadata matching `filter`, newest first.
    pub fn recordings(
        &self,
        actor: &Actor,
        filter: &RecordingFilter,
    ) -> Result<Vec<RecordingInfo>, EscrowError> {
        self.authorize(actor, Action::ReadRecordings)?;
        let limit = filter.limit.unwrap_or(LIST_MAX).clamp(1, LIST_MAX);
        let state = match filter.status {
            Some(RecordingStatus::Erased) => Some(RecordingState::Erased),
            Some(RecordingStatus::Held) => Some(RecordingState::Held),
            Some(RecordingStatus::Sealed | RecordingStatus::PendingShred) => {
                Some(RecordingState::Active)
            }
            Some(RecordingStatus::Shredded) | None => None,
        };
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let epochs: HashMap<u32, EpochRow> = tx
            .epochs(true)
            .map_err(EscrowError::storage("list epochs"))?
            .into_iter()
            .map(|e| (e.epoch, e))
            .collect();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let q = RecordingQuery {
                epoch: filter.epoch,
                caller_code: filter.caller_code.as_ref().map(ToString::to_string),
                since: filter.since,
                until: filter.until,
                line: filter.line.as_ref().map(ToString::to_string),
                state,
                after,
                limit: LIST_MAX,
            };
            let rows = tx
                .recordings(&q)
                .map_err(EscrowError::storage("list recordings"))?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for r in rows {
                if r.digest == TOMBSTONE_DIGEST {
                    continue;
                }
                let i = info(r.clone(), epochs.get(&r.epoch))?;
                if filter.status.is_none_or(|s| s == i.status) {
                    out.push(i);
                }
            }
            if out.len() >= limit as usize {
                break;
            }
        }
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.id.cmp(&b.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    /// One recording's metadata.
    pub fn recording(&self, actor: &Actor, id: &RecordingId) -> Result<RecordingInfo, EscrowError> {
        self.authorize(actor, Action::ReadRecordings)?;
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let r = get_recording(tx.as_mut(), id)?;
        let e = tx
            .epoch_get(r.epoch)
            .map_err(EscrowError::storage("read an epoch"))?;
        info(r, e.as_ref())
    }

    /// Re-wraps a recording's data key to the listener's own enrolled key, for `purpose`. The
    /// release is in the audit log (committed) before this returns; the bare key never leaves.
    pub fn release_key(
        &self,
        actor: &Actor,
        id: &RecordingId,
        purpose: &str,
        operator_key: &PublicKey,
    ) -> Result<Released, EscrowError> {
        let target = format!("recording {id}");
        self.authorize(actor, Action::ReleaseKey)?;
        let purpose = Purpose::new(purpose).map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "key_release",
                Some(&target),
                None,
                e,
            )
        })?;
        let res = self.write(|s, tx, kr| {
            let op = tx
                .operator_get(actor.operator.as_str())
                .map_err(EscrowError::storage("read an operator"))?
                .ok_or_else(|| EscrowError::UnknownOperator { id: actor.operator.to_string() })?;
            let enrolled = op.x25519.ok_or_else(|| {
                EscrowError::invalid("operator key", "no public key is enrolled for you; an admin must enrol the one from `callseal operator keygen`")
            })?;
            if !bool::from(subtle::ConstantTimeEq::ct_eq(enrolled.as_slice(), operator_key.to_bytes().as_slice())) {
                return Err(EscrowError::invalid("operator key", "is not the public key enrolled for you; use your own key file"));
            }
            let r = get_recording(tx, id)?;
            let (kind, secret) = match r.state {
                RecordingState::Erased => return Err(EscrowError::Erased { id: rid(id), at: r.destroyed_at }),
                RecordingState::Shredded => return Err(EscrowError::KeyShredded { id: rid(id), at: r.destroyed_at.unwrap_or(shred_after(r.epoch)) }),
                RecordingState::Held => (KeyKind::Hold, hold_key(tx, kr)?),
                RecordingState::Active => (KeyKind::Epoch, epoch_secret(kr, &get_epoch(tx, r.epoch)?, id)?),
            };
            let w = wrapped(tx, kr, id, kind, || EscrowError::KeyShredded { id: rid(id), at: shred_after(r.epoch) })?;
            let out = rewrap(&w, &secret, Recipient::Operator, operator_key).map_err(|_| EscrowError::Crypto { what: "re-wrapping the key" })?;
            let seq = s.audit_append(tx, actor.operator.as_str(), "key_release", Some(&target), Some(purpose.as_str()), "granted")?;
            Ok(Released { wrapped_key: out, audit_seq: seq })
        });
        match res {
            Ok(r) => {
                bump(&self.metrics.releases);
                Ok(r)
            }
            Err(e) => Err(self.denied(
                actor.operator.as_str(),
                "key_release",
                Some(&target),
                Some(purpose.as_str()),
                e,
            )),
        }
    }

    /// Erases a recording now: its wrapped keys are destroyed and the table key rotated. A
    /// gateway may erase an id whose deposit has not arrived yet (withdrawn consent): a tombstone
    /// makes the later deposit be discarded.
    pub fn erase(&self, actor: &Actor, id: &RecordingId, reason: &str) -> Result<(), EscrowError> {
        let target = format!("recording {id}");
        self.authorize(actor, Action::Erase)?;
        let reason = Reason::new(reason)
            .map_err(|e| self.denied(actor.operator.as_str(), "erase", Some(&target), None, e))?;
        let res = self.write(|s, tx, _| {
            let now = s.now();
            let Some(mut r) = tx
                .recording_get(id.as_bytes())
                .map_err(EscrowError::storage("read a recording"))?
            else {
                if actor.role != Role::Gateway {
                    return Err(EscrowError::UnknownRecording { id: rid(id) });
                }
                tx.recording_insert(&RecordingRow {
                    id: id.to_bytes(),
                    epoch: 0,
                    line: String::new(),
                    caller_code: String::new(),
                    gateway: actor.operator.to_string(),
                    started_at: now,
                    ended_at: None,
                    consent: Vec::new(),
                    digest: TOMBSTONE_DIGEST,
                    deposited_at: now,
                    state: RecordingState::Erased,
                    reason: Some(reason.as_str().to_owned()),
                    destroyed_at: Some(now),
                })
                .map_err(EscrowError::storage("store a tombstone"))?;
                s.audit_append(
                    tx,
                    actor.operator.as_str(),
                    "erase",
                    Some(&target),
                    Some(reason.as_str()),
                    "done: before deposit",
                )?;
                return Ok(false);
            };
            match r.state {
                RecordingState::Erased => return Ok(false),
                RecordingState::Held => return Err(EscrowError::LegalHold { id: rid(id) }),
                RecordingState::Shredded => {
                    return Err(EscrowError::KeyShredded {
                        id: rid(id),
                        at: r.destroyed_at.unwrap_or(now),
                    });
                }
                RecordingState::Active => {
                    let e = get_epoch(tx, r.epoch)?;
                    if e.phase == EpochPhase::Destroyed {
                        return Err(EscrowError::KeyShredded {
                            id: rid(id),
                            at: e.destroyed_at.unwrap_or(e.shred_after),
                        });
                    }
                }
            }
            let mut keys = 0;
            for kind in [KeyKind::Epoch, KeyKind::Hold] {
                keys += u64::from(
                    tx.key_delete(id.as_bytes(), kind)
                        .map_err(EscrowError::storage("delete a wrapped key"))?,
                );
            }
            r.state = RecordingState::Erased;
            r.reason = Some(reason.as_str().to_owned());
            r.destroyed_at = Some(now);
            tx.recording_update(&r)
                .map_err(EscrowError::storage("update a recording"))?;
            let receipt = s.receipt_write(
                tx,
                target.clone(),
                format!("erasure: {}", reason.as_str()),
                keys,
                now,
            )?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "erase",
                Some(&target),
                Some(reason.as_str()),
                &format!("done: receipt {receipt}"),
            )?;
            tx.meta_set(META_ROTATION_PENDING, &[1])
                .map_err(EscrowError::storage("flag the rotation"))?;
            Ok(true)
        });
        match res {
            Ok(true) => {
                bump(&self.metrics.erasures);
                self.rotate()
            }
            Ok(false) => Ok(()),
            Err(e) => Err(self.denied(
                actor.operator.as_str(),
                "erase",
                Some(&target),
                Some(reason.as_str()),
                e,
            )),
        }
    }

    /// Places a legal hold (admin): the key is re-wrapped to the hold key, out of its epoch, so
    /// the epoch's shred does not destroy it.
    pub fn hold(&self, actor: &Actor, id: &RecordingId, reason: &str) -> Result<(), EscrowError> {
        let target = format!("recording {id}");
        self.authorize(actor, Action::Hold)?;
        let reason = Reason::new(reason)
            .map_err(|e| self.denied(actor.operator.as_str(), "hold", Some(&target), None, e))?;
        let res = self.write(|s, tx, kr| {
            let mut r = get_recording(tx, id)?;
            match r.state {
                RecordingState::Held => return Ok(()),
                RecordingState::Erased => {
                    return Err(EscrowError::Erased {
                        id: rid(id),
                        at: r.destroyed_at,
                    });
                }
                RecordingState::Shredded => {
                    return Err(EscrowError::KeyShredded {
                        id: rid(id),
                        at: r.destroyed_at.unwrap_or(s.now()),
                    });
                }
                RecordingState::Active => {}
            }
            let secret = epoch_secret(kr, &get_epoch(tx, r.epoch)?, id)?;
            let w = wrapped(tx, kr, id, KeyKind::Epoch, || EscrowError::KeyShredded {
                id: rid(id),
                at: shred_after(r.epoch),
            })?;
            let hold = hold_key(tx, kr)?;
            let held = rewrap(&w, &secret, Recipient::Hold, &hold.public_key()).map_err(|_| {
                EscrowError::Crypto {
                    what: "re-wrapping to the hold key",
                }
            })?;
            let sealed = kr.seal(&KeyKind::Hold.slot(id.to_bytes()), &held.to_bytes())?;
            tx.key_put(id.as_bytes(), KeyKind::Hold, r.epoch, &sealed)
                .map_err(EscrowError::storage("store the held key"))?;
            r.state = RecordingState::Held;
            r.reason = Some(reason.as_str().to_owned());
            tx.recording_update(&r)
                .map_err(EscrowError::storage("update a recording"))?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "hold",
                Some(&target),
                Some(reason.as_str()),
                "done",
            )?;
            Ok(())
        });
        res.map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "hold",
                Some(&target),
                Some(reason.as_str()),
                e,
            )
        })
    }

    /// Lifts a legal hold (admin). If the recording's retention is over, its key is shredded at
    /// once (which needs a trusted clock).
    pub fn release_hold(&self, actor: &Actor, id: &RecordingId) -> Result<(), EscrowError> {
        let target = format!("recording {id}");
        self.authorize(actor, Action::Hold)?;
        let trusted = self.lock()?.scheduler.verdict();
        let res = self.write(|s, tx, _| {
            let now = s.now();
            let mut r = get_recording(tx, id)?;
            if r.state != RecordingState::Held {
                return Err(EscrowError::NotHeld { id: rid(id) });
            }
            let e = get_epoch(tx, r.epoch)?;
            if e.phase == EpochPhase::Active {
                tx.key_delete(id.as_bytes(), KeyKind::Hold)
                    .map_err(EscrowError::storage("delete the held key"))?;
                r.state = RecordingState::Active;
                r.reason = None;
                tx.recording_update(&r)
                    .map_err(EscrowError::storage("update a recording"))?;
                s.audit_append(
                    tx,
                    actor.operator.as_str(),
                    "hold_release",
                    Some(&target),
                    None,
                    "done",
                )?;
                return Ok(false);
            }
            if let ClockVerdict::Untrusted { ahead_ms } = trusted {
                return Err(EscrowError::ClockUntrusted { ahead_ms });
            }
            let mut keys = 0;
            for kind in [KeyKind::Epoch, KeyKind::Hold] {
                keys += u64::from(
                    tx.key_delete(id.as_bytes(), kind)
                        .map_err(EscrowError::storage("delete a wrapped key"))?,
                );
            }
            r.state = RecordingState::Shredded;
            r.destroyed_at = Some(now);
            tx.recording_update(&r)
                .map_err(EscrowError::storage("update a recording"))?;
            let receipt = s.receipt_write(
                tx,
                target.clone(),
                "hold released after retention".into(),
                keys,
                now,
            )?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "hold_release",
                Some(&target),
                None,
                &format!("shredded: receipt {receipt}"),
            )?;
            tx.meta_set(META_ROTATION_PENDING, &[1])
                .map_err(EscrowError::storage("flag the rotation"))?;
            Ok(true)
        });
        match res {
            Ok(true) => self.rotate(),
            Ok(false) => Ok(()),
            Err(e) => Err(self.denied(
                actor.operator.as_str(),
                "hold_release",
                Some(&target),
                None,
                e,
            )),
        }
    }
}
