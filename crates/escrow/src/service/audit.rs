//! The audit log and destruction receipts.
//!
//! Entry `n` stores its JSON body, `hash_n = SHA-256("callseal/audit/v1\0" ‖ hash_{n-1} ‖ body)`
//! and an Ed25519 signature over `"callseal/audit-sig/v1\0" ‖ hash_n`. The body names its own
//! `seq` and the previous hash, so an edit breaks the hash, a deletion or reorder breaks the
//! chain, and rewriting the chain needs the identity key. Truncating the tail is only visible
//! against a head seen earlier (`audit verify` prints it; see docs/escrow.md).

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::Service;
use crate::error::EscrowError;
use crate::model::{AuditEntry, AuditVerification, Receipt, ReceiptBody};
use crate::secret::verify_signature;
use crate::store::{AuditRow, ReceiptRow, Storage, Tx};
use crate::{Action, Actor, Timestamp};

const HASH_DOMAIN: &[u8] = b"callseal/audit/v1\0";
const SIG_DOMAIN: &[u8] = b"callseal/audit-sig/v1\0";
const RECEIPT_DOMAIN: &[u8] = b"callseal/receipt/v1\0";
const PAGE: u32 = 5000;

fn chain_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

fn sig_message(hash: &[u8; 32]) -> Vec<u8> {
    [SIG_DOMAIN, hash.as_slice()].concat()
}

impl Service {
    /// Appends one entry inside `tx`. Any failure becomes [`EscrowError::AuditUnavailable`] so
    /// the caller's transaction (and its effect) is abandoned.
    pub(crate) fn audit_append(
        &self,
        tx: &mut dyn Tx,
        actor: &str,
        action: &str,
        target: Option<&str>,
        purpose: Option<&str>,
        outcome: &str,
    ) -> Result<u64, EscrowError> {
        let unavailable = |reason: String| EscrowError::AuditUnavailable { reason };
        if self.faults.audit_fails() {
            return Err(unavailable("injected audit failure".into()));
        }
        let last = tx.audit_last().map_err(|e| unavailable(e.to_string()))?;
        let (seq, prev) = last.map_or((1, [0u8; 32]), |l| (l.seq + 1, l.hash));
        let entry = AuditEntry {
            seq,
            at: self.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            purpose: purpose.map(str::to_owned),
            outcome: outcome.to_owned(),
            prev: hex::encode(prev),
        };
        let body = serde_json::to_vec(&entry).map_err(|e| unavailable(e.to_string()))?;
        let hash = chain_hash(&prev, &body);
        let signature = self.identity.sign(&sig_message(&hash));
        tx.audit_append(&AuditRow {
            seq,
            body,
            hash,
            signature,
        })
        .map_err(|e| unavailable(e.to_string()))?;
        Ok(seq)
    }

    /// Writes a signed destruction receipt inside `tx`.
    pub(crate) fn receipt_write(
        &self,
        tx: &mut dyn Tx,
        subject: String,
        reason: String,
        keys: u64,
        at: Timestamp,
    ) -> Result<u64, EscrowError> {
        let seq = tx
            .receipt_last_seq()
            .map_err(EscrowError::storage("read receipts"))?
            .unwrap_or(0)
            + 1;
        let body = ReceiptBody {
            seq,
            subject,
            reason,
            destroyed_at: at,
            keys_destroyed: keys,
            escrow_key: self.identity_hex(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| EscrowError::Internal {
            what: e.to_string(),
        })?;
        let signature = self
            .identity
            .sign(&[RECEIPT_DOMAIN, body.as_slice()].concat());
        tx.receipt_insert(&ReceiptRow {
            seq,
            body,
            signature,
        })
        .map_err(EscrowError::storage("write a receipt"))?;
        Ok(seq)
    }

    /// Audit entries with `seq >= from` and `at >= since`, oldest first, at most `limit`.
    pub fn audit_entries(
        &self,
        actor: &Actor,
        from: u64,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, EscrowError> {
        self.authorize(actor, Action::ReadAudit)?;
        let limit = limit.clamp(1, 10_000);
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let mut out = Vec::new();
        let mut next = from.max(1);
        while out.len() < limit as usize {
            let rows = tx
                .audit_range(next, PAGE)
                .map_err(EscrowError::storage("read the audit log"))?;
            let Some(last) = rows.last() else { break };
            next = last.seq + 1;
            for r in rows {
                let e: AuditEntry =
                    serde_json::from_slice(&r.body).map_err(|_| EscrowError::Internal {
                        what: format!("audit entry {} is not valid JSON; run audit verify", r.seq),
                    })?;
                if since.is_none_or(|s| e.at >= s) && out.len() < limit as usize {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Verifies the whole chain (hashes, links, sequence, signatures).
    pub fn verify_audit(&self, actor: &Actor) -> Result<AuditVerification, EscrowError> {
        self.authorize(actor, Action::ReadAudit)?;
        let mut inner = self.lock()?;
        verify_chain(inner.store.as_mut(), &self.identity.verifying_key())
    }

    /// Destruction receipts, optionally only those whose subject mentions `subject` (an epoch
    /// number or a recording id).
    pub fn receipts(
        &self,
        actor: &Actor,
        subject: Option<&str>,
    ) -> Result<Vec<Receipt>, EscrowError> {
        self.authorize(actor, Action::ReadAudit)?;
        let key = self.identity.verifying_key();
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let mut out = Vec::new();
        let mut next = 1;
        loop {
            let rows = tx
                .receipts(next, PAGE)
                .map_err(EscrowError::storage("read receipts"))?;
            let Some(last) = rows.last() else { break };
            next = last.seq + 1;
            for r in rows {
                let body = String::from_utf8_lossy(&r.body).into_owned();
                let valid = verify_signature(
                    &key,
                    &[RECEIPT_DOMAIN, r.body.as_slice()].concat(),
                    &r.signature,
                );
                let receipt = Receipt {
                    seq: r.seq,
                    body,
                    signature: hex::encode(r.signature),
                    signature_valid: valid,
                };
                let matches = match subject {
                    None => true,
                    Some(s) => receipt
                        .parsed()
                        .is_ok_and(|b| b.subject.split(' ').nth(1) == Some(s)),
                };
                if matches {
                    out.push(receipt);
                }
            }
        }
        Ok(out)
    }
}

/// Verifies a receipt's signature with a pinned identity key.
pub fn verify_receipt(receipt: &Receipt, key: &VerifyingKey) -> bool {
    let Ok(sig) = hex::decode(&receipt.signature) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    verify_signature(
        key,
        &[RECEIPT_DOMAIN, receipt.body.as_bytes()].concat(),
        &sig,
    )
}

/// Verifies the audit chain stored in `store` against `key`.
pub fn verify_chain(
    store: &mut dyn Storage,
    key: &VerifyingKey,
) -> Result<AuditVerification, EscrowError> {
    let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    let mut checked = 0u64;
    let fail = |checked: u64, prev: &[u8; 32], problem: String| AuditVerification {
        ok: false,
        entries: checked,
        head: (checked > 0).then(|| hex::encode(prev)),
        problem: Some(problem),
    };
    loop {
        let rows = tx
            .audit_range(expected, PAGE)
            .map_err(EscrowError::storage("read the audit log"))?;
        let Some(last_seq) = rows.last().map(|r| r.seq) else {
            break;
        };
        for r in rows {
            if r.seq != expected {
                return Ok(fail(
                    checked,
                    &prev,
                    format!(
                        "entry {expected} is missing (next stored entry is {}): entries were deleted",
                        r.seq
                    ),
                ));
            }
            let entry: AuditEntry = match serde_json::from_slice(&r.body) {
                Ok(e) => e,
                Err(_) => {
                    return Ok(fail(
                        checked,
                        &prev,
                        format!("entry {} is not a valid audit entry: it was edited", r.seq),
                    ));
                }
            };
            if entry.seq != r.seq {
                return Ok(fail(
                    checked,
                    &prev,
                    format!(
                        "entry {} claims to be entry {}: entries were reordered",
                        r.seq, entry.seq
                    ),
                ));
            }
            if entry.prev != hex::encode(prev) {
                return Ok(fail(
                    checked,
                    &prev,
                    format!(
                        "entry {} does not follow entry {}: the chain was broken",
                        r.seq,
                        r.seq - 1
                    ),
                ));
            }
            let hash = chain_hash(&prev, &r.body);
            if hash != r.hash {
                return Ok(fail(
                    checked,
                    &prev,
                    format!("entry {} does not match its hash: it was edited", r.seq),
                ));
            }
            if !verify_signature(key, &sig_message(&hash), &r.signature) {
                return Ok(fail(
                    checked,
                    &prev,
                    format!("entry {} has an invalid signature", r.seq),
                ));
            }
            prev = hash;
            checked += 1;
            expected = r.seq + 1;
        }
        // Rows with a sequence number below `expected` after a gap are caught by the next page.
        if last_seq + 1 != expected {
            break;
        }
    }
    let total = tx
        .audit_count()
        .map_err(EscrowError::storage("count the audit log"))?;
    if total != checked {
        return Ok(fail(
            checked,
            &prev,
            format!(
                "{} stored entries are not part of the chain",
                total - checked
            ),
        ));
    }
    Ok(AuditVerification {
        ok: true,
        entries: checked,
        head: (checked > 0).then(|| hex::encode(prev)),
        problem: None,
    })
}
