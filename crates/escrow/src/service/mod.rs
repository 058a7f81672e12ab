//! The escrow service: every operation, its authorization, its audit entry and its storage
//! transaction. Synchronous and thread-safe (one mutex around storage and the keyring: SQLite
//! has one writer anyway); the HTTPS server and an in-process gateway both call it.
//!
//! Every operation takes the [`Actor`] that asks, checks the role × action table
//! ([`Action::allowed`]) and the account status, and writes its audit entry in the same
//! transaction as its effect (fail closed: no audit entry, no effect, no answer).

mod admin;
mod audit;
mod records;
mod shred;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::Clock;
use crate::clock::{ClockAlert, ClockVerdict};
use crate::datadir::{DataDir, InitOptions, InitReport};
use crate::error::EscrowError;
use crate::ids::{GatewayId, OperatorId, Role, Timestamp};
use crate::keyring::Keyring;
use crate::model::{Health, OperatorStatus};
use crate::retention::{RetentionConfig, RetentionScheduler};
use crate::secret::{IdentityKey, Token};
use crate::store::{SqliteStore, Storage, Tx};

pub use admin::AGREEMENT_TEXT;
pub use audit::{verify_chain, verify_receipt};
pub use shred::TickReport;

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Retention scheduler settings.
    pub retention: RetentionConfig,
    /// Lifetime of operator tokens.
    pub token_lifetime: Duration,
    /// Lifetime of gateway tokens.
    pub gateway_token_lifetime: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            retention: RetentionConfig::default(),
            token_lifetime: Duration::from_secs(90 * 86_400),
            gateway_token_lifetime: Duration::from_secs(3650 * 86_400),
        }
    }
}

/// A step of a shred at which tests can simulate a crash (the operation stops there with
/// [`EscrowError::InjectedCrash`]; the test drops the service and opens it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The epoch was moved to pending destruction (committed).
    AfterBegin,
    /// Secret and key rows deleted, receipt and audit written (committed).
    AfterDestroy,
    /// The keyring file holds the old and the next table key.
    AfterStage,
    /// Every row is re-sealed under the next table key (committed).
    AfterReseal,
    /// The WAL was checkpointed and truncated.
    AfterCheckpoint,
}

impl CrashPoint {
    /// Every step, in order.
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::AfterBegin,
        CrashPoint::AfterDestroy,
        CrashPoint::AfterStage,
        CrashPoint::AfterReseal,
        CrashPoint::AfterCheckpoint,
    ];
}

/// Who is asking: an authenticated operator (or the in-process gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Account id.
    pub operator: OperatorId,
    /// Role.
    pub role: Role,
    /// Account status.
    pub status: OperatorStatus,
    /// Expiry of the token used (far future for in-process actors).
    pub token_expires_at: Timestamp,
}

impl Actor {
    /// The gateway running in the same process as the escrow (`callseal serve`): trusted by
    /// construction, as it shares the process and its data folder.
    pub fn local_gateway(id: &GatewayId) -> Result<Actor, EscrowError> {
        Ok(Actor {
            operator: OperatorId::new(id.as_str())?,
            role: Role::Gateway,
            status: OperatorStatus::Active,
            token_expires_at: Timestamp::from_unix_ms(i64::MAX),
        })
    }
}

/// What an actor wants to do; the role table lives in [`Action::allowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deposit wrapped keys.
    Deposit,
    /// Fetch the signed epoch table.
    EpochTable,
    /// List epochs with their states.
    ListEpochs,
    /// List and show recording metadata.
    ReadRecordings,
    /// Obtain a purpose-bound key release.
    ReleaseKey,
    /// Erase a recording.
    Erase,
    /// Place or lift a legal hold.
    Hold,
    /// Enrol and disable operators.
    ManageOperators,
    /// List operators.
    ListOperators,
    /// Read and acknowledge the agreement; see one's own account.
    Account,
    /// Read the retention policy.
    ReadRetention,
    /// Change the retention policy.
    SetRetention,
    /// Read and verify the audit log, read receipts.
    ReadAudit,
    /// Confirm the clock, cancel a pending shred.
    OperateRetention,
}

impl Action {
    /// Every action (for the role × action matrix tests).
    pub const ALL: [Action; 14] = [
        Action::Deposit,
        Action::EpochTable,
        Action::ListEpochs,
        Action::ReadRecordings,
        Action::ReleaseKey,
        Action::Erase,
        Action::Hold,
        Action::ManageOperators,
        Action::ListOperators,
        Action::Account,
        Action::ReadRetention,
        Action::SetRetention,
        Action::ReadAudit,
        Action::OperateRetention,
    ];

    /// The one role table (separation of duties: admins cannot listen, listeners cannot
    /// administer, gateways only deposit, fetch epochs and erase on withdrawn consent).
    pub fn allowed(self, role: Role) -> bool {
        use Role::*;
        match self {
            Action::Deposit => role == Gateway,
            Action::EpochTable => matches!(role, Gateway | Admin | Auditor),
            Action::ListEpochs => matches!(role, Admin | Auditor),
            Action::ReadRecordings => matches!(role, Admin | Auditor | Listener),
            Action::ReleaseKey => role == Listener,
            Action::Erase => matches!(role, Admin | Gateway),
            Action::Hold
            | Action::ManageOperators
            | Action::SetRetention
            | Action::OperateRetention => role == Admin,
            Action::ListOperators => matches!(role, Admin | Auditor),
            Action::Account => true,
            Action::ReadRetention => matches!(role, Admin | Auditor | Gateway),
            Action::ReadAudit => matches!(role, Admin | Auditor),
        }
    }

    /// What the action is called in messages and audit entries.
    pub fn name(self) -> &'static str {
        match self {
            Action::Deposit => "deposit",
            Action::EpochTable => "fetch the epoch table",
            Action::ListEpochs => "list epochs",
            Action::ReadRecordings => "read recording metadata",
            Action::ReleaseKey => "obtain a key release",
            Action::Erase => "erase a recording",
            Action::Hold => "place or lift a legal hold",
            Action::ManageOperators => "manage operators",
            Action::ListOperators => "list operators",
            Action::Account => "use the account",
            Action::ReadRetention => "read the retention policy",
            Action::SetRetention => "change the retention policy",
            Action::ReadAudit => "read the audit log",
            Action::OperateRetention => "operate retention",
        }
    }

    fn roles(self) -> String {
        [Role::Admin, Role::Auditor, Role::Listener, Role::Gateway]
            .into_iter()
            .filter(|r| self.allowed(*r))
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Fault injection for tests of crash recovery and fail-closed audit. Not for production use.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Faults {
    crash: Mutex<Option<CrashPoint>>,
    audit_fail: AtomicBool,
}

impl Faults {
    /// Stop the next shred at `point`.
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        if let Ok(mut c) = self.crash.lock() {
            *c = point;
        }
    }
    /// Make every audit append fail.
    pub fn fail_audit(&self, on: bool) {
        self.audit_fail.store(on, Ordering::SeqCst);
    }
    pub(crate) fn check(&self, point: CrashPoint) -> Result<(), EscrowError> {
        let hit = self
            .crash
            .lock()
            .map(|c| *c == Some(point))
            .unwrap_or(false);
        if hit {
            Err(EscrowError::InjectedCrash { point })
        } else {
            Ok(())
        }
    }
    pub(crate) fn audit_fails(&self) -> bool {
        self.audit_fail.load(Ordering::SeqCst)
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub deposits: AtomicU64,
    pub releases: AtomicU64,
    pub denials: AtomicU64,
    pub shreds: AtomicU64,
    pub erasures: AtomicU64,
    pub clock_alerts: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) struct Inner {
    pub store: Box<dyn Storage>,
    pub keyring: Keyring,
    pub scheduler: RetentionScheduler,
}

/// The key escrow.
pub struct Service {
    inner: Mutex<Inner>,
    identity: IdentityKey,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    metrics: Metrics,
    alert: Mutex<Option<ClockAlert>>,
    /// Fault injection (tests only).
    #[doc(hidden)]
    pub faults: Faults,
}

impl Service {
    /// Opens the escrow in `dir` (created by [`crate::datadir::init`]), finishing any shred a
    /// crash interrupted, and runs one retention round.
    pub fn open(
        dir: &DataDir,
        config: ServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, EscrowError> {
        dir.check_initialised()?;
        let identity = IdentityKey::load(&dir.identity_key())?;
        let keyring = Keyring::open(&dir.keyring())?;
        let store = SqliteStore::open(&dir.database())
            .map_err(EscrowError::storage("open the database"))?;
        Self::assemble(Box::new(store), keyring, identity, config, clock)
    }

    /// Opens the escrow in `data`/escrow, creating the whole data folder first if it does not
    /// exist (`callseal serve` on a fresh machine). Returns what was created, if anything.
    pub fn open_or_init(
        data: &std::path::Path,
        opts: &InitOptions,
        config: ServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(Arc<Service>, Option<InitReport>), EscrowError> {
        let dir = DataDir::new(data);
        let report = if dir.is_initialised() {
            None
        } else {
            Some(crate::datadir::init(data, opts, &config, clock.clone())?)
        };
        Ok((Arc::new(Service::open(&dir, config, clock)?), report))
    }

    pub(crate) fn assemble(
        store: Box<dyn Storage>,
        keyring: Keyring,
        identity: IdentityKey,
        config: ServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, EscrowError> {
        let scheduler = RetentionScheduler::new(config.retention.clone());
        let svc = Service {
            inner: Mutex::new(Inner {
                store,
                keyring,
                scheduler,
            }),
            identity,
            clock,
            config,
            metrics: Metrics::default(),
            alert: Mutex::new(None),
            faults: Faults::default(),
        };
        svc.recover()?;
        svc.resume_clock()?;
        svc.tick()?;
        Ok(svc)
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>, EscrowError> {
        self.inner.lock().map_err(|_| EscrowError::Internal {
            what: "escrow state lock poisoned by an earlier panic".into(),
        })
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.wall()
    }

    /// The identity public key (what gateways and operators pin), 64 hex digits.
    pub fn identity_hex(&self) -> String {
        hex::encode(self.identity.verifying_key().as_bytes())
    }

    /// The identity public key.
    pub fn identity_public(&self) -> ed25519_dalek::VerifyingKey {
        self.identity.verifying_key()
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Checks a bearer token and returns who holds it. Unknown tokens are not audited (that
    /// would let anyone grow the log); expired tokens and disabled accounts are.
    pub fn authenticate(&self, bearer: &str) -> Result<Actor, EscrowError> {
        let token = Token::parse(bearer.trim())?;
        let now = self.now();
        let mut inner = self.lock()?;
        let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
        let Some(row) = tx
            .token_get(&token.hash())
            .map_err(EscrowError::storage("look up a token"))?
        else {
            bump(&self.metrics.denials);
            return Err(EscrowError::Unauthenticated);
        };
        let op = tx
            .operator_get(&row.operator)
            .map_err(EscrowError::storage("look up an operator"))?
            .ok_or(EscrowError::Unauthenticated)?;
        drop(tx);
        drop(inner);
        if row.expires_at <= now {
            let err = EscrowError::TokenExpired {
                operator: op.id.clone(),
            };
            return Err(self.denied(&op.id, "authenticate", None, None, err));
        }
        let status = admin::status_of(&op);
        if status == OperatorStatus::Disabled {
            let err = EscrowError::OperatorInactive {
                operator: op.id.clone(),
                status: "disabled",
            };
            return Err(self.denied(&op.id, "authenticate", None, None, err));
        }
        let role = op.role.parse::<Role>().map_err(|_| EscrowError::Internal {
            what: "stored role is unknown".into(),
        })?;
        Ok(Actor {
            operator: OperatorId::new(&op.id)?,
            role,
            status,
            token_expires_at: row.expires_at,
        })
    }

    /// Checks that `actor` may perform `action`; a refusal is audited.
    pub fn authorize(&self, actor: &Actor, action: Action) -> Result<(), EscrowError> {
        if !action.allowed(actor.role) {
            let err = EscrowError::Forbidden {
                operator: actor.operator.to_string(),
                role: actor.role.to_string(),
                action: action.name(),
                needed: action.roles(),
            };
            return Err(self.denied(actor.operator.as_str(), action.name(), None, None, err));
        }
        if action != Action::Account && actor.status != OperatorStatus::Active {
            let status = if actor.status == OperatorStatus::Disabled {
                "disabled"
            } else {
                "not active (agreement not acknowledged)"
            };
            let err = EscrowError::OperatorInactive {
                operator: actor.operator.to_string(),
                status,
            };
            return Err(self.denied(actor.operator.as_str(), action.name(), None, None, err));
        }
        Ok(())
    }

    /// Audits a refusal in its own transaction and returns the error. If even that fails, the
    /// refusal stands (it was refused anyway) and the metrics count it.
    pub(crate) fn denied(
        &self,
        actor: &str,
        action: &str,
        target: Option<&str>,
        purpose: Option<&str>,
        err: EscrowError,
    ) -> EscrowError {
        bump(&self.metrics.denials);
        if matches!(
            err,
            EscrowError::Storage { .. }
                | EscrowError::Internal { .. }
                | EscrowError::AuditUnavailable { .. }
        ) {
            return err;
        }
        let outcome = format!("denied: {}", err.code());
        let _ = self.write(|s, tx, _| {
            s.audit_append(tx, actor, action, target, purpose, &outcome)
                .map(|_| ())
        });
        err
    }

    /// Runs `f` in one storage transaction and commits it.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Service, &mut dyn Tx, &Keyring) -> Result<T, EscrowError>,
    ) -> Result<T, EscrowError> {
        let mut inner = self.lock()?;
        let Inner { store, keyring, .. } = &mut *inner;
        let mut tx = store.begin().map_err(EscrowError::storage("begin"))?;
        let out = f(self, tx.as_mut(), keyring)?;
        tx.commit().map_err(EscrowError::storage("commit"))?;
        Ok(out)
    }

    /// Health: clock trust, pending epochs, identity.
    pub fn health(&self) -> Result<Health, EscrowError> {
        let alert = self.alert.lock().ok().and_then(|a| *a);
        let (trusted, pending) = {
            let mut inner = self.lock()?;
            let trusted = inner.scheduler.verdict() == ClockVerdict::Trusted;
            let mut tx = inner.store.begin().map_err(EscrowError::storage("begin"))?;
            let pending = tx
                .epochs(false)
                .map_err(EscrowError::storage("list epochs"))?
                .iter()
                .filter(|e| e.phase == crate::retention::EpochPhase::PendingDestruction)
                .count() as u64;
            (trusted, pending)
        };
        Ok(Health {
            status: if trusted {
                "ok".into()
            } else {
                "degraded".into()
            },
            clock_trusted: trusted,
            alert: if trusted {
                None
            } else {
                alert.map(describe_alert)
            },
            identity: self.identity_hex(),
            pending_epochs: pending,
        })
    }

    /// Prometheus text exposition (no labels carry personal data).
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let trusted = self
            .lock()
            .map(|i| i.scheduler.verdict() == ClockVerdict::Trusted)
            .unwrap_or(false);
        let mut out = String::new();
        for (name, help, v) in [
            (
                "callseal_escrow_deposits_total",
                "Wrapped keys stored.",
                load(&m.deposits),
            ),
            (
                "callseal_escrow_key_releases_total",
                "Keys released to listeners.",
                load(&m.releases),
            ),
            (
                "callseal_escrow_denials_total",
                "Requests refused.",
                load(&m.denials),
            ),
            (
                "callseal_escrow_epochs_shredded_total",
                "Epochs destroyed.",
                load(&m.shreds),
            ),
            (
                "callseal_escrow_erasures_total",
                "Recordings erased.",
                load(&m.erasures),
            ),
            (
                "callseal_escrow_clock_alerts_total",
                "Wall-clock alerts raised.",
                load(&m.clock_alerts),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP callseal_escrow_clock_trusted 1 if the wall clock is trusted for shredding.\n# TYPE callseal_escrow_clock_trusted gauge\ncallseal_escrow_clock_trusted {}\n",
            u8::from(trusted)
        ));
        out
    }
}

pub(crate) fn describe_alert(a: ClockAlert) -> String {
    match a {
        ClockAlert::JumpedForward { ahead_ms } => {
            format!(
                "the wall clock jumped {ahead_ms} ms ahead of monotonic time; shredding is suspended until an admin confirms the clock"
            )
        }
        ClockAlert::JumpedBackward { behind_ms } => {
            format!("the wall clock jumped {behind_ms} ms backward; shredding is delayed")
        }
        ClockAlert::UnobservedGap { gap_ms } => format!(
            "the escrow was not running for {gap_ms} ms (or the clock was set ahead while it was stopped); shredding is suspended until an admin confirms the clock"
        ),
    }
}
