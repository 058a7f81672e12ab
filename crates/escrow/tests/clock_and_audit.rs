//! Wall-clock jumps (the shred waits for an operator's confirm; backward jumps only delay) and
//! audit tampering (every edit, deletion, reorder or forged signature is found).
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
