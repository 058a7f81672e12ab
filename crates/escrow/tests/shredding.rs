//! Crypto-shredding: nothing of a shredded key is left in the database, WAL or keyring; backups
//! taken before a shred are inert; a crash at any step resumes and never revives a key; a key
//! release racing a shred is either granted before the shred began or refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callseal_escrow::keyring::{Keyring, RowSlot};
use callseal_escrow::*;
use common::*;
use rusqlite::Connection;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["escrow.db", "escrow.db-wal", "escrow.db-shm", "keyring"]
        .iter()
        .filter_map(|n| {
            std::fs::read(dir.join("escrow").join(n))
                .ok()
                .map(|b| (n.to_string(), b))
        })
        .collect()
}

/// Secrets of epoch `epoch` as stored now: its sealed secret, its plaintext secret, the sealed
/// key rows, and the current table key from the keyring file.
struct Stored {
    sealed_secret: Vec<u8>,
    secret: Vec<u8>,
    sealed_keys: Vec<Vec<u8>>,
    table_key: Vec<u8>,
}

fn stored(env: &Env, epoch: u32) -> Stored {
    let c = Connection::open(env.datadir().database()).unwrap();
    let sealed_secret: Vec<u8> = c
        .query_row("SELECT secret FROM epochs WHERE epoch = ?1", [epoch], |r| {
            r.get(0)
        })
        .unwrap();
    let mut st = c
        .prepare("SELECT sealed FROM keys WHERE epoch = ?1 AND kind = 0")
        .unwrap();
    let sealed_keys: Vec<Vec<u8>> = st
        .query_map([epoch], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let kr = Keyring::open(&env.datadir().keyring()).unwrap();
    let secret = kr
        .open_row(&RowSlot::EpochSecret(epoch), &sealed_secret)
        .unwrap()
        .to_vec();
    let table_key = std::fs::read(env.datadir().keyring()).unwrap()[14..46].to_vec();
    Stored {
        sealed_secret,
        secret,
        sealed_keys,
        table_key,
    }
}

fn shred_epoch_of_t0(env: &Env) {
    env.clock.advance(Duration::from_millis(31 * DAY as u64));
    env.svc.tick().unwrap();
    env.clock.advance(Duration::from_secs(3600));
    let r = env.svc.tick().unwrap();
    assert_eq!(r.destroyed.len(), 1, "{r:?}");
}

#[test]
fn no_byte_of_a_shredded_key_is_left_on_disk() {
    let env = env();
    env.svc
        .set_retention(&env.admin, 90, Some(&LineId::new("ivf").unwrap()))
        .unwrap();
    let doomed: Vec<Sealed> = (0..20).map(|_| env.deposit(T0, "general")).collect();
    let kept: Vec<Sealed> = (0..5).map(|_| env.deposit(T0, "ivf")).collect();
    let epoch = doomed[0].epoch.0;
    let before = stored(&env, epoch);
    assert_eq!(before.sealed_keys.len(), 20);

    // Control: the scan does find the sealed rows while they exist.
    let all: Vec<u8> = files(&env.data())
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    assert!(
        contains(&all, &before.sealed_secret),
        "scan cannot see the sealed epoch secret"
    );
    assert!(
        before.sealed_keys.iter().all(|k| contains(&all, k)),
        "scan cannot see the sealed key rows"
    );
    assert!(contains(&all, &before.table_key));

    shred_epoch_of_t0(&env);

    let mut needles: Vec<(&str, Vec<u8>)> = vec![
        ("sealed epoch secret", before.sealed_secret.clone()),
        ("epoch secret", before.secret.clone()),
        ("old table key", before.table_key.clone()),
    ];
    needles.extend(
        before
            .sealed_keys
            .iter()
            .map(|k| ("sealed key row", k.clone())),
    );
    needles.extend(doomed.iter().map(|s| ("wrapped key", s.wrapped.to_bytes())));
    let mut hits = Vec::new();
    for (name, bytes) in files(&env.data()) {
        for (what, n) in &needles {
            if contains(&bytes, n) {
                hits.push(format!("{what} in {name}"));
            }
        }
    }
    assert_eq!(hits, Vec::<String>::new());

    // The other epoch's recordings still open.
    let l = env.listener("ana");
    for s in &kept {
        let r = env
            .svc
            .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
            .unwrap();
        assert!(s.opens_with(&r.wrapped_key, &l.secret));
    }
}

#[test]
fn a_backup_taken_before_the_shred_is_inert() {
    let env = env();
    env.svc
        .set_retention(&env.admin, 90, Some(&LineId::new("ivf").unwrap()))
        .unwrap();
    let doomed = env.deposit(T0, "general");
    let kept = env.deposit(T0, "ivf");
    let before = stored(&env, doomed.epoch.0);

    // The backup: a copy of the database (with its WAL) and of the keyring.
    let backup = tempfile::tempdir().unwrap();
    for (name, bytes) in files(&env.data()) {
        std::fs::write(backup.path().join(&name), bytes).unwrap();
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            backup.path().join("keyring"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    shred_epoch_of_t0(&env);

    // Old database + new keyring: the sealed secret does not open, and the escrow refuses the mix.
    let new_keyring = Keyring::open(&env.datadir().keyring()).unwrap();
    assert!(
        new_keyring
            .open_row(&RowSlot::EpochSecret(doomed.epoch.0), &before.sealed_secret)
            .is_err()
    );
    let old = Connection::open(backup.path().join("escrow.db")).unwrap();
    let old_sealed: Vec<u8> = old
        .query_row(
            "SELECT secret FROM epochs WHERE epoch = ?1",
            [doomed.epoch.0],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        new_keyring
            .open_row(&RowSlot::EpochSecret(doomed.epoch.0), &old_sealed)
            .is_err()
    );
    drop(old);
    let mixed = tempfile::tempdir().unwrap();
    copy_escrow(&env.data(), mixed.path());
    for n in ["escrow.db", "escrow.db-wal"] {
        let _ = std::fs::remove_file(mixed.path().join("escrow").join(n));
        if let Ok(b) = std::fs::read(backup.path().join(n)) {
            std::fs::write(mixed.path().join("escrow").join(n), b).unwrap();
        }
    }
    let err = Service::open(&DataDir::new(mixed.path()), config(), env.clock.clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("do not belong together"), "{err}");

    // New state: secret and key rows are gone.
    let c = Connection::open(env.datadir().database()).unwrap();
    let secret: Option<Vec<u8>> = c
        .query_row(
            "SELECT secret FROM epochs WHERE epoch = ?1",
            [doomed.epoch.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(secret, None);
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM keys WHERE epoch = ?1",
            [doomed.epoch.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    drop(c);

    // Other recordings still open.
    let l = env.listener("ana");
    let r = env
        .svc
        .release_key(&l.actor, &kept.id, "review", &l.secret.public_key())
        .unwrap();
    assert!(kept.opens_with(&r.wrapped_key, &l.secret));
    let err = env
        .svc
        .release_key(&l.actor, &doomed.id, "review", &l.secret.public_key())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::KeyShredded);

    // The documented limit: whoever kept the OLD keyring together with the old database can
    // still open the old secret. That is why the keyring must never be backed up with the data.
    let old_keyring = Keyring::open(&backup.path().join("keyring")).unwrap();
    assert!(
        old_keyring
            .open_row(&RowSlot::EpochSecret(doomed.epoch.0), &before.sealed_secret)
            .is_ok()
    );
}

fn copy_escrow(from: &Path, to: &Path) {
    let src = from.join("escrow");
    let dst = to.join("escrow");
    std::fs::create_dir_all(dst.join("tls")).unwrap();
    for n in ["escrow.db", "keyring", "identity.key", "identity.pub"] {
        if let Ok(b) = std::fs::read(src.join(n)) {
            std::fs::write(dst.join(n), b).unwrap();
        }
    }
    for n in ["keyring", "identity.key"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dst.join(n), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn count(entries: &[AuditEntry], action: &str, target: &str) -> usize {
    entries
        .iter()
        .filter(|e| e.action == action && e.target.as_deref() == Some(target))
        .count()
}

#[test]
fn a_crash_at_every_step_resumes_and_never_revives_the_key() {
    for point in CrashPoint::ALL {
        let env = env();
        env.svc
            .set_retention(&env.admin, 90, Some(&LineId::new("ivf").unwrap()))
            .unwrap();
        let doomed = env.deposit(T0, "general");
        let kept = env.deposit(T0, "ivf");
        let target = format!("epoch {}", doomed.epoch.0);
        let l = env.listener("ana");
        env.svc.faults.crash_at(Some(point));

        // A running escrow ticks often; its heartbeat is a day old at most here.
        env.clock.advance(Duration::from_millis(30 * DAY as u64));
        env.svc.tick().unwrap();
        env.clock.advance(Duration::from_millis(DAY as u64));
        let first = env.svc.tick();
        env.clock.advance(Duration::from_secs(3600));
        let second = if first.is_ok() {
            env.svc.tick()
        } else {
            Ok(Default::default())
        };
        let crashed = [&first.as_ref().err(), &second.as_ref().err()]
            .iter()
            .any(|e| matches!(e, Some(EscrowError::InjectedCrash { point: p }) if *p == point));
        assert!(crashed, "{point:?}: no crash ({first:?}, {second:?})");
        // The key is unusable from the moment the shred began, crash or not.
        assert!(
            env.svc
                .release_key(&l.actor, &doomed.id, "review", &l.secret.public_key())
                .is_err(),
            "{point:?}"
        );

        // "Kill": drop the service without any clean-up, then start again.
        let env = env.restart();
        env.svc.tick().unwrap();

        let l = Listener {
            actor: env.svc.authenticate(&l.token).unwrap(),
            token: l.token,
            secret: l.secret,
        };
        let err = env
            .svc
            .release_key(&l.actor, &doomed.id, "review", &l.secret.public_key())
            .err()
            .unwrap();
        assert_eq!(err.code(), ErrorCode::KeyShredded, "{point:?}");
        let r = env
            .svc
            .release_key(&l.actor, &kept.id, "review", &l.secret.public_key())
            .unwrap();
        assert!(kept.opens_with(&r.wrapped_key, &l.secret), "{point:?}");

        let entries = audit(&env);
        assert_eq!(count(&entries, "shred_begin", &target), 1, "{point:?}");
        assert_eq!(count(&entries, "shred_complete", &target), 1, "{point:?}");
        assert!(env.svc.verify_audit(&env.admin).unwrap().ok, "{point:?}");
        let kr = Keyring::open(&env.datadir().keyring()).unwrap();
        assert_eq!(
            (kr.generation(), kr.staged_generation()),
            (2, None),
            "{point:?}: rotation finished exactly once"
        );
        assert_eq!(
            env.svc
                .receipts(&env.admin, Some(&doomed.epoch.0.to_string()))
                .unwrap()
                .len(),
            1,
            "{point:?}"
        );
    }
}

#[test]
fn releases_racing_a_shred_never_follow_its_start() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    let l = Arc::new(env.listener("ana"));
    let svc = env.svc.clone();
    let racer = {
        let l = l.clone();
        let id = s.id;
        std::thread::spawn(move || {
            let mut granted = Vec::new();
            for _ in 0..5_000 {
                match svc.release_key(&l.actor, &id, "race", &l.secret.public_key()) {
                    Ok(r) => granted.push(r.audit_seq),
                    Err(e) if e.code() == ErrorCode::KeyShredded => return (granted, true),
                    Err(e) => assert_eq!(e.code(), ErrorCode::ShredPending),
                }
            }
            (granted, false)
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    shred_epoch_of_t0(&env);
    let (granted, saw_shredded) = racer.join().unwrap();
    let entries = audit(&env);
    let begin = entries
        .iter()
        .find(|e| e.action == "shred_begin")
        .unwrap()
        .seq;
    assert!(
        !granted.is_empty(),
        "the race never released before the shred"
    );
    assert!(
        granted.iter().all(|g| *g < begin),
        "a release was granted after the shred began"
    );
    assert!(
        entries
            .iter()
            .filter(|e| e.action == "key_release" && e.outcome == "granted")
            .all(|e| e.seq < begin)
    );
    let _ = saw_shredded;
}
