//! The escrow connection (the [`Escrow`] trait over the escrow crate's typed HTTPS client, with
//! the pinned CA and the operator's token), and the commands that create or run the escrow:
//! `init` and `escrow`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use callseal_escrow::client::{ClientConfig, ClientError, EscrowClient};
use callseal_escrow::model as m;
use callseal_escrow::{CallerCode, DataDir, ErrorCode, LineId, OperatorId, Timestamp};
use callseal_recording::keys::{PublicKey, RecordingId, WrappedKey};
use zeroize::Zeroizing;

use super::Ctx;
use super::api::*;
use super::doctor::Finding;
use crate::args::{EscrowArgs, InitArgs, Role, Status};
use crate::error::CliError;
use crate::output::print_json;
use crate::secrets::{self, Token};

/// Where the escrow listens unless told otherwise.
pub const DEFAULT_URL: &str = "https://127.0.0.1:7443";
const TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to the escrow over HTTPS with the pinned CA and the operator's token.
pub struct Remote {
    client: EscrowClient,
    identity: Option<ed25519_dalek::VerifyingKey>,
}

fn url_of(ctx: &Ctx) -> String {
    ctx.global
        .escrow
        .clone()
        .or_else(|| DataDir::new(&ctx.global.data).url())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

fn ca_of(ctx: &Ctx) -> PathBuf {
    ctx.global
        .ca
        .clone()
        .unwrap_or_else(|| DataDir::new(&ctx.global.data).tls().ca_cert)
}

/// Connects with the operator's token (checked locally first: present, private file).
pub async fn connect(ctx: &Ctx) -> Result<Remote, CliError> {
    let token = secrets::load_token(&ctx.token_file())?;
    open(ctx, Some(token)).await
}

async fn open(ctx: &Ctx, token: Option<Token>) -> Result<Remote, CliError> {
    let url = url_of(ctx);
    let ca_path = ca_of(ctx);
    let ca_pem = match std::fs::read(&ca_path) {
        Ok(b) => b,
        Err(_) => {
            // Without a CA there is nothing to pin; still say "unreachable" if nothing listens.
            probe(&url).await?;
            return Err(CliError::NotInitialised {
                path: ctx.global.data.clone(),
                missing: "escrow/tls/ca.pem (or pass --ca FILE)",
            });
        }
    };
    let client = EscrowClient::new(ClientConfig {
        url: url.clone(),
        ca_pem,
        token: token.map(|t| Zeroizing::new(t.expose().to_owned())),
        timeout: TIMEOUT,
    })
    .map_err(map_err)?;
    client.health().await.map_err(map_err)?;
    let identity = std::fs::read_to_string(DataDir::new(&ctx.global.data).identity_pub())
        .ok()
        .and_then(|t| callseal_escrow::table::parse_identity(&t).ok());
    Ok(Remote { client, identity })
}

async fn probe(url: &str) -> Result<(), CliError> {
    let hostport = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&hostport)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CliError::EscrowUnreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        }),
        Err(_) => Err(CliError::EscrowUnreachable {
            url: url.to_owned(),
            reason: "connection timed out".into(),
        }),
    }
}

fn detail_str(e: &m::ApiError, key: &str) -> String {
    e.detail
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn detail_u64(e: &m::ApiError, key: &str) -> u64 {
    e.detail
        .get(key)
        .and_then(|v| v.as_i64())
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

fn day_of(e: &m::ApiError) -> Option<String> {
    e.detail
        .get("date")
        .and_then(|v| v.as_str())
        .map(|d| d.chars().take(10).collect())
}

/// The one mapping from escrow client errors to CLI errors (and so to exit codes).
pub fn map_err(e: ClientError) -> CliError {
    match e {
        ClientError::Unreachable { url, reason } => CliError::EscrowUnreachable { url, reason },
        ClientError::TlsPinMismatch { url, .. } => CliError::TlsPinMismatch { url },
        ClientError::Config { reason } => CliError::Usage { message: reason },
        ClientError::Protocol { reason, .. } => CliError::Component {
            component: "escrow client",
            reason,
        },
        ClientError::Api { error, .. } => match error.code {
            ErrorCode::Unauthenticated => CliError::TokenRejected,
            ErrorCode::TokenExpired => CliError::TokenExpired { expired_at: None },
            ErrorCode::Forbidden => CliError::WrongRole {
                action: detail_str(&error, "action"),
                needed: detail_str(&error, "needed"),
            },
            ErrorCode::OperatorInactive if detail_str(&error, "status") == "disabled" => {
                CliError::OperatorDisabled {
                    name: detail_str(&error, "operator"),
                }
            }
            ErrorCode::OperatorInactive => CliError::AgreementPending,
            ErrorCode::PurposeRequired => CliError::PurposeMissing,
            ErrorCode::InvalidInput if detail_str(&error, "field") == "operator key" => {
                CliError::OperatorKeyNotEnrolled {
                    reason: detail_str(&error, "reason"),
                }
            }
            ErrorCode::PurposeTooLong => CliError::PurposeTooLong {
                len: detail_u64(&error, "len") as usize,
                max: detail_u64(&error, "max") as usize,
            },
            ErrorCode::InvalidRetention => CliError::RetentionOutOfRange {
                days: detail_u64(&error, "days").into(),
                min: detail_u64(&error, "min"),
                max: detail_u64(&error, "max"),
            },
            ErrorCode::UnknownRecording => CliError::UnknownRecording {
                id: detail_str(&error, "id"),
            },
            ErrorCode::UnknownOperator => CliError::UnknownOperator {
                name: detail_str(&error, "id"),
            },
            ErrorCode::KeyShredded => CliError::KeyShredded {
                id: detail_str(&error, "id"),
                shredded_on: day_of(&error).unwrap_or_else(|| "an earlier date".into()),
            },
            ErrorCode::Erased => CliError::RecordingErased {
                id: detail_str(&error, "id"),
                erased_on: day_of(&error),
            },
            ErrorCode::LegalHold => CliError::LegalHold {
                id: detail_str(&error, "id"),
            },
            ErrorCode::AlreadyExists => CliError::OperatorExists {
                name: detail_str(&error, "what")
                    .trim_start_matches("operator ")
                    .to_owned(),
            },
            code => CliError::EscrowRefused {
                code: code.to_string(),
                message: error.message,
            },
        },
        other => CliError::Component {
            component: "escrow client",
            reason: other.to_string(),
        },
    }
}

fn status_of(s: m::RecordingStatus) -> Status {
    match s {
        m::RecordingStatus::Sealed => Status::Sealed,
        m::RecordingStatus::Held => Status::Held,
        m::RecordingStatus::PendingShred => Status::PendingShred,
        m::RecordingStatus::Shredded => Status::Shredded,
        m::RecordingStatus::Erased => Status::Erased,
    }
}

fn role_of(r: callseal_escrow::Role) -> Role {
    match r {
        callseal_escrow::Role::Admin => Role::Admin,
        callseal_escrow::Role::Auditor => Role::Auditor,
        callseal_escrow::Role::Listener => Role::Listener,
        callseal_escrow::Role::Gateway => Role::Gateway,
    }
}

fn role_to(r: Role) -> callseal_escrow::Role {
    match r {
        Role::Admin => callseal_escrow::Role::Admin,
        Role::Auditor => callseal_escrow::Role::Auditor,
        Role::Listener => callseal_escrow::Role::Listener,
        Role::Gateway => callseal_escrow::Role::Gateway,
    }
}

fn recording_view(r: m::RecordingInfo) -> RecordingView {
    let consent = r.consent.map(|c| ConsentView {
        decision: "consented".into(),
        digit: c.digit.map(|d| d.to_string()),
        decided_at_ms: Some(c.decided_at.unix_ms()),
        prompt_sha256: Some(c.prompt_sha256),
        signed_by: c.gateway_key.map(|k| {
            format!(
                "{} (key {})",
                r.gateway,
                k.chars().take(16).collect::<String>()
            )
        }),
    });
    RecordingView {
        id: r.id.to_string(),
        status: status_of(r.status),
        caller_code: r.caller_code,
        line: Some(r.line).filter(|l| !l.is_empty()),
        started_at_ms: r.started_at.unix_ms(),
        ended_at_ms: r.ended_at.map(Timestamp::unix_ms),
        epoch: r.epoch,
        shred_at_ms: Some(r.shred_after.unix_ms()),
        held: r.status == m::RecordingStatus::Held,
        consent,
        destroyed_at_ms: r.destroyed_at.map(Timestamp::unix_ms),
        gateway: Some(r.gateway).filter(|g| !g.is_empty()),
    }
}

fn operator_view(o: m::OperatorInfo) -> OperatorView {
    OperatorView {
        name: o.id.to_string(),
        role: role_of(o.role),
        status: o.status.as_str().to_owned(),
        created_at_ms: Some(o.created_at.unix_ms()),
        acknowledged_at_ms: o.acknowledged_at.map(Timestamp::unix_ms),
        token_expires_at_ms: o.token_expires_at.map(Timestamp::unix_ms),
    }
}

fn parse_id(id: &str) -> Result<RecordingId, CliError> {
    id.parse().map_err(|_| CliError::MalformedRecordingId {
        id: id.chars().take(64).collect(),
    })
}

fn usage(e: callseal_escrow::EscrowError) -> CliError {
    CliError::Usage {
        message: e.to_string(),
    }
}

impl Escrow for Remote {
    async fn recordings(&self, f: &RecordingFilter) -> Result<Vec<RecordingView>, CliError> {
        let filter = m::RecordingFilter {
            caller_code: f
                .caller_code
                .as_deref()
                .map(CallerCode::new)
                .transpose()
                .map_err(usage)?,
            since: f.since_ms.map(Timestamp::from_unix_ms),
            until: f.until_ms.map(Timestamp::from_unix_ms),
            line: f
                .line
                .as_deref()
                .map(LineId::new)
                .transpose()
                .map_err(usage)?,
            status: f.status.map(|s| match s {
                Status::Sealed => m::RecordingStatus::Sealed,
                Status::Held => m::RecordingStatus::Held,
                Status::PendingShred => m::RecordingStatus::PendingShred,
                Status::Shredded => m::RecordingStatus::Shredded,
                Status::Erased => m::RecordingStatus::Erased,
            }),
            epoch: None,
            limit: None,
        };
        Ok(self
            .client
            .recordings(&filter)
            .await
            .map_err(map_err)?
            .into_iter()
            .map(recording_view)
            .collect())
    }

    async fn recording(&self, id: &str) -> Result<RecordingView, CliError> {
        self.client
            .recording(&parse_id(id)?)
            .await
            .map(recording_view)
            .map_err(map_err)
    }

    async fn release_key(
        &self,
        id: &str,
        purpose: &str,
        operator_public: &PublicKey,
    ) -> Result<WrappedKey, CliError> {
        self.client
            .release_key(&parse_id(id)?, purpose, operator_public)
            .await
            .map(|r| r.wrapped_key)
            .map_err(map_err)
    }

    async fn erase(&self, id: &str, reason: &str) -> Result<(), CliError> {
        self.client
            .erase(&parse_id(id)?, reason)
            .await
            .map_err(map_err)
    }

    async fn hold(&self, id: &str, reason: &str) -> Result<(), CliError> {
        self.client
            .hold(&parse_id(id)?, reason)
            .await
            .map_err(map_err)
    }

    async fn release_hold(&self, id: &str) -> Result<(), CliError> {
        self.client
            .release_hold(&parse_id(id)?)
            .await
            .map_err(map_err)
    }

    async fn operators(&self) -> Result<Vec<OperatorView>, CliError> {
        Ok(self
            .client
            .operators()
            .await
            .map_err(map_err)?
            .into_iter()
            .map(operator_view)
            .collect())
    }

    async fn add_operator(
        &self,
        name: &str,
        role: Role,
        public_key: Option<&str>,
    ) -> Result<Enrolment, CliError> {
        let public_key = public_key
            .map(str::parse::<PublicKey>)
            .transpose()
            .map_err(|_| CliError::Usage {
                message:
                    "--public-key must be the 64 hex digits printed by `callseal operator keygen`"
                        .into(),
            })?;
        let new = m::NewOperator {
            id: OperatorId::new(name).map_err(usage)?,
            role: role_to(role),
            public_key,
        };
        let en = self.client.add_operator(&new).await.map_err(map_err)?;
        Ok(Enrolment {
            operator: operator_view(en.operator),
            token: Token::new(en.token),
        })
    }

    async fn disable_operator(&self, name: &str) -> Result<(), CliError> {
        self.client
            .disable_operator(&OperatorId::new(name).map_err(usage)?)
            .await
            .map_err(map_err)
    }

    async fn agreement(&self) -> Result<AgreementView, CliError> {
        let a = self.client.agreement().await.map_err(map_err)?;
        Ok(AgreementView {
            text: a.text,
            sha256: a.sha256,
        })
    }

    async fn acknowledge(&self, sha256: &str) -> Result<(), CliError> {
        self.client.acknowledge(sha256).await.map_err(map_err)
    }

    async fn retention(&self) -> Result<RetentionView, CliError> {
        self.client
            .retention()
            .await
            .map(retention_view)
            .map_err(map_err)
    }

    async fn set_retention(
        &self,
        days: u32,
        line: Option<&str>,
    ) -> Result<RetentionView, CliError> {
        let line = line.map(LineId::new).transpose().map_err(usage)?;
        self.client
            .set_retention(i64::from(days), line.as_ref())
            .await
            .map(retention_view)
            .map_err(map_err)
    }

    async fn epochs(&self) -> Result<Vec<EpochView>, CliError> {
        let eps = self.client.epochs().await.map_err(map_err)?;
        Ok(eps
            .into_iter()
            .map(|e| EpochView {
                id: e.epoch,
                state: match e.state {
                    m::EpochState::Upcoming => "upcoming",
                    m::EpochState::Active => "active",
                    m::EpochState::PendingShred => "pending_shred",
                    m::EpochState::Shredded => "shredded",
                }
                .into(),
                shred_at_ms: Some(e.shred_after.unix_ms()),
                shredded_at_ms: e.destroyed_at.map(Timestamp::unix_ms),
                recordings: Some(e.recordings),
            })
            .collect())
    }

    async fn audit(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntryView>, CliError> {
        let entries = self
            .client
            .audit(1, since_ms.map(Timestamp::from_unix_ms), 10_000)
            .await
            .map_err(map_err)?;
        Ok(entries
            .into_iter()
            .map(|e| AuditEntryView {
                seq: e.seq,
                at_ms: e.at.unix_ms(),
                actor: e.actor,
                action: e.action,
                target: e.target,
                purpose: e.purpose,
                outcome: e.outcome,
            })
            .collect())
    }

    async fn verify_audit(&self) -> Result<AuditVerifyView, CliError> {
        let v = self.client.verify_audit().await.map_err(map_err)?;
        Ok(AuditVerifyView {
            ok: v.ok,
            entries: v.entries,
            head: v.head,
            problem: v.problem,
        })
    }

    async fn receipts(&self, id: Option<&str>) -> Result<Vec<ReceiptView>, CliError> {
        if let Some(i) = id
            && !(i.len() <= 32 && !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(CliError::Usage {
                message: format!("\"{i}\" is neither an epoch number nor a recording id"),
            });
        }
        let rs = self
            .client
            .receipts(id.map(str::to_ascii_lowercase).as_deref())
            .await
            .map_err(map_err)?;
        rs.into_iter()
            .map(|r| {
                let body = r.parsed().map_err(|e| CliError::Component {
                    component: "escrow client",
                    reason: e.to_string(),
                })?;
                // Verify locally when this data folder holds the escrow's identity.
                let valid = self.identity.as_ref().map_or(r.signature_valid, |k| {
                    callseal_escrow::verify_receipt(&r, k)
                });
                Ok(ReceiptView {
                    id: r.seq.to_string(),
                    subject: body.subject,
                    reason: body.reason,
                    destroyed_at_ms: body.destroyed_at.unix_ms(),
                    recordings: Some(body.keys_destroyed),
                    signature: r.signature,
                    signature_valid: Some(valid),
                })
            })
            .collect()
    }
}

fn retention_view(p: m::RetentionPolicy) -> RetentionView {
    RetentionView {
        default_days: p.default_days,
        lines: p
            .lines
            .into_iter()
            .map(|l| LineRetention {
                line: l.line.to_string(),
                days: l.days,
            })
            .collect(),
    }
}

fn esc_err(e: callseal_escrow::EscrowError) -> CliError {
    CliError::Component {
        component: "escrow",
        reason: e.to_string(),
    }
}

fn create_data_dir(path: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| CliError::io("cannot create", path, &e))
}

/// `callseal init`: a new data folder with everything the escrow and the gateway need.
pub async fn init(ctx: &Ctx, a: &InitArgs) -> Result<(), CliError> {
    let data = ctx.global.data.clone();
    let dir = DataDir::new(&data);
    if dir.is_initialised() || dir.database().exists() {
        return Err(CliError::AlreadyInitialised { path: data });
    }
    let admin = OperatorId::new(&a.admin).map_err(usage)?;
    if a.escrow_hosts.is_empty() {
        return Err(CliError::Usage {
            message: "give at least one --escrow-host".into(),
        });
    }
    let host = if a.escrow_hosts.iter().any(|h| h == "127.0.0.1") {
        "127.0.0.1".to_owned()
    } else {
        a.escrow_hosts[0].clone()
    };
    let url = if host.contains(':') {
        format!("https://[{host}]:7443")
    } else {
        format!("https://{host}:7443")
    };
    let opts = callseal_escrow::InitOptions {
        admin: admin.clone(),
        hosts: a.escrow_hosts.clone(),
        url,
        ..Default::default()
    };
    create_data_dir(&data)?;
    let report = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let gw = data.join("gateway");
            create_data_dir(&gw)?;
            callseal_gateway::secrets::Pepper::open_or_create(&gw).map_err(|e| {
                CliError::Component {
                    component: "gateway",
                    reason: e.to_string(),
                }
            })?;
            callseal_gateway::secrets::GatewayKey::open_or_create(&gw).map_err(|e| {
                CliError::Component {
                    component: "gateway",
                    reason: e.to_string(),
                }
            })?;
            callseal_escrow::datadir::init(
                &data,
                &opts,
                &callseal_escrow::ServiceConfig::default(),
                Arc::new(callseal_escrow::SystemClock),
            )
            .map_err(esc_err)
        })
        .await
        .map_err(|e| CliError::Component {
            component: "init",
            reason: e.to_string(),
        })??
    };
    let token = report.admin_token.expose();
    if ctx.global.json {
        return print_json(&serde_json::json!({
            "data": data,
            "admin": admin.as_str(),
            "admin_token": token.as_str(),
            "gateway_token_file": report.gateway_token_file,
            "identity": report.identity,
            "ca": report.ca_cert,
            "url": report.url,
        }));
    }
    println!(
        "Created {} (escrow identity, keyring, TLS CA, gateway credentials, pepper).",
        data.display()
    );
    println!("Escrow identity (gateways pin it): {}", report.identity);
    println!(
        "Admin operator {admin}; token (shown once, store it in a 0600 file or CALLSEAL_TOKEN):"
    );
    println!("{}", token.as_str());
    println!("Next: `callseal operator acknowledge` with that token, then `callseal serve`.");
    Ok(())
}

/// `callseal escrow`: only the escrow's HTTPS API and its retention timer, until Ctrl-C/SIGTERM.
pub async fn escrow(ctx: &Ctx, a: &EscrowArgs) -> Result<(), CliError> {
    let data = ctx.global.data.clone();
    let dir = DataDir::new(&data);
    if !dir.is_initialised() {
        return Err(CliError::NotInitialised {
            path: data,
            missing: "escrow/keyring",
        });
    }
    let _lock = super::serve::lock_folder(&data.join("escrow"))?;
    let (clock, tick): (Arc<dyn callseal_escrow::Clock>, Duration) =
        match &a.test_clock.test_clock_file {
            Some(f) => (
                Arc::new(
                    callseal_escrow::TestFileClock::new(f)
                        .map_err(|message| CliError::Usage { message })?,
                ),
                Duration::from_millis(200),
            ),
            None => (
                Arc::new(callseal_escrow::SystemClock),
                Duration::from_secs(30),
            ),
        };
    let listen = a.listen.clone().unwrap_or_else(|| {
        dir.url()
            .map(|u| {
                u.trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned()
            })
            .unwrap_or_else(|| "127.0.0.1:7443".into())
    });
    let listen = listen.parse().map_err(|_| CliError::Usage {
        message: format!("--listen {listen} is not an IP:PORT address, e.g. 127.0.0.1:7443"),
    })?;
    let svc = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            callseal_escrow::Service::open(&dir, callseal_escrow::ServiceConfig::default(), clock)
        })
        .await
        .map_err(|e| CliError::Component {
            component: "escrow",
            reason: e.to_string(),
        })?
        .map_err(esc_err)?
    };
    let svc = Arc::new(svc);
    let server = callseal_escrow::server::Server::bind(
        svc.clone(),
        &dir,
        &callseal_escrow::server::ServerConfig { listen, tick },
    )
    .await
    .map_err(esc_err)?;
    println!(
        "Escrow listening on {} (identity {}).",
        server.url(),
        svc.identity_hex()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.run(shutdown_signal()).await.map_err(esc_err)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Doctor checks that need the escrow: TLS configured, escrow reachable, retention policy.
pub async fn doctor_checks(ctx: &Ctx, out: &mut Vec<Finding>) {
    let ca = ca_of(ctx);
    if !ca.exists() {
        out.push(Finding::fail(
            "tls",
            format!("no pinned CA at {}", ca.display()),
            format!(
                "run `callseal --data {} init`, or pass --ca FILE",
                ctx.global.data.display()
            ),
        ));
        return;
    }
    out.push(Finding::ok(
        "tls",
        format!("CA pinned from {}", ca.display()),
    ));
    match open(ctx, None).await {
        Ok(r) => {
            match r.client.health().await {
                Ok(h) if h.clock_trusted => out.push(Finding::ok("escrow", format!("reachable at {}", r.client.url()))),
                Ok(h) => out.push(Finding::fail(
                    "escrow",
                    h.alert.unwrap_or_else(|| "the escrow does not trust its clock".into()),
                    "check the clock (timedatectl), then an admin confirms it: POST /v1/clock/confirm",
                )),
                Err(e) => out.push(Finding::fail("escrow", e.to_string(), "start it with `callseal serve` or `callseal escrow`")),
            }
            if let Ok(token) = secrets::load_token(&ctx.token_file()) {
                let with_token = EscrowClient::new(ClientConfig {
                    url: r.client.url().to_owned(),
                    ca_pem: std::fs::read(&ca).unwrap_or_default(),
                    token: Some(Zeroizing::new(token.expose().to_owned())),
                    timeout: TIMEOUT,
                });
                if let Ok(c) = with_token {
                    match c.retention().await {
                        Ok(p) => out.push(Finding::ok(
                            "retention",
                            format!(
                                "{} days by default, {} line override(s)",
                                p.default_days,
                                p.lines.len()
                            ),
                        )),
                        Err(e) => out.push(Finding::warn(
                            "retention",
                            format!("cannot read the policy: {e}"),
                            "run doctor with an admin or auditor token",
                        )),
                    }
                }
            }
        }
        Err(e) => {
            let r = e.report();
            out.push(Finding::fail("escrow", r.message, r.hint));
        }
    }
}
