//! Prometheus counters and gauges, and a minimal `/metrics` HTTP endpoint.
//!
//! Plain atomics rendered in the text exposition format (version 0.0.4): the set is small
//! and fixed, and it keeps an HTTP framework out of the audio path's process.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::GatewayError;

/// How a consent question ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentOutcome {
    Yes,
    No,
    Timeout,
    HangUp,
}

/// All gateway metrics. Shared as `Arc<Metrics>`; every update is one relaxed atomic op.
#[derive(Debug, Default)]
pub struct Metrics {
    pub active_calls: AtomicI64,
    pub calls_total: AtomicU64,
    pub calls_rejected: AtomicU64,
    pub consent_yes: AtomicU64,
    pub consent_no: AtomicU64,
    pub consent_timeout: AtomicU64,
    pub consent_hangup: AtomicU64,
    pub withdrawals: AtomicU64,
    pub rtp_packets_in: AtomicU64,
    pub rtp_packets_out: AtomicU64,
    pub rtp_packets_lost: AtomicU64,
    pub latching_drops: AtomicU64,
    pub recordings_started: AtomicU64,
    pub recordings_finished: AtomicU64,
    pub recording_frames: AtomicU64,
    pub outbox_depth: AtomicI64,
    pub escrow_errors: AtomicU64,
    pub sip_messages_in: AtomicU64,
    pub sip_parse_errors: AtomicU64,
}

impl Metrics {
    pub fn consent(&self, outcome: ConsentOutcome) {
        let c = match outcome {
            ConsentOutcome::Yes => &self.consent_yes,
            ConsentOutcome::No => &self.consent_no,
            ConsentOutcome::Timeout => &self.consent_timeout,
            ConsentOutcome::HangUp => &self.consent_hangup,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        one(
            "callseal_active_calls",
            "gauge",
            "Calls in progress.",
            self.active_calls.load(Ordering::Relaxed).to_string(),
        );
        one(
            "callseal_calls_total",
            "counter",
            "Calls accepted.",
            g(&self.calls_total).to_string(),
        );
        one(
            "callseal_calls_rejected_total",
            "counter",
            "Calls refused (limits, errors).",
            g(&self.calls_rejected).to_string(),
        );
        one(
            "callseal_withdrawals_total",
            "counter",
            "Consents withdrawn during a call.",
            g(&self.withdrawals).to_string(),
        );
        one(
            "callseal_rtp_packets_in_total",
            "counter",
            "RTP packets received.",
            g(&self.rtp_packets_in).to_string(),
        );
        one(
            "callseal_rtp_packets_out_total",
            "counter",
            "RTP packets sent.",
            g(&self.rtp_packets_out).to_string(),
        );
        one(
            "callseal_rtp_packets_lost_total",
            "counter",
            "RTP packets lost (sequence gaps).",
            g(&self.rtp_packets_lost).to_string(),
        );
        one(
            "callseal_latching_drops_total",
            "counter",
            "RTP packets from a source other than the leg's peer, dropped by the gateway. Once a leg has latched its socket is connected to the peer and the kernel drops such packets instead (netstat -su: packets to unknown port).",
            g(&self.latching_drops).to_string(),
        );
        one(
            "callseal_recordings_started_total",
            "counter",
            "Sealed recordings started.",
            g(&self.recordings_started).to_string(),
        );
        one(
            "callseal_recordings_finished_total",
            "counter",
            "Sealed recordings finalised.",
            g(&self.recordings_finished).to_string(),
        );
        one(
            "callseal_recording_frames_total",
            "counter",
            "Audio frames sealed.",
            g(&self.recording_frames).to_string(),
        );
        one(
            "callseal_outbox_depth",
            "gauge",
            "Escrow requests waiting in the durable outbox.",
            self.outbox_depth.load(Ordering::Relaxed).to_string(),
        );
        one(
            "callseal_escrow_errors_total",
            "counter",
            "Failed escrow requests (retried).",
            g(&self.escrow_errors).to_string(),
        );
        one(
            "callseal_sip_messages_in_total",
            "counter",
            "SIP messages received.",
            g(&self.sip_messages_in).to_string(),
        );
        one(
            "callseal_sip_parse_errors_total",
            "counter",
            "SIP messages refused as malformed.",
            g(&self.sip_parse_errors).to_string(),
        );
        let _ = write!(
            out,
            "# HELP callseal_consent_total Consent questions by outcome.\n# TYPE callseal_consent_total counter\n\
             callseal_consent_total{{outcome=\"yes\"}} {}\ncallseal_consent_total{{outcome=\"no\"}} {}\n\
             callseal_consent_total{{outcome=\"timeout\"}} {}\ncallseal_consent_total{{outcome=\"hangup\"}} {}\n",
            g(&self.consent_yes),
            g(&self.consent_no),
            g(&self.consent_timeout),
            g(&self.consent_hangup)
        );
        out
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind {
            what: "metrics (TCP)",
            addr,
            source,
        })
}

/// Serves `GET /metrics` until `stop` turns true. One short-lived task per connection.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), answer(stream, &metrics)).await;
                });
            }
            _ = stop.changed() => return,
        }
    }
}

async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    // Read the request head only; the body of a GET is empty and anything larger is not ours.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, ctype, body) = if line.starts_with(b"GET /metrics ") || line == b"GET /metrics" {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".to_owned(),
        )
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_each_counter_with_type() {
        let m = Metrics::default();
        m.consent(ConsentOutcome::Yes);
        m.consent(ConsentOutcome::Yes);
        m.consent(ConsentOutcome::HangUp);
        m.outbox_depth.store(3, Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("callseal_consent_total{outcome=\"yes\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("callseal_consent_total{outcome=\"hangup\"} 1\n"));
        assert!(text.contains("# TYPE callseal_outbox_depth gauge\ncallseal_outbox_depth 3\n"));
        assert!(text.contains("callseal_latching_drops_total 0\n"));
    }

    #[tokio::test]
    async fn http_endpoint_serves_metrics_and_404s_the_rest() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        metrics.active_calls.store(7, Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, metrics, rx));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("callseal_active_calls 7\n"));
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        tx.send(true).unwrap();
        server.await.unwrap();
    }
}
