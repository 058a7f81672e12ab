//! The HTTPS/JSON API (axum over hyper over tokio-rustls) and the retention timer: the thin
//! tokio shell around [`Service`]. Every handler authenticates the bearer token, runs the
//! service call on the blocking pool (SQLite) and maps errors to their stable code and HTTP
//! status ([`crate::ErrorCode::http_status`]). Bodies are limited; identifiers are parsed into
//! strict types before anything else happens.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use callseal_recording::keys::RecordingId;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::datadir::DataDir;
use crate::error::EscrowError;
use crate::ids::{CallerCode, LineId, OperatorId, Timestamp};
use crate::model::{ApiErrorBody, NewOperator, RecordingFilter, RecordingStatus, ReleaseRequest};
use crate::service::{Actor, Service};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
const MAX_CONNECTIONS: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how often.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address (port 0 picks a free port; see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// Interval of the retention round.
    pub tick: Duration,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    svc: Arc<Service>,
    tick: Duration,
    local: SocketAddr,
}

impl Server {
    /// Binds the listener and loads the TLS files of `dir`; writes the bound URL to
    /// `escrow/escrow.url` so local clients find it.
    pub async fn bind(
        svc: Arc<Service>,
        dir: &DataDir,
        cfg: &ServerConfig,
    ) -> Result<Server, EscrowError> {
        let tls = crate::tls::server_config(&dir.tls())?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| EscrowError::Internal {
                what: format!("cannot listen on {}: {e}", cfg.listen),
            })?;
        let local = listener.local_addr().map_err(|e| EscrowError::Internal {
            what: e.to_string(),
        })?;
        let server = Server {
            listener,
            acceptor: TlsAcceptor::from(tls),
            svc,
            tick: cfg.tick,
            local,
        };
        crate::fsutil::write_atomic_public(
            &dir.url_file(),
            format!("{}\n", server.url()).as_bytes(),
        )?;
        Ok(server)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// `https://ADDR:PORT` of the bound address.
    pub fn url(&self) -> String {
        format!("https://{}", self.local)
    }

    /// Serves until `shutdown` completes; runs the retention round every `tick`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), EscrowError> {
        let app = router(self.svc.clone());
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = tick.tick() => {
                    let svc = self.svc.clone();
                    match tokio::task::spawn_blocking(move || svc.tick()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "retention round failed"),
                        Err(e) => tracing::error!(error = %e, "retention round panicked"),
                    }
                }
                accepted = self.listener.accept() => {
                    let Ok((tcp, _peer)) = accepted else { continue };
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        drop(tcp);
                        continue;
                    };
                    let acceptor = self.acceptor.clone();
                    let app = app.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else { return };
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(30))
                            .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                            .await;
                    });
                }
            }
        }
    }
}

/// The API routes (also usable without TLS in tests of the routing alone).
pub fn router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/identity", get(identity))
        .route(
            "/v1/whoami",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.whoami(a))),
        )
        .route(
            "/v1/epochs/table",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.epoch_table(a))),
        )
        .route(
            "/v1/epochs",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.epochs(a))),
        )
        .route("/v1/epochs/{epoch}/cancel", post(cancel_shred))
        .route("/v1/deposits", post(deposits))
        .route("/v1/recordings", get(recordings))
        .route("/v1/recordings/{id}", get(recording))
        .route("/v1/recordings/{id}/release", post(release))
        .route("/v1/recordings/{id}/erase", post(erase))
        .route("/v1/recordings/{id}/hold", post(hold))
        .route("/v1/recordings/{id}/unhold", post(unhold))
        .route(
            "/v1/operators",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.operators(a)))
                .post(add_operator),
        )
        .route("/v1/operators/{id}/disable", post(disable_operator))
        .route("/v1/operators/{id}/token", post(renew_token))
        .route(
            "/v1/agreement",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.agreement(a))),
        )
        .route("/v1/agreement/acknowledge", post(acknowledge))
        .route(
            "/v1/retention",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.retention(a)))
                .put(set_retention),
        )
        .route("/v1/audit", get(audit))
        .route(
            "/v1/audit/verify",
            get(|s: State<Arc<Service>>, h: HeaderMap| call(s, h, |svc, a| svc.verify_audit(a))),
        )
        .route("/v1/receipts", get(receipts))
        .route(
            "/v1/clock/confirm",
            post(|s: State<Arc<Service>>, h: HeaderMap| {
                call(s, h, |svc, a| svc.confirm_clock(a).map(|()| Done::yes()))
            }),
        )
        .fallback(|| async {
            error_response(&EscrowError::invalid("path", "no such API endpoint"))
        })
        .with_state(svc)
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

impl Done {
    fn yes() -> Self {
        Done { ok: true }
    }
}

/// The JSON error answer.
pub fn error_response(e: &EscrowError) -> Response {
    let api = e.to_api();
    if matches!(
        api.code,
        crate::ErrorCode::Storage | crate::ErrorCode::Internal
    ) {
        tracing::error!(error = %e, "request failed");
    }
    let status =
        StatusCode::from_u16(api.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(ApiErrorBody { error: api })).into_response()
}

fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Authenticates, then runs `f` on the blocking pool.
async fn call<T, F>(State(svc): State<Arc<Service>>, headers: HeaderMap, f: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Service, &Actor) -> Result<T, EscrowError> + Send + 'static,
{
    let token = bearer(&headers);
    let res = tokio::task::spawn_blocking(move || {
        let actor = svc.authenticate(token.as_deref().ok_or(EscrowError::Unauthenticated)?)?;
        f(&svc, &actor)
    })
    .await;
    match res {
        Ok(Ok(v)) => (StatusCode::OK, axum::Json(v)).into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&EscrowError::Internal {
            what: "request handler panicked".into(),
        }),
    }
}

async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, EscrowError> {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| EscrowError::PayloadTooLarge { limit: BODY_LIMIT })?;
    serde_json::from_slice(&bytes).map_err(|e| EscrowError::invalid("request body", e.to_string()))
}

fn parse_id(s: &str) -> Result<RecordingId, EscrowError> {
    s.parse()
        .map_err(|_| EscrowError::invalid("recording id", "expected 32 lowercase hex digits"))
}

/// Parses the path id and the JSON body, then calls `f` with both.
async fn with_id_body<B, T, F>(
    s: State<Arc<Service>>,
    h: HeaderMap,
    id: &str,
    body: Body,
    f: F,
) -> Response
where
    B: DeserializeOwned + Send + 'static,
    T: Serialize + Send + 'static,
    F: FnOnce(&Service, &Actor, RecordingId, B) -> Result<T, EscrowError> + Send + 'static,
{
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(e) => return error_response(&e),
    };
    let body: B = match json_body(body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    call(s, h, move |svc, a| f(svc, a, id, body)).await
}

async fn health(State(svc): State<Arc<Service>>) -> Response {
    match tokio::task::spawn_blocking(move || svc.health()).await {
        Ok(Ok(h)) => (StatusCode::OK, axum::Json(h)).into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&EscrowError::Internal {
            what: "health check panicked".into(),
        }),
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    let text = tokio::task::spawn_blocking(move || svc.metrics_text())
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn identity(State(svc): State<Arc<Service>>) -> Response {
    axum::Json(serde_json::json!({ "identity": svc.identity_hex() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepositsBody {
    deposits: Vec<crate::model::Deposit>,
}

/// One result per deposit.
#[derive(Debug, Serialize, Deserialize)]
pub struct DepositResults {
    /// In request order.
    pub results: Vec<DepositResult>,
}

/// The outcome of one deposit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositResult {
    /// Stored (or already stored, or discarded after an erasure).
    Outcome(crate::model::DepositOutcome),
    /// Refused.
    Error(crate::model::ApiError),
}

/// Most deposits in one request.
pub const MAX_BATCH: usize = 1000;

async fn deposits(s: State<Arc<Service>>, h: HeaderMap, body: Body) -> Response {
    let body: DepositsBody = match json_body(body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    if body.deposits.is_empty() || body.deposits.len() > MAX_BATCH {
        return error_response(&EscrowError::invalid(
            "deposits",
            format!("send 1 to {MAX_BATCH} deposits per request"),
        ));
    }
    call(s, h, move |svc, a| {
        let results = svc.deposit_batch(a, &body.deposits)?;
        Ok(DepositResults {
            results: results
                .into_iter()
                .map(|r| match r {
                    Ok(o) => DepositResult::Outcome(o),
                    Err(e) => DepositResult::Error(e.to_api()),
                })
                .collect(),
        })
    })
    .await
}

fn opt<T>(
    q: &HashMap<String, String>,
    key: &str,
    parse: impl FnOnce(&str) -> Result<T, EscrowError>,
) -> Result<Option<T>, EscrowError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(|v| parse(v))
        .transpose()
}

fn ts(field: &'static str) -> impl Fn(&str) -> Result<Timestamp, EscrowError> {
    move |v| {
        v.parse::<i64>()
            .map(Timestamp::from_unix_ms)
            .map_err(|_| EscrowError::invalid(field, "expected Unix milliseconds"))
    }
}

fn filter(q: &HashMap<String, String>) -> Result<RecordingFilter, EscrowError> {
    Ok(RecordingFilter {
        caller_code: opt(q, "caller_code", CallerCode::new)?,
        since: opt(q, "since", ts("since"))?,
        until: opt(q, "until", ts("until"))?,
        line: opt(q, "line", LineId::new)?,
        status: opt(q, "status", |v| {
            RecordingStatus::parse(v).ok_or_else(|| {
                EscrowError::invalid(
                    "status",
                    "expected sealed, held, pending_shred, shredded or erased",
                )
            })
        })?,
        epoch: opt(q, "epoch", |v| {
            v.parse()
                .map_err(|_| EscrowError::invalid("epoch", "expected a day number"))
        })?,
        limit: opt(q, "limit", |v| {
            v.parse()
                .map_err(|_| EscrowError::invalid("limit", "expected a number"))
        })?,
    })
}

async fn recordings(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match filter(&q) {
        Ok(f) => call(s, h, move |svc, a| svc.recordings(a, &f)).await,
        Err(e) => error_response(&e),
    }
}

async fn recording(s: State<Arc<Service>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    match parse_id(&id) {
        Ok(id) => call(s, h, move |svc, a| svc.recording(a, &id)).await,
        Err(e) => error_response(&e),
    }
}

async fn release(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    with_id_body(s, h, &id, body, |svc, a, id, b: ReleaseRequest| {
        svc.release_key(a, &id, &b.purpose, &b.operator_key)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn erase(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    with_id_body(s, h, &id, body, |svc, a, id, b: ReasonBody| {
        svc.erase(a, &id, &b.reason).map(|()| Done::yes())
    })
    .await
}

async fn hold(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    with_id_body(s, h, &id, body, |svc, a, id, b: ReasonBody| {
        svc.hold(a, &id, &b.reason).map(|()| Done::yes())
    })
    .await
}

async fn unhold(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    with_id_body(s, h, &id, body, |svc, a, id, _: Empty| {
        svc.release_hold(a, &id).map(|()| Done::yes())
    })
    .await
}

async fn add_operator(s: State<Arc<Service>>, h: HeaderMap, body: Body) -> Response {
    match json_body::<NewOperator>(body).await {
        Ok(n) => call(s, h, move |svc, a| svc.add_operator(a, &n)).await,
        Err(e) => error_response(&e),
    }
}

fn operator_id(id: &str) -> Result<OperatorId, EscrowError> {
    OperatorId::new(id)
}

async fn disable_operator(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match operator_id(&id) {
        Ok(id) => {
            call(s, h, move |svc, a| {
                svc.disable_operator(a, &id).map(|()| Done::yes())
            })
            .await
        }
        Err(e) => error_response(&e),
    }
}

async fn renew_token(s: State<Arc<Service>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    match operator_id(&id) {
        Ok(id) => call(s, h, move |svc, a| svc.renew_token(a, &id)).await,
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    sha256: String,
}

async fn acknowledge(s: State<Arc<Service>>, h: HeaderMap, body: Body) -> Response {
    match json_body::<AckBody>(body).await {
        Ok(b) => {
            call(s, h, move |svc, a| {
                svc.acknowledge(a, &b.sha256).map(|()| Done::yes())
            })
            .await
        }
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    days: i64,
    #[serde(default)]
    line: Option<String>,
}

async fn set_retention(s: State<Arc<Service>>, h: HeaderMap, body: Body) -> Response {
    let b = match json_body::<RetentionBody>(body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let line = match b.line.as_deref().map(LineId::new).transpose() {
        Ok(l) => l,
        Err(e) => return error_response(&e),
    };
    call(s, h, move |svc, a| {
        svc.set_retention(a, b.days, line.as_ref())
    })
    .await
}

async fn audit(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let parsed = (|| {
        let from = opt(&q, "from", |v| {
            v.parse::<u64>()
                .map_err(|_| EscrowError::invalid("from", "expected a sequence number"))
        })?;
        let since = opt(&q, "since", ts("since"))?;
        let limit = opt(&q, "limit", |v| {
            v.parse::<u32>()
                .map_err(|_| EscrowError::invalid("limit", "expected a number"))
        })?;
        Ok::<_, EscrowError>((from.unwrap_or(1), since, limit.unwrap_or(10_000)))
    })();
    match parsed {
        Ok((from, since, limit)) => {
            call(s, h, move |svc, a| svc.audit_entries(a, from, since, limit)).await
        }
        Err(e) => error_response(&e),
    }
}

async fn receipts(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let subject = q.get("subject").cloned();
    if let Some(sub) = &subject
        && (sub.is_empty() || sub.len() > 64 || !sub.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return error_response(&EscrowError::invalid(
            "subject",
            "expected an epoch number or a recording id",
        ));
    }
    call(s, h, move |svc, a| svc.receipts(a, subject.as_deref())).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    until: Timestamp,
}

async fn cancel_shred(
    s: State<Arc<Service>>,
    h: HeaderMap,
    Path(epoch): Path<String>,
    body: Body,
) -> Response {
    let Ok(epoch) = epoch.parse::<u32>() else {
        return error_response(&EscrowError::invalid("epoch", "expected a day number"));
    };
    match json_body::<CancelBody>(body).await {
        Ok(b) => {
            call(s, h, move |svc, a| {
                svc.cancel_shred(a, epoch, b.until).map(|()| Done::yes())
            })
            .await
        }
        Err(e) => error_response(&e),
    }
}
