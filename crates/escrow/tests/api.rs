//! The HTTPS API on loopback: the full role × endpoint matrix, bad inputs with their codes and
//! statuses, the pinned CA, health and metrics.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use callseal_escrow::client::{ClientConfig, ClientError, EscrowClient};
use callseal_escrow::server::{Server, ServerConfig};
use callseal_escrow::*;
use callseal_recording::keys::RecordingId;
use common::*;
use serde_json::{Value, json};
use zeroize::Zeroizing;

struct Api {
    env: Env,
    url: String,
    ca: Vec<u8>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Api {
    let env = env();
    let srv = Server::bind(
        env.svc.clone(),
        &env.datadir(),
        &ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tick: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let url = srv.url();
    assert_eq!(env.datadir().url().as_deref(), Some(url.as_str()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        srv.run(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let ca = std::fs::read(env.datadir().tls().ca_cert).unwrap();
    Api {
        env,
        url,
        ca,
        stop: Some(tx),
        task,
    }
}

impl Api {
    fn client(&self, token: Option<&str>) -> EscrowClient {
        EscrowClient::new(ClientConfig {
            url: self.url.clone(),
            ca_pem: self.ca.clone(),
            token: token.map(|t| Zeroizing::new(t.to_owned())),
            timeout: Duration::from_secs(10),
        })
        .unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Client, method, path, body, expected status and code.
type Case<'a> = (
    &'a EscrowClient,
    &'a str,
    String,
    Option<Value>,
    u16,
    &'a str,
);

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_by_endpoint_matrix() {
    let api = start().await;
    let env = &api.env;
    let l = env.listener("ana");
    let (_, auditor) = env.operator("audrey", Role::Auditor);
    let s = env.deposit(T0, "ivf");
    let line = LineId::new("ivf").unwrap();
    let table = env
        .svc
        .epoch_table(&env.gateway)
        .unwrap()
        .verify(&env.svc.identity_public())
        .unwrap();
    let e = table.epoch_for(T0, Some(&line)).unwrap().clone();
    let fresh = sealed(e.epoch, &e.public_key);
    let deposit = serde_json::to_value(fresh.deposit(T0, &line)).unwrap();
    let ack = env.svc.agreement(&env.admin).unwrap().sha256;
    let id = s.id.to_string();
    let pk = l.secret.public_key().to_string();
    let epoch = s.epoch.0;

    let roles = [
        (Role::Admin, env.admin_token.clone()),
        (Role::Auditor, auditor),
        (Role::Listener, l.token.clone()),
        (Role::Gateway, env.gateway_token.clone()),
    ];
    let mut checked = 0;
    for (i, (role, token)) in roles.iter().enumerate() {
        let c = api.client(Some(token));
        let endpoints: Vec<(&str, String, Option<Value>, Action)> = vec![
            ("GET", "/v1/whoami".into(), None, Action::Account),
            ("GET", "/v1/agreement".into(), None, Action::Account),
            (
                "POST",
                "/v1/agreement/acknowledge".into(),
                Some(json!({ "sha256": ack })),
                Action::Account,
            ),
            ("GET", "/v1/epochs/table".into(), None, Action::EpochTable),
            ("GET", "/v1/epochs".into(), None, Action::ListEpochs),
            (
                "POST",
                format!("/v1/epochs/{epoch}/cancel"),
                Some(json!({ "until": 0 })),
                Action::OperateRetention,
            ),
            (
                "POST",
                "/v1/deposits".into(),
                Some(json!({ "deposits": [deposit] })),
                Action::Deposit,
            ),
            ("GET", "/v1/recordings".into(), None, Action::ReadRecordings),
            (
                "GET",
                format!("/v1/recordings/{id}"),
                None,
                Action::ReadRecordings,
            ),
            (
                "POST",
                format!("/v1/recordings/{id}/release"),
                Some(json!({ "purpose": "matrix", "operator_key": pk })),
                Action::ReleaseKey,
            ),
            (
                "POST",
                format!("/v1/recordings/{id}/hold"),
                Some(json!({ "reason": "matrix" })),
                Action::Hold,
            ),
            (
                "POST",
                format!("/v1/recordings/{id}/unhold"),
                Some(json!({})),
                Action::Hold,
            ),
            ("GET", "/v1/operators".into(), None, Action::ListOperators),
            (
                "POST",
                "/v1/operators".into(),
                Some(json!({ "id": format!("new{i}"), "role": "auditor" })),
                Action::ManageOperators,
            ),
            (
                "POST",
                format!("/v1/operators/new{i}/token"),
                Some(json!({})),
                Action::ManageOperators,
            ),
            (
                "POST",
                format!("/v1/operators/new{i}/disable"),
                Some(json!({})),
                Action::ManageOperators,
            ),
            ("GET", "/v1/retention".into(), None, Action::ReadRetention),
            (
                "PUT",
                "/v1/retention".into(),
                Some(json!({ "days": 30 })),
                Action::SetRetention,
            ),
            ("GET", "/v1/audit".into(), None, Action::ReadAudit),
            ("GET", "/v1/audit/verify".into(), None, Action::ReadAudit),
            ("GET", "/v1/receipts".into(), None, Action::ReadAudit),
            (
                "POST",
                "/v1/clock/confirm".into(),
                Some(json!({})),
                Action::OperateRetention,
            ),
            // Last: erasing changes what the others see.
            (
                "POST",
                format!("/v1/recordings/{}/erase", RecordingId::generate().unwrap()),
                Some(json!({ "reason": "matrix" })),
                Action::Erase,
            ),
        ];
        for (method, path, body, action) in endpoints {
            let (status, v) = c.raw(method, &path, body.as_ref()).await.unwrap();
            if action.allowed(*role) {
                assert!(
                    status != 403 && status != 401,
                    "{role} {method} {path}: {status} {v}"
                );
            } else {
                assert_eq!(
                    (status, code_of(&v)),
                    (403, "forbidden"),
                    "{role} {method} {path}: {v}"
                );
                assert!(v["error"]["detail"]["needed"].as_str().is_some(), "{v}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 23);
    // Separation of duties, spelled out.
    assert!(
        !Action::ReleaseKey.allowed(Role::Admin)
            && !Action::ManageOperators.allowed(Role::Listener)
    );
    assert!(
        !Action::ReadRecordings.allowed(Role::Gateway) && !Action::Erase.allowed(Role::Auditor)
    );
    // Every denial above was audited.
    let denied = audit(env)
        .iter()
        .filter(|e| e.outcome == "denied: forbidden")
        .count();
    let expected = roles
        .iter()
        .map(|(r, _)| Action::ALL.len() - Action::ALL.iter().filter(|a| a.allowed(*r)).count())
        .sum::<usize>();
    assert!(
        denied >= expected,
        "{denied} denials audited, at least {expected} expected"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_codes() {
    let api = start().await;
    let env = &api.env;
    let l = env.listener("ana");
    let s = env.deposit(T0, "ivf");
    let admin = api.client(Some(&env.admin_token));
    let listener = api.client(Some(&l.token));
    let pk = l.secret.public_key().to_string();
    let id = s.id.to_string();

    let cases: Vec<Case<'_>> = vec![
        (
            &listener,
            "POST",
            format!("/v1/recordings/{id}/release"),
            Some(json!({ "purpose": "", "operator_key": pk })),
            400,
            "purpose_required",
        ),
        (
            &listener,
            "POST",
            format!("/v1/recordings/{id}/release"),
            Some(json!({ "purpose": "x".repeat(600), "operator_key": pk })),
            400,
            "purpose_too_long",
        ),
        (
            &listener,
            "POST",
            format!("/v1/recordings/{id}/release"),
            Some(json!({ "operator_key": pk })),
            400,
            "invalid_input",
        ),
        (
            &listener,
            "POST",
            format!("/v1/recordings/{id}/release"),
            Some(json!({ "purpose": "p", "operator_key": "00".repeat(32) })),
            400,
            "invalid_input",
        ),
        (
            &listener,
            "GET",
            "/v1/recordings/..%2F..%2Fetc%2Fpasswd".into(),
            None,
            400,
            "invalid_input",
        ),
        (
            &listener,
            "GET",
            "/v1/recordings/../../etc/passwd".into(),
            None,
            400,
            "invalid_input",
        ),
        (
            &listener,
            "GET",
            format!("/v1/recordings/{}", id.to_uppercase()),
            None,
            400,
            "invalid_input",
        ),
        (
            &listener,
            "GET",
            format!("/v1/recordings/{}", RecordingId::generate().unwrap()),
            None,
            404,
            "unknown_recording",
        ),
        (
            &listener,
            "GET",
            "/v1/recordings?line=..%2Fx".into(),
            None,
            400,
            "invalid_input",
        ),
        (
            &listener,
            "GET",
            "/v1/recordings?status=gone".into(),
            None,
            400,
            "invalid_input",
        ),
        (
            &admin,
            "POST",
            "/v1/operators/..%2Fadmin/disable".into(),
            Some(json!({})),
            400,
            "invalid_input",
        ),
        (
            &admin,
            "POST",
            "/v1/operators".into(),
            Some(json!({ "id": "../x", "role": "admin" })),
            400,
            "invalid_input",
        ),
        (
            &admin,
            "POST",
            "/v1/operators".into(),
            Some(json!({ "id": "ana", "role": "listener" })),
            409,
            "already_exists",
        ),
        (
            &admin,
            "POST",
            "/v1/operators".into(),
            Some(json!({ "id": "zed", "role": "root" })),
            400,
            "invalid_input",
        ),
        (
            &admin,
            "POST",
            "/v1/operators/nobody/disable".into(),
            Some(json!({})),
            404,
            "unknown_operator",
        ),
        (
            &admin,
            "PUT",
            "/v1/retention".into(),
            Some(json!({ "days": -5 })),
            400,
            "invalid_retention",
        ),
        (
            &admin,
            "PUT",
            "/v1/retention".into(),
            Some(json!({ "days": 0 })),
            400,
            "invalid_retention",
        ),
        (
            &admin,
            "PUT",
            "/v1/retention".into(),
            Some(json!({ "days": 1_000_000_000_000i64 })),
            400,
            "invalid_retention",
        ),
        (
            &admin,
            "PUT",
            "/v1/retention".into(),
            Some(json!({ "days": "30d" })),
            400,
            "invalid_input",
        ),
        (
            &admin,
            "PUT",
            "/v1/retention".into(),
            Some(json!({ "days": 30, "line": "a/b" })),
            400,
            "invalid_input",
        ),
        (
            &admin,
            "POST",
            format!("/v1/recordings/{id}/erase"),
            Some(json!({ "reason": "" })),
            400,
            "invalid_input",
        ),
        (
            &admin,
            "POST",
            format!("/v1/recordings/{id}/unhold"),
            Some(json!({})),
            409,
            "not_held",
        ),
        (
            &admin,
            "POST",
            "/v1/agreement/acknowledge".into(),
            Some(json!({ "sha256": "00" })),
            400,
            "agreement_mismatch",
        ),
        (
            &admin,
            "GET",
            "/v1/nothing/here".into(),
            None,
            400,
            "invalid_input",
        ),
    ];
    for (c, method, path, body, status, code) in cases {
        let (got, v) = c.raw(method, &path, body.as_ref()).await.unwrap();
        assert_eq!((got, code_of(&v)), (status, code), "{method} {path}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    // Held recordings cannot be erased.
    admin.hold(&s.id, "litigation").await.unwrap();
    let err = admin.erase(&s.id, "request").await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::LegalHold);

    // Oversized body.
    let (status, v) = admin
        .raw_bytes("POST", "/v1/operators", vec![b' '; 3 * 1024 * 1024])
        .await
        .unwrap();
    assert_eq!((status, code_of(&v)), (413, "payload_too_large"));

    // Tokens: none, garbage, unknown, expired.
    let (status, v) = api
        .client(None)
        .raw("GET", "/v1/whoami", None)
        .await
        .unwrap();
    assert_eq!((status, code_of(&v)), (401, "unauthenticated"));
    let (status, v) = api
        .client(Some("Bearer nonsense"))
        .raw("GET", "/v1/whoami", None)
        .await
        .unwrap();
    assert_eq!((status, code_of(&v)), (401, "unauthenticated"));
    let unknown = Token::generate().unwrap();
    let (status, v) = api
        .client(Some(&unknown.expose()))
        .raw("GET", "/v1/whoami", None)
        .await
        .unwrap();
    assert_eq!((status, code_of(&v)), (401, "unauthenticated"));
    env.clock.advance(Duration::from_secs(91 * 86_400));
    let err = listener.whoami().await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
    assert!(matches!(err, ClientError::Api { status: 401, .. }));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_is_pinned_and_health_and_metrics_answer() {
    let api = start().await;
    let anon = api.client(None);
    let h = anon.health().await.unwrap();
    assert!(h.clock_trusted);
    assert_eq!(h.identity, api.env.svc.identity_hex());
    assert_eq!(anon.identity().await.unwrap(), api.env.svc.identity_hex());
    let m = anon.metrics().await.unwrap();
    assert!(m.contains("callseal_escrow_deposits_total 0"), "{m}");
    api.env.deposit(T0, "ivf");
    assert!(
        anon.metrics()
            .await
            .unwrap()
            .contains("callseal_escrow_deposits_total 1")
    );

    // Another escrow's CA does not vouch for this server.
    let other = tempfile::tempdir().unwrap();
    datadir::init(
        other.path(),
        &InitOptions::default(),
        &config(),
        std::sync::Arc::new(ManualClock::new(T0)),
    )
    .unwrap();
    let wrong_ca = std::fs::read(DataDir::new(other.path()).tls().ca_cert).unwrap();
    let c = EscrowClient::new(ClientConfig {
        url: api.url.clone(),
        ca_pem: wrong_ca,
        token: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert!(matches!(
        c.health().await,
        Err(ClientError::TlsPinMismatch { .. })
    ));
    // The right CA but a name the certificate does not carry.
    let port = api.url.rsplit(':').next().unwrap().to_owned();
    let c = EscrowClient::new(ClientConfig {
        url: format!("https://127.0.0.2:{port}"),
        ca_pem: api.ca.clone(),
        token: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert!(matches!(
        c.health().await,
        Err(ClientError::TlsPinMismatch { .. }) | Err(ClientError::Unreachable { .. })
    ));
    // The signed epoch table verifies with the pinned identity and the gateway link works remotely.
    let gw = api.client(Some(&api.env.gateway_token));
    let t = GatewayLink::epoch_table(&gw).await.unwrap();
    let vk =
        table::parse_identity(&std::fs::read_to_string(api.env.datadir().identity_pub()).unwrap())
            .unwrap();
    let table = t.verify(&vk).unwrap();
    assert!(!table.epochs.is_empty());
    let mut forged = t.clone();
    forged.table = forged
        .table
        .replace("\"default_days\":30", "\"default_days\":31");
    assert!(forged.verify(&vk).is_err());
    api.stop().await;

    // Nothing listening any more.
    let err = anon.health().await.err().unwrap();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
}
