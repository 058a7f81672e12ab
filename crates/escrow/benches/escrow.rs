//! Escrow throughput: deposits per second (target ≥ 5 000/s) and the destruction of an epoch
//! holding 1 000 000 recordings (target < 10 s), each printed next to a reference measured in
//! the same run on the same disk: raw SQLite inserts / deletes of rows of the same shape with the
//! same pragmas, so the ratio shows what the escrow's own work (sealing, audit, idempotency,
//! table-key rotation) costs.
//!
//! `CALLSEAL_BENCH_SHRED_N` sets the epoch size (default 1 000 000); with a smaller N the
//! 1 000 000 figure is extrapolated linearly and labelled as such.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use callseal_escrow::keyring::Keyring;
use callseal_escrow::store::{KeyKind, RecordingRow, RecordingState, SqliteStore, Storage};
use callseal_escrow::*;
use callseal_recording::keys::{DataKey, EpochId, RecordingId, wrap};
use criterion::Criterion;
use rusqlite::{Connection, params};

const T0: Timestamp = Timestamp::from_unix_ms(1_764_720_000_000);
const DAY_MS: u64 = 86_400_000;

struct Bench {
    _dir: tempfile::TempDir,
    svc: Arc<Service>,
    clock: Arc<ManualClock>,
    gateway: Actor,
    epoch: EpochId,
    public: callseal_recording::keys::PublicKey,
    data: std::path::PathBuf,
}

fn config() -> ServiceConfig {
    let mut c = ServiceConfig::default();
    c.retention.lookahead_days = 1;
    c
}

fn setup() -> Bench {
    let dir = tempfile::tempdir_in(
        std::env::var_os("CALLSEAL_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let report = datadir::init(
        dir.path(),
        &InitOptions::default(),
        &config(),
        clock.clone(),
    )
    .unwrap();
    let token = std::fs::read_to_string(&report.gateway_token_file).unwrap();
    let svc = Arc::new(Service::open(&DataDir::new(dir.path()), config(), clock.clone()).unwrap());
    let gateway = svc.authenticate(token.trim()).unwrap();
    let table = svc
        .epoch_table(&gateway)
        .unwrap()
        .verify(&svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, None).unwrap().clone();
    Bench {
        data: dir.path().to_owned(),
        _dir: dir,
        svc,
        clock,
        gateway,
        epoch: e.epoch,
        public: e.public_key,
    }
}

/// Deposits with real HPKE-wrapped keys (wrapping is the gateway's work, done before timing).
fn deposits(b: &Bench, n: usize) -> Vec<Deposit> {
    let key = DataKey::generate().unwrap();
    (0..n)
        .map(|_| {
            let id = RecordingId::generate().unwrap();
            Deposit {
                recording: id,
                epoch: b.epoch,
                wrapped_key: wrap(&key, id, b.epoch, &b.public).unwrap(),
                caller_code: CallerCode::new("C-7KQ2-9XMD").unwrap(),
                line: LineId::new("general").unwrap(),
                gateway: GatewayId::new("gateway").unwrap(),
                started_at: T0,
                ended_at: Some(T0.plus_ms(600_000)),
                consent: ConsentEvidence {
                    digit: Some('1'),
                    decided_at: T0,
                    prompt_sha256: "ab".repeat(32),
                    gateway_key: None,
                    signature: None,
                },
            }
        })
        .collect()
}

fn deposit_rate(b: &Bench, batch: usize, n: usize) -> f64 {
    let ds = deposits(b, n);
    let t = Instant::now();
    for chunk in ds.chunks(batch) {
        for r in b.svc.deposit_batch(&b.gateway, chunk).unwrap() {
            assert_eq!(r.unwrap(), DepositOutcome::Stored);
        }
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// The same two rows per recording, inserted with plain SQL under the same pragmas.
fn raw_insert_rate(batch: usize, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let c = raw_db(&dir.path().join("raw.db"));
    let blob = vec![7u8; 131];
    let t = Instant::now();
    let mut id = 0u64;
    for _ in 0..n / batch {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        {
            let mut r = c.prepare_cached("INSERT INTO recordings VALUES (?1, 1, 'general', 'C-7KQ2-9XMD', 'gateway', 1, 2, ?2, ?3, 3, 'active', NULL, NULL)").unwrap();
            let mut k = c
                .prepare_cached("INSERT INTO keys (id, kind, epoch, sealed) VALUES (?1, 0, 1, ?2)")
                .unwrap();
            for _ in 0..batch {
                id += 1;
                let key = [id.to_be_bytes(), id.to_le_bytes()].concat();
                r.execute(params![key, &blob[..80], &blob[..32]]).unwrap();
                k.execute(params![key, blob]).unwrap();
            }
        }
        c.execute_batch("COMMIT").unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn raw_db(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).unwrap();
    let _: String = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.pragma_update(None, "secure_delete", "ON").unwrap();
    c.execute_batch(
        "CREATE TABLE recordings (id BLOB PRIMARY KEY, epoch INTEGER, line TEXT, caller_code TEXT, gateway TEXT, started_at INTEGER, \
         ended_at INTEGER, consent BLOB, digest BLOB, deposited_at INTEGER, state TEXT, reason TEXT, destroyed_at INTEGER) WITHOUT ROWID;
         CREATE INDEX recordings_epoch ON recordings(epoch);
         CREATE TABLE keys (id BLOB NOT NULL, kind INTEGER NOT NULL, epoch INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (id, kind));
         CREATE INDEX keys_epoch ON keys(epoch, kind);",
    )
    .unwrap();
    c
}

/// Fills `epoch` with `n` recordings directly through the storage layer (set-up, not timed:
/// the deposit path is measured above), sealed under the real keyring.
fn fill(
    data: &std::path::Path,
    epoch: EpochId,
    public: &callseal_recording::keys::PublicKey,
    n: usize,
) {
    let dir = DataDir::new(data);
    let kr = Keyring::open(&dir.keyring()).unwrap();
    let mut store = SqliteStore::open(&dir.database()).unwrap();
    let key = DataKey::generate().unwrap();
    let proto = wrap(&key, RecordingId::from_bytes([0; 16]), epoch, public)
        .unwrap()
        .to_bytes();
    let mut done = 0;
    while done < n {
        let mut tx = store.begin().unwrap();
        for _ in 0..50_000.min(n - done) {
            done += 1;
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(done as u64).to_be_bytes());
            id[8..].copy_from_slice(&u64::from(epoch.0).to_be_bytes());
            tx.recording_insert(&RecordingRow {
                id,
                epoch: epoch.0,
                line: "general".into(),
                caller_code: "C-7KQ2-9XMD".into(),
                gateway: "gateway".into(),
                started_at: T0,
                ended_at: Some(T0),
                consent: b"{}".to_vec(),
                digest: [1; 32],
                deposited_at: T0,
                state: RecordingState::Active,
                reason: None,
                destroyed_at: None,
            })
            .unwrap();
            let sealed = kr
                .seal(&callseal_escrow::keyring::RowSlot::RecordingKey(id), &proto)
                .unwrap();
            tx.key_put(&id, KeyKind::Epoch, epoch.0, &sealed).unwrap();
        }
        tx.commit().unwrap();
    }
    store.purge_logs().unwrap();
}

fn raw_delete_secs(n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let c = raw_db(&dir.path().join("raw.db"));
    let blob = vec![7u8; 131];
    c.execute_batch("BEGIN").unwrap();
    {
        let mut k = c
            .prepare("INSERT INTO keys (id, kind, epoch, sealed) VALUES (?1, 0, 1, ?2)")
            .unwrap();
        for i in 0..n as u64 {
            k.execute(params![[i.to_be_bytes(), i.to_le_bytes()].concat(), blob])
                .unwrap();
        }
    }
    c.execute_batch("COMMIT").unwrap();
    let t = Instant::now();
    c.execute("DELETE FROM keys WHERE epoch = 1 AND kind = 0", [])
        .unwrap();
    let _: (i64, i64, i64) = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    t.elapsed().as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets the target"
    } else {
        "MISSES the target"
    }
}

fn main() {
    // Deposits.
    let b = setup();
    let n = 20_000;
    let batched = deposit_rate(&b, 100, n);
    let single = deposit_rate(&b, 1, 2_000);
    let raw = raw_insert_rate(100, n);
    println!(
        "deposits, batches of 100 (batch API): {batched:>9.0}/s  target >= 5000/s: {}",
        verdict(batched >= 5000.0)
    );
    println!("deposits, one per request/transaction:  {single:>9.0}/s  (each commit is an fsync)");
    println!(
        "reference: raw SQLite inserts (same rows, same pragmas, batches of 100): {raw:.0}/s; escrow/raw = {:.2}",
        batched / raw
    );

    // Criterion view of one batch of 100 (fresh ids every iteration).
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    c.bench_function("deposit_batch_100", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ds = deposits(&b, 100);
                let t = Instant::now();
                b.svc.deposit_batch(&b.gateway, &ds).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    drop(b);

    // Shredding one epoch.
    let n: usize = std::env::var("CALLSEAL_BENCH_SHRED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut b = setup();
    let other = 10_000;
    // Another epoch's rows: the rotation after the shred must re-seal them.
    let later = {
        let table = b
            .svc
            .epoch_table(&b.gateway)
            .unwrap()
            .verify(&b.svc.identity_public())
            .unwrap();
        table
            .epochs
            .iter()
            .find(|e| e.epoch != b.epoch)
            .unwrap()
            .clone()
    };
    let (svc, clock, data, epoch, public) = (
        b.svc,
        b.clock.clone(),
        b.data.clone(),
        b.epoch,
        b.public.clone(),
    );
    drop(svc);
    let t = Instant::now();
    fill(&data, epoch, &public, n);
    fill(&data, later.epoch, &later.public_key, other);
    println!(
        "(set-up: {} + {other} recordings written in {:.1} s)",
        n,
        t.elapsed().as_secs_f64()
    );
    b.svc = Arc::new(Service::open(&DataDir::new(&data), config(), clock.clone()).unwrap());
    for _ in 0..30 {
        clock.advance(Duration::from_millis(DAY_MS));
        b.svc.tick().unwrap();
    }
    clock.advance(Duration::from_millis(DAY_MS));
    let r = b.svc.tick().unwrap();
    assert!(r.begun.contains(&epoch.0), "{r:?}");
    clock.advance(Duration::from_secs(3600));
    let t = Instant::now();
    let r = b.svc.tick().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(r.destroyed.contains(&epoch.0), "{r:?}");
    let raw = raw_delete_secs(n);
    let per_million = secs * 1_000_000.0 / n as f64;
    if n == 1_000_000 {
        println!(
            "shred of an epoch of 1 000 000 recordings (delete, receipt, audit, re-seal {other} others, checkpoint, key rotation): {secs:.2} s  target < 10 s: {}",
            verdict(secs < 10.0)
        );
    } else {
        println!("shred of an epoch of {n} recordings: {secs:.2} s");
        println!(
            "EXTRAPOLATED linearly to 1 000 000 recordings: {per_million:.2} s  target < 10 s: {}",
            verdict(per_million < 10.0)
        );
    }
    println!(
        "reference: raw SQLite delete of {n} key rows + checkpoint (secure_delete on): {raw:.2} s; escrow/raw = {:.2}",
        secs / raw
    );
}
