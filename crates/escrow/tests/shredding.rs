//! Crypto-shredding: nothing of a shredded, erased or released-after-expiry key is left in the
//! database, WAL or keyring; backups and old keyrings taken before a shred are inert; a pending
//! shred can be cancelled, a finished one cannot; a crash at any step resumes and never revives a
//! key; a key release racing a shred is either granted before the shred began or refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callseal_escrow::keyring::{Keyring, RowSlot};
use callseal_escrow::*;
use common::*;
use rusqlite::Connection;

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
    let table_key = table_key(env);
    Stored {
        sealed_secret,
        secret,
        sealed_keys,
        table_key,
    }
}

/// Every sealed value in the database with its row slot: epoch secrets, wrapped keys, named
/// secrets (the hold key).
fn sealed_values(env: &Env) -> Vec<(RowSlot, Vec<u8>)> {
    let c = Connection::open(env.datadir().database()).unwrap();
    let mut rows: Vec<(RowSlot, Vec<u8>)> = Vec::new();
    let mut st = c
        .prepare("SELECT epoch, secret FROM epochs WHERE secret IS NOT NULL")
        .unwrap();
    rows.extend(
        st.query_map([], |r| Ok((RowSlot::EpochSecret(r.get(0)?), r.get(1)?)))
            .unwrap()
            .map(Result::unwrap),
    );
    let mut st = c.prepare("SELECT id, kind, sealed FROM keys").unwrap();
    rows.extend(
        st.query_map([], |r| {
            let id: [u8; 16] = r.get::<_, Vec<u8>>(0)?.try_into().unwrap();
            let slot = match r.get::<_, i64>(1)? {
                0 => RowSlot::RecordingKey(id),
                _ => RowSlot::HoldKey(id),
            };
            Ok((slot, r.get(2)?))
        })
        .unwrap()
        .map(Result::unwrap),
    );
    let mut st = c.prepare("SELECT name, sealed FROM secrets").unwrap();
    rows.extend(
        st.query_map([], |r| Ok((RowSlot::Named(r.get(0)?), r.get(1)?)))
            .unwrap()
            .map(Result::unwrap),
    );
    rows
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
    let all: Vec<u8> = escrow_files(&env.data())
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
    assert_eq!(scan(&env.data(), &needles), Vec::<String>::new());

    // The other epoch's recordings still open.
    env.assert_each_opens(&kept);
}

#[test]
fn no_byte_of_an_erased_key_is_left_on_disk() {
    let env = env();
    let doomed = env.deposit(T0, "ivf");
    let kept: Vec<Sealed> = (0..5).map(|_| env.deposit(T0, "ivf")).collect();
    let sealed_row = sealed_key_row(&env, &doomed.id, 0).unwrap();
    let old_table_key = table_key(&env);

    // Control: the scan sees the row and the table key while they exist.
    let needles = vec![
        ("sealed key row", sealed_row),
        ("wrapped key", doomed.wrapped.to_bytes()),
        ("old table key", old_table_key),
    ];
    let hits = scan(&env.data(), &needles);
    assert!(
        hits.iter()
            .any(|h| h.starts_with("sealed key row in escrow.db")),
        "{hits:?}"
    );
    assert!(hits.contains(&"old table key in keyring".to_owned()));

    env.svc
        .erase(&env.admin, &doomed.id, "caller withdrew consent")
        .unwrap();

    assert_eq!(scan(&env.data(), &needles), Vec::<String>::new());
    assert_eq!(key_rows(&env, &doomed.id), 0);
    env.assert_each_opens(&kept);
}

#[test]
fn no_byte_of_a_hold_released_after_expiry_is_left_on_disk() {
    let env = env();
    let held = env.deposit(T0, "general");
    let still_held = env.deposit(T0, "general");
    for s in [&held, &still_held] {
        env.svc
            .hold(&env.admin, &s.id, "litigation 17/2025")
            .unwrap();
    }
    shred_epoch_of_t0(&env);
    // The epoch shred took the epoch-wrapped copies; the hold-wrapped ones are all that is left.
    assert_eq!(sealed_key_row(&env, &held.id, 0), None);
    let sealed_row = sealed_key_row(&env, &held.id, 1).unwrap();
    let hold_wrapped = Keyring::open(&env.datadir().keyring())
        .unwrap()
        .open_row(&RowSlot::HoldKey(held.id.to_bytes()), &sealed_row)
        .unwrap()
        .to_vec();
    let needles = vec![
        ("sealed hold row", sealed_row),
        ("hold-wrapped key", hold_wrapped),
        ("epoch-wrapped key", held.wrapped.to_bytes()),
        ("old table key", table_key(&env)),
    ];
    let hits = scan(&env.data(), &needles);
    assert!(
        hits.iter()
            .any(|h| h.starts_with("sealed hold row in escrow.db")),
        "{hits:?}"
    );
    assert!(hits.contains(&"old table key in keyring".to_owned()));

    env.svc.release_hold(&env.admin, &held.id).unwrap();

    assert_eq!(scan(&env.data(), &needles), Vec::<String>::new());
    assert_eq!(key_rows(&env, &held.id), 0);
    let l = env.listener("ana");
    let err = env
        .svc
        .release_key(&l.actor, &held.id, "review", &l.secret.public_key())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::KeyShredded);
    // The hold key itself stays: other held recordings still open.
    let r = env
        .svc
        .release_key(
            &l.actor,
            &still_held.id,
            "court order",
            &l.secret.public_key(),
        )
        .unwrap();
    assert!(still_held.opens_with(&r.wrapped_key, &l.secret));
}

#[test]
fn an_old_keyring_opens_nothing_in_the_current_database() {
    let env = env();
    env.svc
        .set_retention(&env.admin, 90, Some(&LineId::new("ivf").unwrap()))
        .unwrap();
    env.deposit(T0, "general");
    let kept = env.deposit(T0, "ivf");
    env.svc.hold(&env.admin, &kept.id, "litigation").unwrap();
    let copy = tempfile::tempdir().unwrap();
    let old_path = copy.path().join("keyring");
    std::fs::write(&old_path, std::fs::read(env.datadir().keyring()).unwrap()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&old_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    shred_epoch_of_t0(&env);

    let rows = sealed_values(&env);
    let kinds = |f: fn(&RowSlot) -> bool| rows.iter().filter(|(s, _)| f(s)).count();
    assert!(kinds(|s| matches!(s, RowSlot::EpochSecret(_))) > 0);
    assert_eq!(kinds(|s| matches!(s, RowSlot::HoldKey(_))), 1);
    assert_eq!(kinds(|s| matches!(s, RowSlot::Named(_))), 1);

    let current = Keyring::open(&env.datadir().keyring()).unwrap();
    let old = Keyring::open(&old_path).unwrap();
    assert!(old.generation() < current.generation());
    for (slot, sealed) in &rows {
        assert!(current.open_row(slot, sealed).is_ok(), "control: {slot:?}");
        assert!(
            old.open_row(slot, sealed).is_err(),
            "old keyring opens {slot:?}"
        );
    }

    // The escrow refuses the pair.
    let mixed = tempfile::tempdir().unwrap();
    copy_escrow(&env.data(), mixed.path());
    std::fs::write(
        mixed.path().join("escrow").join("keyring"),
        std::fs::read(&old_path).unwrap(),
    )
    .unwrap();
    let err = Service::open(&DataDir::new(mixed.path()), config(), env.clock.clone())
        .err()
        .unwrap();
    assert!(err.to_string().contains("do not belong together"), "{err}");
}

#[test]
fn the_database_alone_and_the_keyring_alone_hold_no_key_in_the_clear() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    env.svc.hold(&env.admin, &s.id, "litigation").unwrap();
    let l = env.listener("ana");
    env.svc
        .release_key(&l.actor, &s.id, "complaint 2291", &l.secret.public_key())
        .unwrap();
    env.svc.tick().unwrap();

    // The plaintexts the table key protects.
    let kr = Keyring::open(&env.datadir().keyring()).unwrap();
    let mut plain: Vec<(&str, Vec<u8>)> = sealed_values(&env)
        .iter()
        .map(|(slot, sealed)| {
            let what = match slot {
                RowSlot::EpochSecret(_) => "epoch secret",
                RowSlot::RecordingKey(_) => "epoch-wrapped key",
                RowSlot::HoldKey(_) => "hold-wrapped key",
                RowSlot::Named(_) => "hold key",
            };
            (what, kr.open_row(slot, sealed).unwrap().to_vec())
        })
        .collect();
    plain.push(("wrapped key as deposited", s.wrapped.to_bytes()));
    let has = |w: &str| plain.iter().any(|(what, _)| *what == w);
    assert!(has("epoch secret") && has("hold key") && has("hold-wrapped key"));
    assert!(has("epoch-wrapped key"));

    assert_eq!(scan(&env.data(), &plain), Vec::<String>::new());
    // What the database does hold in the clear: metadata and the audit log.
    let db = std::fs::read(env.datadir().database()).unwrap();
    let wal = std::fs::read(env.data().join("escrow").join("escrow.db-wal")).unwrap_or_default();
    let both = [db, wal].concat();
    assert!(contains(&both, b"C-7KQ2-9XMD"), "caller code");
    assert!(contains(&both, b"complaint 2291"), "release purpose");
    // The keyring file is the table key and nothing else.
    let keyring = std::fs::read(env.datadir().keyring()).unwrap();
    assert_eq!(keyring.len(), 4 + 1 + 1 + 8 + 32 + 32);
}

#[test]
fn cancelling_a_pending_shred_makes_the_keys_usable_again() {
    let env = env();
    let s = env.deposit(T0, "general");
    let l = env.listener("ana");
    let epoch = s.epoch.0;
    env.clock.advance(Duration::from_millis(31 * DAY as u64));
    assert_eq!(env.svc.tick().unwrap().begun, vec![epoch]);
    let err = env
        .svc
        .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::ShredPending);

    let until = env.clock.wall().plus_ms(DAY);
    let err = env.svc.cancel_shred(&l.actor, epoch, until).err().unwrap();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    env.svc.cancel_shred(&env.admin, epoch, until).unwrap();

    let opens = |env: &Env| {
        let r = env
            .svc
            .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
            .unwrap();
        s.opens_with(&r.wrapped_key, &l.secret)
    };
    assert!(opens(&env));
    assert_eq!(
        env.svc.recording(&env.admin, &s.id).unwrap().status,
        RecordingStatus::Sealed
    );
    let state = |env: &Env| {
        env.svc
            .epochs(&env.admin)
            .unwrap()
            .into_iter()
            .find(|e| e.epoch == epoch)
            .unwrap()
            .state
    };
    assert_eq!(state(&env), EpochState::Active);
    let err = env
        .svc
        .cancel_shred(&env.admin, epoch, until)
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");

    // The pending window passes without a destruction; the shred starts again at `until`.
    env.clock.advance(Duration::from_secs(3600));
    let r = env.svc.tick().unwrap();
    assert!(
        !r.begun.contains(&epoch) && !r.destroyed.contains(&epoch),
        "{r:?}"
    );
    assert!(opens(&env));
    env.clock
        .advance(Duration::from_millis((DAY - 3_600_000 - 1) as u64));
    assert!(!env.svc.tick().unwrap().begun.contains(&epoch));
    assert!(opens(&env));
    env.clock.advance(Duration::from_millis(1));
    assert!(env.svc.tick().unwrap().begun.contains(&epoch));
    env.clock.advance(Duration::from_secs(3600));
    assert!(env.svc.tick().unwrap().destroyed.contains(&epoch));
    let err = env
        .svc
        .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::KeyShredded);

    let entries = audit(&env);
    let target = format!("epoch {epoch}");
    let cancels: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.action == "shred_cancel")
        .map(|e| (e.actor.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        cancels,
        [
            ("admin", format!("done: deferred until {until}").as_str()),
            ("admin", "denied: invalid_input"),
        ]
    );
    assert!(
        entries
            .iter()
            .any(|e| e.actor == "ana" && e.outcome == "denied: forbidden")
    );
    assert_eq!(count(&entries, "shred_begin", &target), 2);
    assert_eq!(count(&entries, "shred_complete", &target), 1);
    assert!(env.svc.verify_audit(&env.admin).unwrap().ok);
}

#[test]
fn cancelling_a_destroyed_epoch_is_refused_and_the_key_stays_gone() {
    let env = env();
    let s = env.deposit(T0, "general");
    let l = env.listener("ana");
    let epoch = s.epoch.0;
    shred_epoch_of_t0(&env);

    let until = env.clock.wall().plus_ms(DAY);
    let err = env
        .svc
        .cancel_shred(&env.admin, epoch, until)
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::KeyShredded);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("epoch {epoch} was destroyed on 2026-01-03T01:00")),
        "{msg}"
    );
    assert!(msg.contains("can never be recovered"), "{msg}");
    assert_eq!(err.to_api().detail["epoch"], epoch);
    let err = env
        .svc
        .cancel_shred(&env.admin, 99_999, until)
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::UnknownEpoch);

    // Nothing came back: not in the table, not in storage, not releasable, not after a round.
    env.svc.tick().unwrap();
    let err = env
        .svc
        .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::KeyShredded);
    let e = env
        .svc
        .epochs(&env.admin)
        .unwrap()
        .into_iter()
        .find(|e| e.epoch == epoch)
        .unwrap();
    assert_eq!(e.state, EpochState::Shredded);
    let table = env.svc.epoch_table(&env.gateway).unwrap();
    let table = table.verify(&env.svc.identity_public()).unwrap();
    assert!(table.epochs.iter().all(|e| e.epoch.0 != epoch));
    let c = Connection::open(env.datadir().database()).unwrap();
    let (secret, phase): (Option<Vec<u8>>, String) = c
        .query_row(
            "SELECT secret, phase FROM epochs WHERE epoch = ?1",
            [epoch],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((secret, phase.as_str()), (None, "destroyed"));
    assert_eq!(key_rows(&env, &s.id), 0);
    drop(c);
    let entries = audit(&env);
    let cancels: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "shred_cancel")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(cancels, ["denied: key_shredded", "denied: unknown_epoch"]);
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
    for (name, bytes) in escrow_files(&env.data()) {
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
