//! Deposits, releases, erasure, legal hold and the retention shred, through the service.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use callseal_escrow::*;
use callseal_recording::keys::{RecordingId, SecretKey};
use common::*;

fn code<T>(r: Result<T, EscrowError>) -> ErrorCode {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

#[test]
fn deposit_is_idempotent_and_conflicts_are_refused() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    let line = LineId::new("ivf").unwrap();
    let d = s.deposit(T0, &line);
    assert_eq!(
        env.svc.deposit(&env.gateway, &d).unwrap(),
        DepositOutcome::AlreadyStored
    );
    let mut other = d.clone();
    other.caller_code = CallerCode::new("C-OTHER").unwrap();
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &other)),
        ErrorCode::DepositConflict
    );
    // Deposit at start, complete with the end time later.
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, Some(&line)).unwrap().clone();
    let s2 = sealed(e.epoch, &e.public_key);
    let mut start = s2.deposit(T0, &line);
    start.ended_at = None;
    assert_eq!(
        env.svc.deposit(&env.gateway, &start).unwrap(),
        DepositOutcome::Stored
    );
    let end = s2.deposit(T0, &line);
    assert_eq!(
        env.svc.deposit(&env.gateway, &end).unwrap(),
        DepositOutcome::Updated
    );
    assert_eq!(
        env.svc.deposit(&env.gateway, &start).unwrap(),
        DepositOutcome::AlreadyStored
    );
    let info = env.svc.recording(&env.admin, &s2.id).unwrap();
    assert_eq!(info.ended_at, end.ended_at);
    assert_eq!(info.status, RecordingStatus::Sealed);
}

#[test]
fn deposits_are_validated() {
    let env = env();
    let line = LineId::new("ivf").unwrap();
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, Some(&line)).unwrap().clone();
    let s = sealed(e.epoch, &e.public_key);
    let mut d = s.deposit(T0, &line);
    d.recording = RecordingId::generate().unwrap();
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &d)),
        ErrorCode::InvalidInput,
        "wrapped key of another recording"
    );
    let mut d = s.deposit(T0, &line);
    d.gateway = GatewayId::new("gw-2").unwrap();
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &d)),
        ErrorCode::InvalidInput,
        "another gateway's name"
    );
    let mut d = s.deposit(T0, &line);
    d.ended_at = Some(T0.plus_ms(-1));
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &d)),
        ErrorCode::InvalidInput
    );
    let mut d = s.deposit(T0, &line);
    d.consent.prompt_sha256 = "../../etc/passwd".into();
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &d)),
        ErrorCode::InvalidInput
    );
    let mut d = s.deposit(T0, &line);
    d.consent.signature = Some("00".repeat(64));
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &d)),
        ErrorCode::InvalidInput,
        "signature without key"
    );
    // A listener may not deposit.
    let l = env.listener("ana");
    assert_eq!(
        code(env.svc.deposit(&l.actor, &s.deposit(T0, &line))),
        ErrorCode::Forbidden
    );
}

#[test]
fn consent_signature_is_verified_and_the_gateway_key_pinned() {
    let env = env();
    let line = LineId::new("ivf").unwrap();
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, Some(&line)).unwrap().clone();
    let gw_key = IdentityKey::generate().unwrap();
    let signed = |s: &Sealed, key: &IdentityKey| {
        let mut d = s.deposit(T0, &line);
        d.consent.gateway_key = Some(hex::encode(key.verifying_key().as_bytes()));
        d.consent.signature = Some(hex::encode(
            key.sign(&d.consent.signed_message(&d.recording)),
        ));
        d
    };
    let a = sealed(e.epoch, &e.public_key);
    assert_eq!(
        env.svc.deposit(&env.gateway, &signed(&a, &gw_key)).unwrap(),
        DepositOutcome::Stored
    );
    let b = sealed(e.epoch, &e.public_key);
    let mut tampered = signed(&b, &gw_key);
    tampered.consent.digit = Some('2');
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &tampered)),
        ErrorCode::InvalidInput
    );
    let other = IdentityKey::generate().unwrap();
    assert_eq!(
        code(env.svc.deposit(&env.gateway, &signed(&b, &other))),
        ErrorCode::InvalidInput,
        "key not pinned"
    );
    assert_eq!(
        env.svc.deposit(&env.gateway, &signed(&b, &gw_key)).unwrap(),
        DepositOutcome::Stored
    );
}

#[test]
fn release_rewraps_to_the_listener_and_is_audited_first() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    let l = env.listener("ana");
    let r = env
        .svc
        .release_key(
            &l.actor,
            &s.id,
            "complaint 2291 review",
            &l.secret.public_key(),
        )
        .unwrap();
    assert!(s.opens_with(&r.wrapped_key, &l.secret));
    let entry = audit(&env)
        .into_iter()
        .find(|e| e.seq == r.audit_seq)
        .unwrap();
    assert_eq!(entry.action, "key_release");
    assert_eq!(entry.actor, "ana");
    assert_eq!(entry.purpose.as_deref(), Some("complaint 2291 review"));
    assert_eq!(entry.outcome, "granted");
    assert_eq!(entry.target, Some(format!("recording {}", s.id)));

    // Bad purposes and keys are refused, and the refusals are audited.
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &s.id, "  ", &l.secret.public_key())
        ),
        ErrorCode::PurposeRequired
    );
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &s.id, &"x".repeat(501), &l.secret.public_key())
        ),
        ErrorCode::PurposeTooLong
    );
    let stranger = SecretKey::generate().unwrap();
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &s.id, "review", &stranger.public_key())
        ),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(
            env.svc
                .release_key(&env.admin, &s.id, "review", &l.secret.public_key())
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(env.svc.release_key(
            &l.actor,
            &RecordingId::generate().unwrap(),
            "review",
            &l.secret.public_key()
        )),
        ErrorCode::UnknownRecording
    );
    let denials: Vec<_> = audit(&env)
        .into_iter()
        .filter(|e| e.outcome.starts_with("denied"))
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        denials,
        [
            "denied: purpose_required",
            "denied: purpose_too_long",
            "denied: invalid_input",
            "denied: forbidden",
            "denied: unknown_recording"
        ]
    );

    // Fail closed: no audit, no key.
    env.svc.faults.fail_audit(true);
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        ),
        ErrorCode::AuditUnavailable
    );
    env.svc.faults.fail_audit(false);
}

#[test]
fn inactive_and_expired_accounts_are_refused() {
    let env = env();
    let secret = SecretKey::generate().unwrap();
    let new = NewOperator {
        id: OperatorId::new("bo").unwrap(),
        role: Role::Listener,
        public_key: Some(secret.public_key()),
    };
    let en = env.svc.add_operator(&env.admin, &new).unwrap();
    assert_eq!(en.operator.status, OperatorStatus::PendingAgreement);
    let s = env.deposit(T0, "ivf");
    let bo = env.svc.authenticate(&en.token).unwrap();
    assert_eq!(
        code(
            env.svc
                .release_key(&bo, &s.id, "review", &secret.public_key())
        ),
        ErrorCode::OperatorInactive
    );
    assert_eq!(
        code(env.svc.acknowledge(&bo, &"0".repeat(64))),
        ErrorCode::AgreementMismatch
    );
    let bo = activate(&env.svc, &en.token);
    assert!(
        env.svc
            .release_key(&bo, &s.id, "review", &secret.public_key())
            .is_ok()
    );
    env.svc
        .disable_operator(&env.admin, &OperatorId::new("bo").unwrap())
        .unwrap();
    assert_eq!(
        code(env.svc.authenticate(&en.token)),
        ErrorCode::Unauthenticated,
        "tokens deleted on disable"
    );
    assert_eq!(
        code(env.svc.authenticate("cs1_zz")),
        ErrorCode::Unauthenticated
    );
    env.clock.advance(Duration::from_secs(91 * 86_400));
    assert_eq!(
        code(env.svc.authenticate(&env.admin_token)),
        ErrorCode::TokenExpired
    );
}

#[test]
fn erase_destroys_the_key_and_a_tombstone_discards_a_late_deposit() {
    let env = env();
    let s = env.deposit(T0, "ivf");
    let l = env.listener("ana");
    assert_eq!(
        code(env.svc.erase(&env.admin, &s.id, " ")),
        ErrorCode::InvalidInput
    );
    env.svc
        .erase(&env.admin, &s.id, "caller withdrew consent by letter")
        .unwrap();
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &s.id, "review", &l.secret.public_key())
        ),
        ErrorCode::Erased
    );
    let info = env.svc.recording(&env.admin, &s.id).unwrap();
    assert_eq!(info.status, RecordingStatus::Erased);
    let receipts = env
        .svc
        .receipts(&env.admin, Some(&s.id.to_string()))
        .unwrap();
    assert_eq!(receipts.len(), 1);
    assert!(receipts[0].signature_valid);
    assert!(verify_receipt(&receipts[0], &env.svc.identity_public()));
    assert_eq!(receipts[0].parsed().unwrap().keys_destroyed, 1);

    // Withdrawn consent before the deposit arrived.
    let line = LineId::new("ivf").unwrap();
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, Some(&line)).unwrap().clone();
    let late = sealed(e.epoch, &e.public_key);
    assert_eq!(
        code(env.svc.erase(&env.admin, &late.id, "withdrawn")),
        ErrorCode::UnknownRecording
    );
    env.svc
        .erase(&env.gateway, &late.id, "consent withdrawn during the call")
        .unwrap();
    assert_eq!(
        env.svc
            .deposit(&env.gateway, &late.deposit(T0, &line))
            .unwrap(),
        DepositOutcome::Discarded
    );
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &late.id, "review", &l.secret.public_key())
        ),
        ErrorCode::Erased
    );
}

#[test]
fn retention_shreds_in_two_phases_and_hold_survives() {
    let env = env();
    let l = env.listener("ana");
    let a = env.deposit(T0, "ivf");
    let held = env.deposit(T0, "ivf");
    env.svc
        .hold(&env.admin, &held.id, "litigation 17/2025")
        .unwrap();
    assert_eq!(
        code(env.svc.erase(&env.admin, &held.id, "request")),
        ErrorCode::LegalHold
    );

    // Just before the end of retention nothing happens.
    env.clock
        .advance(Duration::from_millis((31 * DAY - 1) as u64));
    assert!(env.svc.tick().unwrap().begun.is_empty());
    env.clock.advance(Duration::from_millis(1));
    let r = env.svc.tick().unwrap();
    assert_eq!(r.begun, vec![a.epoch.0]);
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &a.id, "review", &l.secret.public_key())
        ),
        ErrorCode::ShredPending
    );
    assert_eq!(
        env.svc.recording(&env.admin, &a.id).unwrap().status,
        RecordingStatus::PendingShred
    );

    env.clock.advance(Duration::from_secs(3600));
    let r = env.svc.tick().unwrap();
    assert_eq!(r.destroyed, vec![a.epoch.0]);
    let err = env
        .svc
        .release_key(&l.actor, &a.id, "review", &l.secret.public_key())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::KeyShredded);
    assert!(err.to_string().contains("2026-01-03"), "{err}");
    assert_eq!(
        env.svc.recording(&env.admin, &a.id).unwrap().status,
        RecordingStatus::Shredded
    );
    let eps = env.svc.epochs(&env.admin).unwrap();
    assert_eq!(
        eps.iter().find(|e| e.epoch == a.epoch.0).unwrap().state,
        EpochState::Shredded
    );
    assert_eq!(
        env.svc
            .receipts(&env.admin, Some(&a.epoch.0.to_string()))
            .unwrap()
            .len(),
        1
    );

    // The held recording still opens, and is shredded at once when the hold is lifted.
    let rel = env
        .svc
        .release_key(&l.actor, &held.id, "court order", &l.secret.public_key())
        .unwrap();
    assert!(held.opens_with(&rel.wrapped_key, &l.secret));
    env.svc.release_hold(&env.admin, &held.id).unwrap();
    assert_eq!(
        code(
            env.svc
                .release_key(&l.actor, &held.id, "review", &l.secret.public_key())
        ),
        ErrorCode::KeyShredded
    );
    assert_eq!(
        code(env.svc.release_hold(&env.admin, &held.id)),
        ErrorCode::NotHeld
    );
    let v = env.svc.verify_audit(&env.admin).unwrap();
    assert!(v.ok, "{v:?}");
}

#[test]
fn retention_policy_is_validated_and_creates_epochs() {
    let env = env();
    for bad in [-1, 0, 3651, i64::MAX] {
        assert_eq!(
            code(env.svc.set_retention(&env.admin, bad, None)),
            ErrorCode::InvalidRetention,
            "{bad}"
        );
    }
    let line = LineId::new("ivf").unwrap();
    let p = env.svc.set_retention(&env.admin, 90, Some(&line)).unwrap();
    assert_eq!(p.days_for(Some(&line)), 90);
    assert_eq!(p.default_days, 30);
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    assert_eq!(
        table.epoch_for(T0, Some(&line)).map(|e| e.epoch.0),
        Some((T0.day() + 90) as u32)
    );
    assert_eq!(
        table.epoch_for(T0, None).map(|e| e.epoch.0),
        Some((T0.day() + 30) as u32)
    );
    let (auditor, _) = env.operator("audrey", Role::Auditor);
    assert_eq!(
        code(env.svc.set_retention(&auditor, 10, None)),
        ErrorCode::Forbidden
    );
}
