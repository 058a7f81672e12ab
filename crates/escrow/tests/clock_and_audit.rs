//! Wall-clock jumps (the shred waits for an operator's confirm; backward jumps only delay) and
//! audit tampering (every edit, deletion, reorder or forged signature is found); an audit entry
//! that cannot be written stops a deposit, an erasure or a shred, leaving no trace.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use callseal_escrow::*;
use common::*;
use rusqlite::Connection;

#[test]
fn a_forward_jump_suspends_shredding_until_an_admin_confirms() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    let l = env.listener("ana");
    env.clock.advance(Duration::from_secs(3600));
    env.svc.tick().unwrap();
    env.clock.jump_wall(40 * DAY);
    let r = env.svc.tick().unwrap();
    assert!(!r.clock_trusted);
    assert!(r.blocked.contains(&s.epoch.0), "{r:?}");
    assert!(r.begun.is_empty() && r.destroyed.is_empty());
    let h = env.svc.health().unwrap();
    assert!(!h.clock_trusted);
    assert_eq!(h.status, "degraded");
    assert!(h.alert.as_deref().unwrap_or("").contains("jumped"), "{h:?}");
    assert!(
        audit(&env)
            .iter()
            .any(|e| e.action == "clock_alert" && e.actor == "escrow")
    );
    // Still usable: nothing was shredded.
    assert!(
        env.svc
            .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
            .is_ok()
    );
    // Ticking again keeps waiting, alert raised once.
    env.clock.advance(Duration::from_secs(60));
    assert!(env.svc.tick().unwrap().begun.is_empty());
    assert_eq!(
        audit(&env)
            .iter()
            .filter(|e| e.action == "clock_alert")
            .count(),
        1
    );
    // Only an admin may confirm.
    assert_eq!(
        env.svc.confirm_clock(&l.actor).err().map(|e| e.code()),
        Some(ErrorCode::Forbidden)
    );
    env.svc.confirm_clock(&env.admin).unwrap();
    assert!(env.svc.health().unwrap().clock_trusted);
    let e = env.svc.epochs(&env.admin).unwrap();
    assert_eq!(
        e.iter().find(|e| e.epoch == s.epoch.0).unwrap().state,
        EpochState::PendingShred
    );
}

#[test]
fn a_backward_jump_only_delays() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    env.svc.tick().unwrap();
    env.clock.jump_wall(-10 * DAY);
    let r = env.svc.tick().unwrap();
    assert!(r.clock_trusted);
    // 31 real days later the wall clock reads 21 days after T0: not yet due.
    for _ in 0..31 {
        env.clock.advance(Duration::from_millis(DAY as u64));
        assert!(!env.svc.tick().unwrap().begun.contains(&s.epoch.0));
    }
    for _ in 0..10 {
        env.clock.advance(Duration::from_millis(DAY as u64));
        if env.svc.tick().unwrap().begun.contains(&s.epoch.0) {
            assert!(env.clock.wall() >= retention::shred_after(s.epoch.0));
            return;
        }
    }
    panic!("never shredded");
}

#[test]
fn a_long_stop_needs_a_confirm() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    env.svc.tick().unwrap();
    // Stopped for 40 days (or the clock was set ahead while stopped).
    env.clock.jump_wall(40 * DAY);
    let env = env.restart();
    let h = env.svc.health().unwrap();
    assert!(!h.clock_trusted, "{h:?}");
    assert!(
        h.alert.as_deref().unwrap_or("").contains("not running"),
        "{h:?}"
    );
    assert!(env.svc.tick().unwrap().begun.is_empty());
    env.svc.confirm_clock(&env.admin).unwrap();
    let epochs = env.svc.epochs(&env.admin).unwrap();
    assert_eq!(
        epochs.iter().find(|e| e.epoch == s.epoch.0).unwrap().state,
        EpochState::PendingShred
    );
}

#[test]
fn an_untrusted_clock_blocks_shredding_an_expired_hold() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    env.svc.hold(&env.admin, &s.id, "litigation").unwrap();
    for _ in 0..31 {
        env.clock.advance(Duration::from_millis(DAY as u64));
        env.svc.tick().unwrap();
    }
    env.clock.advance(Duration::from_secs(3600));
    assert_eq!(env.svc.tick().unwrap().destroyed, vec![s.epoch.0]);
    env.clock.jump_wall(5 * DAY);
    env.svc.tick().unwrap();
    assert_eq!(
        env.svc
            .release_hold(&env.admin, &s.id)
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::ClockUntrusted)
    );
    assert_eq!(
        env.svc.recording(&env.admin, &s.id).unwrap().status,
        RecordingStatus::Held
    );
    env.svc.confirm_clock(&env.admin).unwrap();
    env.svc.release_hold(&env.admin, &s.id).unwrap();
    assert_eq!(
        env.svc.recording(&env.admin, &s.id).unwrap().status,
        RecordingStatus::Shredded
    );
}

fn tampered(edit: impl FnOnce(&Connection)) -> AuditVerification {
    let env = env();
    let s = env.deposit(T0, "ivf");
    let l = env.listener("ana");
    for p in ["one", "two", "three"] {
        env.svc
            .release_key(&l.actor, &s.id, p, &l.secret.public_key())
            .unwrap();
    }
    assert!(env.svc.verify_audit(&env.admin).unwrap().ok);
    let c = Connection::open(env.datadir().database()).unwrap();
    edit(&c);
    drop(c);
    env.svc.verify_audit(&env.admin).unwrap()
}

fn last_release_seq(c: &Connection) -> i64 {
    c.query_row(
        "SELECT MAX(seq) FROM audit WHERE CAST(body AS TEXT) LIKE '%key_release%'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn audit_tampering_is_detected() {
    let v = tampered(|c| {
        let seq = last_release_seq(c);
        c.execute("UPDATE audit SET body = CAST(REPLACE(CAST(body AS TEXT), 'three', 'other') AS BLOB) WHERE seq = ?1", [seq]).unwrap();
    });
    assert!(!v.ok);
    assert!(v.problem.as_deref().unwrap().contains("edited"), "{v:?}");

    let v = tampered(|c| {
        let seq = last_release_seq(c) - 1;
        c.execute("DELETE FROM audit WHERE seq = ?1", [seq])
            .unwrap();
    });
    assert!(!v.ok);
    assert!(v.problem.as_deref().unwrap().contains("deleted"), "{v:?}");

    let v = tampered(|c| {
        let b = last_release_seq(c);
        let a = b - 1;
        c.execute_batch(&format!(
            "UPDATE audit SET seq = -1 WHERE seq = {a}; UPDATE audit SET seq = {a} WHERE seq = {b}; UPDATE audit SET seq = {b} WHERE seq = -1;"
        ))
        .unwrap();
    });
    assert!(!v.ok);
    assert!(v.problem.as_deref().unwrap().contains("reordered"), "{v:?}");

    let v = tampered(|c| {
        let seq = last_release_seq(c);
        c.execute(
            "UPDATE audit SET signature = zeroblob(64) WHERE seq = ?1",
            [seq],
        )
        .unwrap();
    });
    assert!(!v.ok);
    assert!(v.problem.as_deref().unwrap().contains("signature"), "{v:?}");

    // Rewriting an entry and its hash consistently still fails: the signature does not match.
    let v = tampered(|c| {
        let seq = last_release_seq(c);
        let (body, prev): (Vec<u8>, Vec<u8>) = c
            .query_row("SELECT a.body, p.hash FROM audit a JOIN audit p ON p.seq = a.seq - 1 WHERE a.seq = ?1", [seq], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        let body = String::from_utf8(body)
            .unwrap()
            .replace("three", "other")
            .into_bytes();
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"callseal/audit/v1\0");
        h.update(&prev);
        h.update(&body);
        let hash = h.finalize().to_vec();
        c.execute(
            "UPDATE audit SET body = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![body, hash, seq],
        )
        .unwrap();
    });
    assert!(!v.ok);
    assert!(v.problem.as_deref().unwrap().contains("signature"), "{v:?}");
}

fn code<T: std::fmt::Debug>(r: Result<T, EscrowError>) -> ErrorCode {
    r.err().map(|e| e.code()).expect("expected an error")
}

/// A recording of `line` sealed to the epoch the gateway would pick, not yet deposited.
fn undeposited(env: &Env, line: &LineId) -> Sealed {
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, Some(line)).unwrap().clone();
    sealed(e.epoch, &e.public_key)
}

#[test]
fn a_deposit_is_refused_when_the_audit_cannot_be_written() {
    let env = env();
    let line = LineId::new("ivf").unwrap();
    let one = undeposited(&env, &line);
    let batch: Vec<Sealed> = (0..3).map(|_| undeposited(&env, &line)).collect();
    let first = undeposited(&env, &line);
    let mut start = first.deposit(T0, &line);
    start.ended_at = None;
    env.svc.deposit(&env.gateway, &start).unwrap();

    env.svc.faults.fail_audit(true);
    let before = snapshot(&env);
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &one.deposit(T0, &line))),
        ErrorCode::AuditUnavailable
    );
    let ds: Vec<Deposit> = batch.iter().map(|s| s.deposit(T0, &line)).collect();
    assert_eq!(
        code(env.svc.deposit_batch(&env.gateway, &ds)),
        ErrorCode::AuditUnavailable
    );
    // Completing an earlier deposit with its end time is refused too.
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &first.deposit(T0, &line))),
        ErrorCode::AuditUnavailable
    );
    assert_eq!(snapshot(&env), before);
    env.svc.faults.fail_audit(false);

    assert_eq!(
        code(env.svc.recording(&env.admin, &one.id)),
        ErrorCode::UnknownRecording
    );
    assert_eq!(
        env.svc.recording(&env.admin, &first.id).unwrap().ended_at,
        None
    );
    // Once the audit works again, the same deposits are stored, each request audited.
    assert_eq!(
        env.svc
            .deposit(&env.gateway, &one.deposit(T0, &line))
            .unwrap(),
        DepositOutcome::Stored
    );
    let mut mixed = ds.clone();
    mixed.push(first.deposit(T0, &line));
    let outcomes: Vec<DepositOutcome> = env
        .svc
        .deposit_batch(&env.gateway, &mixed)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes.last(), Some(&DepositOutcome::Updated));
    let deposits: Vec<(Option<String>, String)> = audit(&env)
        .into_iter()
        .filter(|e| e.action == "deposit")
        .map(|e| (e.target, e.outcome))
        .collect();
    let done = |s: usize, u: usize| {
        format!("done: {s} stored, {u} updated, 0 already stored, 0 discarded, 0 refused")
    };
    assert_eq!(
        deposits,
        [
            (Some(format!("recording {}", first.id)), done(1, 0)),
            (Some(format!("recording {}", one.id)), done(1, 0)),
            (None, done(3, 1)),
        ]
    );
    assert!(env.svc.verify_audit(&env.admin).unwrap().ok);
}

#[test]
fn an_erasure_is_refused_when_the_audit_cannot_be_written() {
    let env = env();
    let line = LineId::new("ivf").unwrap();
    let s = env.deposit(T0, "ivf");
    let late = undeposited(&env, &line);
    let l = env.listener("ana");

    env.svc.faults.fail_audit(true);
    let before = snapshot(&env);
    assert_eq!(
        code(env.svc.erase(&env.admin, &s.id, "deletion request")),
        ErrorCode::AuditUnavailable
    );
    assert_eq!(
        code(env.svc.erase(&env.gateway, &late.id, "consent withdrawn")),
        ErrorCode::AuditUnavailable,
        "tombstone for a deposit still on its way"
    );
    assert_eq!(snapshot(&env), before);
    env.svc.faults.fail_audit(false);

    assert_eq!(
        env.svc.recording(&env.admin, &s.id).unwrap().status,
        RecordingStatus::Sealed
    );
    let r = env
        .svc
        .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        .unwrap();
    assert!(s.opens_with(&r.wrapped_key, &l.secret));
    assert_eq!(
        env.svc
            .deposit(&env.gateway, &late.deposit(T0, &line))
            .unwrap(),
        DepositOutcome::Stored,
        "no tombstone was left"
    );
    assert!(env.svc.receipts(&env.admin, None).unwrap().is_empty());
}

#[test]
fn a_shred_is_not_carried_out_when_the_audit_cannot_be_written() {
    let env = env();
    let s = env.deposit(T0, "general");
    let held = env.deposit(T0, "general");
    env.svc.hold(&env.admin, &held.id, "litigation").unwrap();
    let l = env.listener("ana");
    let epoch = s.epoch.0;
    let opens = |env: &Env, r: &Sealed| {
        let rel = env
            .svc
            .release_key(&l.actor, &r.id, "review", &l.secret.public_key())
            .unwrap();
        r.opens_with(&rel.wrapped_key, &l.secret)
    };
    let state = |env: &Env| {
        env.svc
            .epochs(&env.admin)
            .unwrap()
            .into_iter()
            .find(|e| e.epoch == epoch)
            .unwrap()
            .state
    };
    // Begin, then cancel for half an hour: the next begin falls on a day whose epochs exist, so
    // the failing round reaches the shred itself.
    env.clock.advance(Duration::from_millis(31 * DAY as u64));
    assert_eq!(env.svc.tick().unwrap().begun, vec![epoch]);
    let until = env.clock.wall().plus_ms(1_800_000);
    env.svc.cancel_shred(&env.admin, epoch, until).unwrap();

    // Phase one refused.
    env.svc.faults.fail_audit(true);
    let before = snapshot(&env);
    env.clock.advance(Duration::from_secs(1800));
    assert_eq!(code(env.svc.tick()), ErrorCode::AuditUnavailable);
    assert_eq!(snapshot(&env), before);
    env.svc.faults.fail_audit(false);
    assert_eq!(state(&env), EpochState::Active);
    assert!(opens(&env, &s));
    assert_eq!(env.svc.tick().unwrap().begun, vec![epoch]);

    // Phase two refused: the secret, the wrapped keys and the table key are all still there.
    env.svc.faults.fail_audit(true);
    let before = snapshot(&env);
    env.clock.advance(Duration::from_secs(3600));
    assert_eq!(code(env.svc.tick()), ErrorCode::AuditUnavailable);
    assert_eq!(snapshot(&env), before);
    env.svc.faults.fail_audit(false);
    assert_eq!(state(&env), EpochState::PendingShred);
    assert!(env.svc.receipts(&env.admin, None).unwrap().is_empty());
    assert_eq!(env.svc.tick().unwrap().destroyed, vec![epoch]);
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        ),
        ErrorCode::KeyShredded
    );

    // Lifting the hold after expiry (a destruction too) is refused the same way.
    env.svc.faults.fail_audit(true);
    let before = snapshot(&env);
    assert_eq!(
        code(env.svc.release_hold(&env.admin, &held.id)),
        ErrorCode::AuditUnavailable
    );
    assert_eq!(snapshot(&env), before);
    env.svc.faults.fail_audit(false);
    assert!(opens(&env, &held));
    env.svc.release_hold(&env.admin, &held.id).unwrap();
    assert_eq!(
        env.svc.recording(&env.admin, &held.id).unwrap().status,
        RecordingStatus::Shredded
    );
    assert!(env.svc.verify_audit(&env.admin).unwrap().ok);
}
