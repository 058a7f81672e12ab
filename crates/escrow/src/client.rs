//! The typed HTTPS client of the escrow API, used by the CLI and by a gateway talking to a
//! remote escrow. It trusts exactly the pinned CA (never the system roots), sends the bearer
//! token, and turns every answer into a typed value or a [`ClientError`] carrying the stable
//! [`ErrorCode`].

use std::time::Duration;

use callseal_recording::keys::{PublicKey, RecordingId};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use crate::ErrorCode;
use crate::ids::{LineId, OperatorId, Timestamp};
use crate::model::*;
use crate::server::{DepositResult, DepositResults};
use crate::table::SignedEpochTable;

const ANSWER_LIMIT: usize = 64 * 1024 * 1024;

/// How to reach the escrow.
pub struct ClientConfig {
    /// `https://host:port`.
    pub url: String,
    /// The pinned CA certificate (PEM).
    pub ca_pem: Vec<u8>,
    /// The bearer token (`cs1_…`), if any.
    pub token: Option<Zeroizing<String>>,
    /// Connect + answer timeout.
    pub timeout: Duration,
}

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The escrow answered with an error.
    #[error("{error}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Code, message, details.
        error: ApiError,
    },
    /// No connection (refused, DNS, timeout).
    #[error("the escrow at {url} cannot be reached: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server's certificate does not chain to the pinned CA (or names another host).
    #[error(
        "the escrow at {url} presented a certificate the pinned CA does not vouch for: {reason}"
    )]
    TlsPinMismatch {
        /// The URL.
        url: String,
        /// rustls' reason.
        reason: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the escrow at {url}: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The client configuration is unusable.
    #[error("invalid escrow client configuration: {reason}")]
    Config {
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// The stable code (client-side failures map to `unavailable` or `internal`).
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Api { error, .. } => error.code,
            ClientError::Unreachable { .. } => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }

    /// Whether retrying later may succeed (what a gateway outbox keeps deposits for).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::Protocol { .. } => true,
            ClientError::Api { error, .. } => error.code.is_retryable(),
            _ => false,
        }
    }

    pub(crate) fn from_escrow(e: &crate::EscrowError) -> Self {
        ClientError::Api {
            status: e.code().http_status(),
            error: e.to_api(),
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// A client of one escrow.
pub struct EscrowClient {
    url: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    token: Option<Zeroizing<String>>,
    timeout: Duration,
}

fn split_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?.trim_end_matches('/');
    if rest.contains('/') || rest.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, p) = v6.split_once("]:")?;
        (h.to_owned(), p)
    } else {
        let (h, p) = rest.rsplit_once(':')?;
        (h.to_owned(), p)
    };
    Some((host, port.parse().ok()?))
}

/// Percent-encodes a query value (RFC 3986 §2.3 unreserved characters pass).
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl EscrowClient {
    /// A client for `cfg.url` pinning `cfg.ca_pem`.
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        let (host, port) = split_url(&cfg.url).ok_or_else(|| ClientError::Config {
            reason: format!("\"{}\" is not an https://HOST:PORT URL", cfg.url),
        })?;
        let server_name = ServerName::try_from(host.clone()).map_err(|_| ClientError::Config {
            reason: format!("\"{host}\" is not a host name or address"),
        })?;
        let tls = crate::tls::client_config(&cfg.ca_pem).map_err(|e| ClientError::Config {
            reason: e.to_string(),
        })?;
        Ok(EscrowClient {
            url: cfg.url,
            host,
            port,
            server_name,
            connector: TlsConnector::from(tls),
            token: cfg.token,
            timeout: cfg.timeout,
        })
    }

    /// The escrow's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes)> {
        let unreachable = |reason: String| ClientError::Unreachable {
            url: self.url.clone(),
            reason,
        };
        let fut = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let tls = self
                .connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| {
                    match e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    {
                        Some(rustls::Error::InvalidCertificate(c)) => ClientError::TlsPinMismatch {
                            url: self.url.clone(),
                            reason: format!("{c:?}"),
                        },
                        _ => unreachable(format!("TLS handshake failed: {e}")),
                    }
                })?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let driver = tokio::spawn(conn);
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, format!("{}:{}", self.host, self.port));
            if let Some(t) = &self.token {
                req = req.header(
                    hyper::header::AUTHORIZATION,
                    format!("Bearer {}", t.as_str()),
                );
            }
            let has_body = body.is_some();
            if has_body {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = req
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| ClientError::Config {
                    reason: e.to_string(),
                })?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|e| ClientError::Protocol {
                    url: self.url.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            driver.abort();
            Ok((status, bytes))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Config {
                reason: e.to_string(),
            })?;
        let (status, bytes) = self.send(method, path, body).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
                url: self.url.clone(),
                reason: e.to_string(),
            });
        }
        match serde_json::from_slice::<ApiErrorBody>(&bytes) {
            Ok(b) => Err(ClientError::Api {
                status: status.as_u16(),
                error: b.error,
            }),
            Err(_) => Err(ClientError::Protocol {
                url: self.url.clone(),
                reason: format!("HTTP {status} without an error body"),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::GET, path, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// Sends any request and returns the status and JSON answer (diagnostics and API tests).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Config {
            reason: e.to_string(),
        })?;
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Config {
                reason: e.to_string(),
            })?;
        let (status, bytes) = self.send(method, path, body).await?;
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status.as_u16(), v))
    }

    /// Sends raw body bytes (oversized-body tests).
    pub async fn raw_bytes(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, serde_json::Value)> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Config {
            reason: e.to_string(),
        })?;
        let (status, bytes) = self.send(method, path, Some(body)).await?;
        Ok((
            status.as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// `/health` (no token needed).
    pub async fn health(&self) -> Result<Health> {
        self.get("/health").await
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (status, bytes) = self.send(Method::GET, "/metrics", None).await?;
        if !status.is_success() {
            return Err(ClientError::Protocol {
                url: self.url.clone(),
                reason: format!("HTTP {status}"),
            });
        }
        String::from_utf8(bytes.to_vec()).map_err(|e| ClientError::Protocol {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    /// The escrow's identity public key (hex).
    pub async fn identity(&self) -> Result<String> {
        let v: serde_json::Value = self.get("/v1/identity").await?;
        v.get("identity")
            .and_then(|i| i.as_str())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Protocol {
                url: self.url.clone(),
                reason: "no identity in the answer".into(),
            })
    }

    /// The caller's account.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get("/v1/whoami").await
    }

    /// The signed epoch table.
    pub async fn epoch_table(&self) -> Result<SignedEpochTable> {
        self.get("/v1/epochs/table").await
    }

    /// Epochs with states.
    pub async fn epochs(&self) -> Result<Vec<EpochInfo>> {
        self.get("/v1/epochs").await
    }

    /// Cancels a pending shred until `until`.
    pub async fn cancel_shred(&self, epoch: u32, until: Timestamp) -> Result<()> {
        self.post::<serde_json::Value>(
            &format!("/v1/epochs/{epoch}/cancel"),
            &serde_json::json!({ "until": until }),
        )
        .await
        .map(drop)
    }

    /// Deposits (at most [`crate::server::MAX_BATCH`] per call); one result each.
    pub async fn deposit_batch(
        &self,
        deposits: &[Deposit],
    ) -> Result<Vec<std::result::Result<DepositOutcome, ApiError>>> {
        let r: DepositResults = self
            .post("/v1/deposits", &serde_json::json!({ "deposits": deposits }))
            .await?;
        Ok(r.results
            .into_iter()
            .map(|r| match r {
                DepositResult::Outcome(o) => Ok(o),
                DepositResult::Error(e) => Err(e),
            })
            .collect())
    }

    /// One deposit.
    pub async fn deposit(&self, d: &Deposit) -> Result<DepositOutcome> {
        let mut r = self.deposit_batch(std::slice::from_ref(d)).await?;
        match r.pop() {
            Some(Ok(o)) => Ok(o),
            Some(Err(error)) => Err(ClientError::Api {
                status: error.code.http_status(),
                error,
            }),
            None => Err(ClientError::Protocol {
                url: self.url.clone(),
                reason: "no deposit result".into(),
            }),
        }
    }

    /// Recordings matching `f`.
    pub async fn recordings(&self, f: &RecordingFilter) -> Result<Vec<RecordingInfo>> {
        let mut q = Vec::new();
        if let Some(c) = &f.caller_code {
            q.push(format!("caller_code={}", enc(c.as_str())));
        }
        if let Some(t) = f.since {
            q.push(format!("since={}", t.unix_ms()));
        }
        if let Some(t) = f.until {
            q.push(format!("until={}", t.unix_ms()));
        }
        if let Some(l) = &f.line {
            q.push(format!("line={}", enc(l.as_str())));
        }
        if let Some(s) = f.status {
            let s = serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            q.push(format!("status={s}"));
        }
        if let Some(e) = f.epoch {
            q.push(format!("epoch={e}"));
        }
        if let Some(l) = f.limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() {
            "/v1/recordings".to_owned()
        } else {
            format!("/v1/recordings?{}", q.join("&"))
        };
        self.get(&path).await
    }

    /// One recording.
    pub async fn recording(&self, id: &RecordingId) -> Result<RecordingInfo> {
        self.get(&format!("/v1/recordings/{id}")).await
    }

    /// A key release for `purpose`, re-wrapped to `operator_key`.
    pub async fn release_key(
        &self,
        id: &RecordingId,
        purpose: &str,
        operator_key: &PublicKey,
    ) -> Result<Released> {
        self.post(
            &format!("/v1/recordings/{id}/release"),
            &ReleaseRequest {
                purpose: purpose.to_owned(),
                operator_key: operator_key.clone(),
            },
        )
        .await
    }

    /// Erases a recording.
    pub async fn erase(&self, id: &RecordingId, reason: &str) -> Result<()> {
        self.post::<serde_json::Value>(
            &format!("/v1/recordings/{id}/erase"),
            &serde_json::json!({ "reason": reason }),
        )
        .await
        .map(drop)
    }

    /// Places a legal hold.
    pub async fn hold(&self, id: &RecordingId, reason: &str) -> Result<()> {
        self.post::<serde_json::Value>(
            &format!("/v1/recordings/{id}/hold"),
            &serde_json::json!({ "reason": reason }),
        )
        .await
        .map(drop)
    }

    /// Lifts a legal hold.
    pub async fn release_hold(&self, id: &RecordingId) -> Result<()> {
        self.post::<serde_json::Value>(
            &format!("/v1/recordings/{id}/unhold"),
            &serde_json::json!({}),
        )
        .await
        .map(drop)
    }

    /// Operators.
    pub async fn operators(&self) -> Result<Vec<OperatorInfo>> {
        self.get("/v1/operators").await
    }

    /// Enrols an operator.
    pub async fn add_operator(&self, new: &NewOperator) -> Result<Enrolled> {
        self.post("/v1/operators", new).await
    }

    /// Disables an operator.
    pub async fn disable_operator(&self, id: &OperatorId) -> Result<()> {
        self.post::<serde_json::Value>(
            &format!("/v1/operators/{id}/disable"),
            &serde_json::json!({}),
        )
        .await
        .map(drop)
    }

    /// Issues a new token for an operator.
    pub async fn renew_token(&self, id: &OperatorId) -> Result<Enrolled> {
        self.post(&format!("/v1/operators/{id}/token"), &serde_json::json!({}))
            .await
    }

    /// The agreement.
    pub async fn agreement(&self) -> Result<Agreement> {
        self.get("/v1/agreement").await
    }

    /// Acknowledges the agreement with hash `sha256`.
    pub async fn acknowledge(&self, sha256: &str) -> Result<()> {
        self.post::<serde_json::Value>(
            "/v1/agreement/acknowledge",
            &serde_json::json!({ "sha256": sha256 }),
        )
        .await
        .map(drop)
    }

    /// The retention policy.
    pub async fn retention(&self) -> Result<RetentionPolicy> {
        self.get("/v1/retention").await
    }

    /// Sets the retention (the escrow validates `days`).
    pub async fn set_retention(&self, days: i64, line: Option<&LineId>) -> Result<RetentionPolicy> {
        self.request(
            Method::PUT,
            "/v1/retention",
            Some(&serde_json::json!({ "days": days, "line": line })),
        )
        .await
    }

    /// Audit entries from `from`, at or after `since`.
    pub async fn audit(
        &self,
        from: u64,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let mut path = format!("/v1/audit?from={from}&limit={limit}");
        if let Some(s) = since {
            path.push_str(&format!("&since={}", s.unix_ms()));
        }
        self.get(&path).await
    }

    /// Verifies the audit chain.
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        self.get("/v1/audit/verify").await
    }

    /// Receipts, optionally for one epoch number or recording id.
    pub async fn receipts(&self, subject: Option<&str>) -> Result<Vec<Receipt>> {
        match subject {
            Some(s) => self.get(&format!("/v1/receipts?subject={}", enc(s))).await,
            None => self.get("/v1/receipts").await,
        }
    }

    /// Confirms the wall clock after an alert.
    pub async fn confirm_clock(&self) -> Result<()> {
        self.post::<serde_json::Value>("/v1/clock/confirm", &serde_json::json!({}))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_strictly() {
        assert_eq!(
            split_url("https://127.0.0.1:7443"),
            Some(("127.0.0.1".into(), 7443))
        );
        assert_eq!(split_url("https://[::1]:7443/"), Some(("::1".into(), 7443)));
        assert_eq!(
            split_url("https://escrow.example:1"),
            Some(("escrow.example".into(), 1))
        );
        for bad in [
            "http://127.0.0.1:1",
            "https://h",
            "https://h:x",
            "https://h:1/p",
            "https://u@h:1",
        ] {
            assert_eq!(split_url(bad), None, "{bad}");
        }
        assert_eq!(enc("+49 a/b"), "%2B49%20a%2Fb");
    }
}
