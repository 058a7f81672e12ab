//! The signalling loop: transports ⇄ SIP endpoint ⇄ call core, and the execution of the call
//! core's commands (STYLE §1, §5).
//!
//! One task owns the `sip` Endpoint and the `call` CallManager. Each turn it drains their
//! outputs (datagrams to send, SIP events for the call core, commands to execute), then waits
//! on the transports, the media engine's reports, the stop signal and the earliest deadline of
//! the two cores. Executing a command is mechanical — allocate ports, hand a prompt to the
//! call's media on the media engine, create a sealed file, queue a deposit — and its result
//! goes back to the call core as an `Event`. No SIP or consent decision is taken here.

mod calls;
mod media_map;
mod sip;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use callseal_call::{CallHandle, CallManager, Event, Now};
use tokio::sync::{mpsc, watch};

use crate::escrow::EpochCache;
use crate::media_engine::{MediaEngine, MediaReport};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::ports::PortPool;
use crate::records::JsonLines;
use crate::secrets::GatewayKey;
use crate::transport::{Inbound, Transports};

pub use calls::PromptLibrary;

/// Everything the loop needs besides the two cores.
pub(crate) struct Resources {
    pub config: crate::Config,
    pub metrics: Arc<Metrics>,
    pub pool: PortPool,
    pub media: Arc<MediaEngine>,
    pub prompts: PromptLibrary,
    pub outbox: Arc<Outbox>,
    pub epochs: Arc<EpochCache>,
    pub records: JsonLines,
    pub survey: JsonLines,
    pub signing_key: GatewayKey,
    /// Account name the escrow knows this gateway by.
    pub gateway_id: callseal_escrow::GatewayId,
}

/// The loop's state.
pub(crate) struct Shell {
    core: CallManager,
    endpoint: sip::SipLayer,
    res: Resources,
    calls: HashMap<CallHandle, calls::CallIo>,
    /// Results waiting to be fed to the call core (produced while executing commands).
    events: VecDeque<Event>,
    reports_tx: mpsc::UnboundedSender<(CallHandle, MediaReport)>,
    reports: mpsc::UnboundedReceiver<(CallHandle, MediaReport)>,
    inbound: mpsc::Receiver<Inbound>,
}

/// Both clocks, read once per input.
pub(crate) fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Now::new(Instant::now(), unix_ms)
}

impl Shell {
    pub(crate) fn new(
        core: CallManager,
        transports: Transports,
        inbound: mpsc::Receiver<Inbound>,
        res: Resources,
        seed: [u8; 32],
    ) -> Self {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        Self {
            core,
            endpoint: sip::SipLayer::new(transports, seed, res.metrics.clone()),
            res,
            calls: HashMap::new(),
            events: VecDeque::new(),
            reports_tx,
            reports,
            inbound,
        }
    }

    /// Runs until `stop` turns true; then hangs up every call (BYE or CANCEL on both legs, 503
    /// to new INVITEs) and keeps serving their answers until none is left or the configured
    /// grace period ends; then finalises whatever recording is still open.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        while self.turn(Some(&mut stop), None).await {}
        let grace = std::time::Duration::from_secs(self.res.config.limits.shutdown_grace_secs);
        let until = tokio::time::Instant::now() + grace;
        tracing::info!(
            calls = self.core.active_calls(),
            "shutting down: hanging up every call"
        );
        self.core.shutdown(now());
        loop {
            self.drain().await;
            if self.core.active_calls() == 0 || !self.turn(None, Some(until)).await {
                break;
            }
        }
        self.shutdown().await;
    }

    /// One turn of the loop: drain both cores, then handle one input (a datagram, a media
    /// report, a deadline). False once `stop` fired or `until` passed.
    async fn turn(
        &mut self,
        stop: Option<&mut watch::Receiver<bool>>,
        until: Option<tokio::time::Instant>,
    ) -> bool {
        self.drain().await;
        let wake = match (self.endpoint.poll_timeout(), self.core.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        let stopped = async {
            match stop {
                Some(rx) => {
                    let _ = rx.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        let ended = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(inbound) = self.inbound.recv() => {
                let now = now();
                self.endpoint.handle_inbound(now, inbound);
            }
            Some((call, report)) = self.reports.recv() => {
                self.media_report(call, report);
            }
            () = sleep => {
                let now = now();
                self.endpoint.handle_timeout(now);
                self.core.handle_timeout(now);
            }
            () = stopped => return false,
            () = ended => return false,
        }
        true
    }

    /// Feeds outputs to inputs until both cores are quiet.
    async fn drain(&mut self) {
        loop {
            let mut progressed = false;
            self.endpoint.flush().await;
            while let Some(ev) = self.endpoint.poll_event() {
                progressed = true;
                self.core.handle_sip(now(), ev);
            }
            while let Some(cmd) = self.core.poll_command() {
                progressed = true;
                self.execute(cmd);
            }
            while let Some(ev) = self.events.pop_front() {
                progressed = true;
                self.core.handle_event(now(), ev);
            }
            if !progressed && !self.endpoint.has_transmits() {
                break;
            }
        }
        self.res.metrics.active_calls.store(
            i64::try_from(self.core.active_calls()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The end of a shutdown: every recording still open is finalised and its deposit queued
    /// durably; the media threads end their calls and free their ports.
    async fn shutdown(&mut self) {
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        tracing::info!(
            calls = handles.len(),
            "shutting down: finalising recordings"
        );
        for call in handles {
            self.finalise(call, now().unix_ms).await;
        }
        // The media threads end once they have released what they still hold.
        let media = self.res.media.clone();
        let _ = tokio::task::spawn_blocking(move || media.shutdown()).await;
        self.endpoint.flush().await;
    }
}
