//! Shared set-up of the escrow tests: a real data folder in a temp dir, a manual clock, the
//! init accounts, listeners with their own keys, and deposits of real HPKE-wrapped keys.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use callseal_escrow::retention::RetentionConfig;
use callseal_escrow::*;
use callseal_recording::keys::{
    DataKey, EpochId, RecordingId, SecretKey, WrappedKey, unwrap, wrap,
};
use callseal_recording::{Leg, Reader, Writer, WriterConfig};
use rusqlite::OptionalExtension;

/// 2025-12-03T00:00Z.
pub const T0: Timestamp = Timestamp::from_unix_ms(1_764_720_000_000);
pub const DAY: i64 = 86_400_000;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub config: ServiceConfig,
    pub svc: Arc<Service>,
    pub admin: Actor,
    pub gateway: Actor,
    pub admin_token: String,
    pub gateway_token: String,
}

pub fn config() -> ServiceConfig {
    ServiceConfig {
        retention: RetentionConfig {
            pending_window: Duration::from_secs(3600),
            lookahead_days: 2,
            clock_tolerance: Duration::from_secs(60),
            max_unobserved_gap: Duration::from_secs(36 * 3600),
        },
        ..ServiceConfig::default()
    }
}

pub fn env() -> Env {
    env_with(config(), 30)
}

pub fn env_with(config: ServiceConfig, default_days: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = InitOptions {
        default_retention_days: default_days,
        ..InitOptions::default()
    };
    let report = datadir::init(dir.path(), &opts, &config, clock.clone()).unwrap();
    let gateway_token = std::fs::read_to_string(&report.gateway_token_file)
        .unwrap()
        .trim()
        .to_owned();
    let admin_token = report.admin_token.expose().to_string();
    let svc =
        Arc::new(Service::open(&DataDir::new(dir.path()), config.clone(), clock.clone()).unwrap());
    let admin = activate(&svc, &admin_token);
    let gateway = svc.authenticate(&gateway_token).unwrap();
    Env {
        dir,
        clock,
        config,
        svc,
        admin,
        gateway,
        admin_token,
        gateway_token,
    }
}

/// Authenticates and acknowledges the agreement.
pub fn activate(svc: &Service, token: &str) -> Actor {
    let a = svc.authenticate(token).unwrap();
    let ag = svc.agreement(&a).unwrap();
    svc.acknowledge(&a, &ag.sha256).unwrap();
    svc.authenticate(token).unwrap()
}

pub struct Listener {
    pub actor: Actor,
    pub token: String,
    pub secret: SecretKey,
}

impl Env {
    pub fn data(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn datadir(&self) -> DataDir {
        DataDir::new(self.dir.path())
    }

    /// "Kills" the service (drops it without any clean-up) and opens it again from disk.
    pub fn restart(self) -> Env {
        let Env {
            dir,
            clock,
            config,
            svc,
            admin_token,
            gateway_token,
            ..
        } = self;
        assert_eq!(Arc::strong_count(&svc), 1, "the service is still shared");
        drop(svc);
        let svc = Arc::new(
            Service::open(&DataDir::new(dir.path()), config.clone(), clock.clone()).unwrap(),
        );
        let admin = svc.authenticate(&admin_token).unwrap();
        let gateway = svc.authenticate(&gateway_token).unwrap();
        Env {
            dir,
            clock,
            config,
            svc,
            admin,
            gateway,
            admin_token,
            gateway_token,
        }
    }

    /// A new listener ("ana") releases and opens the key of each of `sealed`.
    pub fn assert_each_opens(&self, sealed: &[Sealed]) {
        let l = self.listener("ana");
        for s in sealed {
            let r = self
                .svc
                .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
                .unwrap();
            assert!(s.opens_with(&r.wrapped_key, &l.secret));
        }
    }

    pub fn listener(&self, name: &str) -> Listener {
        let secret = SecretKey::generate().unwrap();
        let new = NewOperator {
            id: OperatorId::new(name).unwrap(),
            role: Role::Listener,
            public_key: Some(secret.public_key()),
        };
        let en = self.svc.add_operator(&self.admin, &new).unwrap();
        let actor = activate(&self.svc, &en.token);
        Listener {
            actor,
            token: en.token,
            secret,
        }
    }

    pub fn operator(&self, name: &str, role: Role) -> (Actor, String) {
        let new = NewOperator {
            id: OperatorId::new(name).unwrap(),
            role,
            public_key: None,
        };
        let en = self.svc.add_operator(&self.admin, &new).unwrap();
        (activate(&self.svc, &en.token), en.token)
    }

    /// Deposits a recording started at `started` on `line`; returns it with its data key and a
    /// small sealed recording written with that key.
    pub fn deposit(&self, started: Timestamp, line: &str) -> Sealed {
        let table = self
            .svc
            .epoch_table(&self.gateway)
            .unwrap()
            .verify(&self.svc.identity_public())
            .unwrap();
        let line = LineId::new(line).unwrap();
        let entry = table
            .epoch_for(started, Some(&line))
            .expect("epoch in table")
            .clone();
        let s = sealed(entry.epoch, &entry.public_key);
        let d = s.deposit(started, &line);
        assert_eq!(
            self.svc.deposit(&self.gateway, &d).unwrap(),
            DepositOutcome::Stored
        );
        s
    }
}

/// A recording written with its own data key, and the key wrapped to an epoch.
pub struct Sealed {
    pub id: RecordingId,
    pub epoch: EpochId,
    pub wrapped: WrappedKey,
    pub file: Vec<u8>,
}

pub fn sealed(epoch: EpochId, public: &callseal_recording::keys::PublicKey) -> Sealed {
    let key = DataKey::generate().unwrap();
    let id = RecordingId::generate().unwrap();
    let wrapped = wrap(&key, id, epoch, public).unwrap();
    let mut w = Writer::new(Vec::new(), &key, id, epoch, WriterConfig::default()).unwrap();
    w.push_frame(Leg::Caller, 0, Duration::ZERO, 0, &[0xff; 160])
        .unwrap();
    let file = w.finish().unwrap();
    Sealed {
        id,
        epoch,
        wrapped,
        file,
    }
}

impl Sealed {
    pub fn deposit(&self, started: Timestamp, line: &LineId) -> Deposit {
        Deposit {
            recording: self.id,
            epoch: self.epoch,
            wrapped_key: self.wrapped.clone(),
            caller_code: CallerCode::new("C-7KQ2-9XMD").unwrap(),
            line: line.clone(),
            gateway: GatewayId::new("gateway").unwrap(),
            started_at: started,
            ended_at: Some(started.plus_ms(60_000)),
            consent: ConsentEvidence {
                digit: Some('1'),
                decided_at: started,
                prompt_sha256: "ab".repeat(32),
                gateway_key: None,
                signature: None,
            },
        }
    }

    /// Whether a released key (wrapped to `secret`'s public key) opens this recording.
    pub fn opens_with(&self, released: &WrappedKey, secret: &SecretKey) -> bool {
        let Ok(key) = unwrap(released, secret) else {
            return false;
        };
        Reader::new(self.file.as_slice(), &key)
            .is_ok_and(|mut r| r.next_frame().is_ok_and(|f| f.is_some()))
    }
}

/// Every audit entry (as admin).
pub fn audit(env: &Env) -> Vec<AuditEntry> {
    let auditor = env.svc.authenticate(&env.admin_token).unwrap();
    env.svc.audit_entries(&auditor, 1, None, 10_000).unwrap()
}

/// Finds `needle` in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The escrow's files that may hold key material: database, WAL, shared memory, keyring.
pub fn escrow_files(data: &Path) -> Vec<(String, Vec<u8>)> {
    ["escrow.db", "escrow.db-wal", "escrow.db-shm", "keyring"]
        .iter()
        .filter_map(|n| {
            std::fs::read(data.join("escrow").join(n))
                .ok()
                .map(|b| (n.to_string(), b))
        })
        .collect()
}

/// Every `(what, bytes)` needle found in an escrow file, as "what in file".
pub fn scan(data: &Path, needles: &[(&str, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (name, bytes) in escrow_files(data) {
        for (what, n) in needles {
            if contains(&bytes, n) {
                hits.push(format!("{what} in {name}"));
            }
        }
    }
    hits
}

/// The current table key, read from the keyring file (magic, version, flag, generation, key).
pub fn table_key(env: &Env) -> Vec<u8> {
    std::fs::read(env.datadir().keyring()).unwrap()[14..46].to_vec()
}

/// A recording's sealed key row of `kind` (0: wrapped to its epoch, 1: to the hold key).
pub fn sealed_key_row(env: &Env, id: &RecordingId, kind: i64) -> Option<Vec<u8>> {
    let c = rusqlite::Connection::open(env.datadir().database()).unwrap();
    c.query_row(
        "SELECT sealed FROM keys WHERE id = ?1 AND kind = ?2",
        rusqlite::params![id.as_bytes().as_slice(), kind],
        |r| r.get(0),
    )
    .optional()
    .unwrap()
}

/// How many key rows a recording has left.
pub fn key_rows(env: &Env, id: &RecordingId) -> i64 {
    let c = rusqlite::Connection::open(env.datadir().database()).unwrap();
    c.query_row(
        "SELECT COUNT(*) FROM keys WHERE id = ?1",
        [id.as_bytes().as_slice()],
        |r| r.get(0),
    )
    .unwrap()
}

/// Everything the escrow stores: every row of every table, and the keyring file. Two equal
/// snapshots mean an operation left no trace.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    tables: Vec<(String, Vec<Vec<rusqlite::types::Value>>)>,
    keyring: Vec<u8>,
}

pub fn snapshot(env: &Env) -> Snapshot {
    let c = rusqlite::Connection::open(env.datadir().database()).unwrap();
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    let tables = names
        .into_iter()
        .map(|t| {
            let mut st = c
                .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2"))
                .unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (t, rows)
        })
        .collect();
    Snapshot {
        tables,
        keyring: std::fs::read(env.datadir().keyring()).unwrap(),
    }
}
