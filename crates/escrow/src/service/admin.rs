//! Operators, tokens, the confidentiality agreement, the retention policy and the clock confirm.

use callseal_recording::keys::PublicKey;
use sha2::{Digest, Sha256};

use super::{Action, Actor, Service};
use crate::error::EscrowError;
use crate::ids::{LineId, OperatorId, RetentionDays, Role, Timestamp};
use crate::model::{
    Agreement, Enrolled, LineRetention, NewOperator, OperatorInfo, OperatorStatus, RetentionPolicy,
    WhoAmI,
};
use crate::secret::Token;
use crate::store::{OperatorRow, TokenRow, Tx};

/// The confidentiality agreement every human operator acknowledges before their account works.
pub const AGREEMENT_TEXT: &str = "\
CALLSEAL CONFIDENTIALITY AGREEMENT

Recordings held by this escrow are confidential health information of callers who consented to
being recorded for a stated purpose. By acknowledging this agreement you confirm that you will:

1. open a recording only for a purpose you state truthfully, within your duties;
2. never copy, forward or keep exported audio beyond that purpose, and delete exports promptly;
3. never try to identify a caller beyond what your duties require;
4. keep your operator token and key file secret and report their loss at once.

Every key release, with its purpose, is recorded in a signed audit log.
";

const META_DEFAULT_RETENTION: &str = "retention_default";

pub(crate) fn agreement_sha256() -> [u8; 32] {
    Sha256::digest(AGREEMENT_TEXT.as_bytes()).into()
}

pub(crate) fn status_of(op: &OperatorRow) -> OperatorStatus {
    if op.disabled {
        OperatorStatus::Disabled
    } else if op.role == Role::Gateway.as_str() || op.ack_at.is_some() {
        // Gateways are machine accounts: nobody to acknowledge an agreement.
        OperatorStatus::Active
    } else {
        OperatorStatus::PendingAgreement
    }
}

fn info(tx: &mut dyn Tx, op: &OperatorRow) -> Result<OperatorInfo, EscrowError> {
    Ok(OperatorInfo {
        id: OperatorId::new(&op.id)?,
        role: op.role.parse()?,
        status: status_of(op),
        public_key: op.x25519.map(hex::encode),
        created_at: op.created_at,
        acknowledged_at: op.ack_at,
        token_expires_at: tx
            .token_latest_expiry(&op.id)
            .map_err(EscrowError::storage("read tokens"))?,
    })
}

pub(crate) fn read_retention(tx: &mut dyn Tx) -> Result<RetentionPolicy, EscrowError> {
    let default_days = tx
        .meta_get(META_DEFAULT_RETENTION)
        .map_err(EscrowError::storage("read the retention policy"))?
        .and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()))
        .unwrap_or(30);
    let lines = tx
        .retention_list()
        .map_err(EscrowError::storage("read the retention policy"))?
        .into_iter()
        .filter_map(|(line, days)| {
            LineId::new(&line)
                .ok()
                .map(|line| LineRetention { line, days })
        })
        .collect();
    Ok(RetentionPolicy {
        default_days,
        lines,
    })
}

impl Service {
    /// Creates an operator and its first token inside `tx` (used by init and by enrolment).
    pub(crate) fn create_operator(
        &self,
        tx: &mut dyn Tx,
        new: &NewOperator,
    ) -> Result<(Token, OperatorInfo), EscrowError> {
        if tx
            .operator_get(new.id.as_str())
            .map_err(EscrowError::storage("read operators"))?
            .is_some()
        {
            return Err(EscrowError::AlreadyExists {
                what: format!("operator {}", new.id),
            });
        }
        let now = self.now();
        let row = OperatorRow {
            id: new.id.to_string(),
            role: new.role.as_str().to_owned(),
            x25519: new.public_key.as_ref().map(PublicKey::to_bytes),
            signing_key: None,
            ack_hash: None,
            ack_at: None,
            disabled: false,
            created_at: now,
        };
        tx.operator_insert(&row)
            .map_err(EscrowError::storage("create an operator"))?;
        let token = self.issue_token(tx, &row)?;
        Ok((token, info(tx, &row)?))
    }

    fn issue_token(&self, tx: &mut dyn Tx, op: &OperatorRow) -> Result<Token, EscrowError> {
        let lifetime = if op.role == Role::Gateway.as_str() {
            self.config.gateway_token_lifetime
        } else {
            self.config.token_lifetime
        };
        let ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        let token = Token::generate()?;
        let now = self.now();
        tx.token_insert(&TokenRow {
            hash: token.hash(),
            operator: op.id.clone(),
            expires_at: now.plus_ms(ms),
            created_at: now,
        })
        .map_err(EscrowError::storage("store a token"))?;
        Ok(token)
    }

    /// Enrols an operator (admin). The token is in the answer only; the escrow keeps its hash.
    pub fn add_operator(&self, actor: &Actor, new: &NewOperator) -> Result<Enrolled, EscrowError> {
        self.authorize(actor, Action::ManageOperators)?;
        let target = format!("operator {}", new.id);
        let res = self.write(|s, tx, _| {
            let (token, operator) = s.create_operator(tx, new)?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "operator_add",
                Some(&target),
                None,
                &format!("done: role {}", new.role),
            )?;
            Ok(Enrolled {
                operator,
                token: token.expose().to_string(),
            })
        });
        res.map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "operator_add",
                Some(&target),
                None,
                e,
            )
        })
    }

    /// Issues a new token for an existing operator (admin), e.g. after the old one expired.
    pub fn renew_token(&self, actor: &Actor, id: &OperatorId) -> Result<Enrolled, EscrowError> {
        self.authorize(actor, Action::ManageOperators)?;
        let target = format!("operator {id}");
        self.write(|s, tx, _| {
            let op = tx
                .operator_get(id.as_str())
                .map_err(EscrowError::storage("read operators"))?
                .ok_or_else(|| EscrowError::UnknownOperator { id: id.to_string() })?;
            let token = s.issue_token(tx, &op)?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "token_issue",
                Some(&target),
                None,
                "done",
            )?;
            Ok(Enrolled {
                operator: info(tx, &op)?,
                token: token.expose().to_string(),
            })
        })
    }

    /// All operators (admin, auditor).
    pub fn operators(&self, actor: &Actor) -> Result<Vec<OperatorInfo>, EscrowError> {
        self.authorize(actor, Action::ListOperators)?;
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let rows = tx
            .operators()
            .map_err(EscrowError::storage("read operators"))?;
        rows.iter().map(|r| info(tx.as_mut(), r)).collect()
    }

    /// Disables an operator and deletes their tokens (admin).
    pub fn disable_operator(&self, actor: &Actor, id: &OperatorId) -> Result<(), EscrowError> {
        self.authorize(actor, Action::ManageOperators)?;
        let target = format!("operator {id}");
        let res = self.write(|s, tx, _| {
            let mut op = tx
                .operator_get(id.as_str())
                .map_err(EscrowError::storage("read operators"))?
                .ok_or_else(|| EscrowError::UnknownOperator { id: id.to_string() })?;
            op.disabled = true;
            tx.operator_update(&op)
                .map_err(EscrowError::storage("update an operator"))?;
            tx.tokens_delete(id.as_str())
                .map_err(EscrowError::storage("delete tokens"))?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "operator_disable",
                Some(&target),
                None,
                "done",
            )?;
            Ok(())
        });
        res.map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "operator_disable",
                Some(&target),
                None,
                e,
            )
        })
    }

    /// The agreement text and its hash (any authenticated operator, active or not).
    pub fn agreement(&self, actor: &Actor) -> Result<Agreement, EscrowError> {
        self.authorize(actor, Action::Account)?;
        Ok(Agreement {
            text: AGREEMENT_TEXT.to_owned(),
            sha256: hex::encode(agreement_sha256()),
        })
    }

    /// Records the actor's acknowledgement of the agreement whose SHA-256 is `sha256_hex`.
    pub fn acknowledge(&self, actor: &Actor, sha256_hex: &str) -> Result<(), EscrowError> {
        self.authorize(actor, Action::Account)?;
        let res = self.write(|s, tx, _| {
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                sha256_hex.as_bytes(),
                hex::encode(agreement_sha256()).as_bytes(),
            )) {
                return Err(EscrowError::AgreementMismatch);
            }
            let mut op = tx
                .operator_get(actor.operator.as_str())
                .map_err(EscrowError::storage("read operators"))?
                .ok_or_else(|| EscrowError::UnknownOperator {
                    id: actor.operator.to_string(),
                })?;
            op.ack_hash = Some(agreement_sha256());
            op.ack_at = Some(s.now());
            tx.operator_update(&op)
                .map_err(EscrowError::storage("update an operator"))?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "agreement_acknowledge",
                None,
                None,
                &format!("done: sha256 {sha256_hex}"),
            )?;
            Ok(())
        });
        res.map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "agreement_acknowledge",
                None,
                None,
                e,
            )
        })
    }

    /// The caller's own account.
    pub fn whoami(&self, actor: &Actor) -> Result<WhoAmI, EscrowError> {
        self.authorize(actor, Action::Account)?;
        Ok(WhoAmI {
            id: actor.operator.clone(),
            role: actor.role,
            status: actor.status,
            token_expires_at: actor.token_expires_at,
        })
    }

    /// The retention policy.
    pub fn retention(&self, actor: &Actor) -> Result<RetentionPolicy, EscrowError> {
        self.authorize(actor, Action::ReadRetention)?;
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        read_retention(tx.as_mut())
    }

    /// Sets the retention (admin) for `line`, or the default; `days` is validated here (negative
    /// and absurd values are refused). Epochs for the new period are created at once.
    pub fn set_retention(
        &self,
        actor: &Actor,
        days: i64,
        line: Option<&LineId>,
    ) -> Result<RetentionPolicy, EscrowError> {
        self.authorize(actor, Action::SetRetention)?;
        let target = line.map_or_else(
            || "retention default".to_owned(),
            |l| format!("retention line {l}"),
        );
        let res = self.write(|s, tx, _| {
            let days = RetentionDays::new(days)?;
            match line {
                Some(l) => tx.retention_set(l.as_str(), days.get(), s.now()),
                None => tx.meta_set(META_DEFAULT_RETENTION, days.get().to_string().as_bytes()),
            }
            .map_err(EscrowError::storage("write the retention policy"))?;
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "retention_set",
                Some(&target),
                None,
                &format!("done: {} days", days.get()),
            )?;
            read_retention(tx)
        });
        let policy = res.map_err(|e| {
            self.denied(
                actor.operator.as_str(),
                "retention_set",
                Some(&target),
                None,
                e,
            )
        })?;
        self.tick()?;
        Ok(policy)
    }

    /// An admin confirms the wall clock is right after an alert; shredding resumes.
    pub fn confirm_clock(&self, actor: &Actor) -> Result<(), EscrowError> {
        self.authorize(actor, Action::OperateRetention)?;
        let now: Timestamp = self.now();
        self.write(|s, tx, _| {
            s.audit_append(
                tx,
                actor.operator.as_str(),
                "clock_confirm",
                None,
                None,
                &format!("done: wall clock {now}"),
            )?;
            Ok(())
        })?;
        {
            let mut inner = self.lock()?;
            inner.scheduler.confirm_clock(now, self.clock.mono());
        }
        if let Ok(mut a) = self.alert.lock() {
            *a = None;
        }
        self.tick()?;
        Ok(())
    }
}
