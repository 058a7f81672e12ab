//! Starting and stopping a gateway: folders and secrets on first run, the escrow seam, the
//! epoch cache, the outbox, metrics, the SIP transports and the signalling loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use callseal_call::{
    CallConfig, CallManager, ConsentSettings, IdentityMode, RecordingSettings, SurveySettings,
    Target,
};
use ed25519_dalek::VerifyingKey;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{CallerIdentity, Config};
use crate::error::GatewayError;
use crate::escrow::{EpochCache, EscrowApi, OutboxDelivery};
use crate::media_engine::{EngineOptions, MediaEngine};
use crate::metrics::Metrics;
use crate::outbox::{OUTBOX_LAST_TRY, Outbox};
use crate::ports::PortPool;
use crate::prompts::PromptSet;
use crate::records::JsonLines;
use crate::secrets::{GatewayKey, Pepper, create_private_dir};
use crate::shell::{PromptLibrary, Resources, Shell};
use crate::transport::Transports;

/// A running gateway.
pub struct Gateway {
    /// Bound SIP UDP addresses.
    pub sip_udp: Vec<SocketAddr>,
    /// Bound SIP TCP addresses.
    pub sip_tcp: Vec<SocketAddr>,
    /// Bound `/metrics` address, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// Live metrics.
    pub metrics: Arc<Metrics>,
    /// The durable outbox (for health checks and tests).
    pub outbox: Arc<Outbox>,
    /// The epoch cache.
    pub epochs: Arc<EpochCache>,
    stop: watch::Sender<bool>,
    shell_stop: watch::Sender<bool>,
    shell: JoinHandle<()>,
    helpers: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Graceful shutdown: the loop finalises every recording (last segment sealed and fsynced,
    /// end of deposit queued), then the helpers stop. Bounded by `grace` + 5 s.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shell_stop.send(true);
        if tokio::time::timeout(grace + Duration::from_secs(5), self.shell)
            .await
            .is_err()
        {
            tracing::error!("the signalling loop did not stop in time");
        }
        // The ends of the calls just hung up are queued: make them durable before the
        // process may exit.
        let outbox = self.outbox.clone();
        let flushed = tokio::task::spawn_blocking(move || outbox.flush(Duration::from_secs(10)))
            .await
            .unwrap_or(false);
        if !flushed {
            tracing::error!(
                "escrow outbox: the last items were not made durable within 10 s; they are \
                 written and will be delivered, but a power loss now could lose them"
            );
        }
        let _ = self.stop.send(true);
        for h in self.helpers {
            let _ = tokio::time::timeout(OUTBOX_LAST_TRY + Duration::from_secs(2), h).await;
        }
    }
}

/// Starts a gateway with `config` against `escrow`, whose epoch table is verified with
/// `identity`. Creates `data_dir` and its secrets on first run.
pub async fn start(
    config: Config,
    escrow: Arc<dyn EscrowApi>,
    identity: VerifyingKey,
) -> Result<Gateway, GatewayError> {
    if let Err(e) = crate::secrets::disable_core_dumps() {
        tracing::warn!("core dumps could not be disabled: {e}");
    }
    create_private_dir(&config.data_dir)?;
    let gw_dir = config.gateway_dir();
    create_private_dir(&gw_dir)?;
    create_private_dir(&config.recordings_dir())?;
    let pepper = Pepper::open_or_create(&gw_dir)?;
    let signing_key = GatewayKey::open_or_create(&gw_dir)?;
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut helpers = Vec::new();

    // Epoch table: the cached one serves at once; a fresh one is fetched (briefly awaited so the
    // first call of a fresh install can be recorded), then refreshed in the background.
    let epochs = Arc::new(EpochCache::open(&gw_dir, identity));
    if let Ok(Err(e)) =
        tokio::time::timeout(Duration::from_secs(5), epochs.refresh(escrow.as_ref())).await
    {
        tracing::warn!("escrow epoch table not fetched at start: {e}");
    }
    if !epochs.is_ready() {
        tracing::error!(
            "no escrow epoch table yet: calls are relayed but not recorded until the escrow answers"
        );
    }
    helpers.push(tokio::spawn(epochs.clone().run(
        escrow.clone(),
        Duration::from_secs(config.escrow.epoch_refresh_secs.max(1)),
        Duration::from_secs(config.escrow.retry_min_secs.max(1)),
        stop_rx.clone(),
    )));

    let outbox = Outbox::open(&gw_dir.join("outbox"), metrics.clone())?;
    helpers.push(tokio::spawn(outbox.clone().run(
        Arc::new(OutboxDelivery(escrow.clone())),
        Duration::from_secs(config.escrow.retry_min_secs),
        Duration::from_secs(config.escrow.retry_max_secs),
        stop_rx.clone(),
    )));

    let metrics_addr = match config.metrics.listen {
        Some(addr) => {
            let listener = crate::metrics::bind(addr).await?;
            let local = listener.local_addr().ok();
            helpers.push(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
                stop_rx.clone(),
            )));
            local
        }
        None => None,
    };

    let (in_tx, in_rx) = mpsc::channel(1024);
    let transports = Transports::bind(
        &config.sip.udp,
        &config.sip.tcp,
        config.sip.max_message_bytes,
        in_tx,
    )
    .await?;
    let sip_udp = transports.udp_addrs();
    let sip_tcp = transports.tcp_addrs();
    let local = transports
        .local_addr()
        .ok_or_else(|| GatewayError::ConfigInvalid {
            setting: "sip.udp / sip.tcp",
            reason: "no SIP socket could be bound".into(),
        })?;

    let prompts = PromptSet::load(config.prompts.folder.as_deref())?;
    let library = PromptLibrary::new(&prompts);
    let core = CallManager::new(
        call_config(
            &config,
            config.sip.advertised.unwrap_or(local),
            library.consent_sha256,
        )
        .await?,
        callseal_call::Pepper::from_slice(pepper.expose_bytes()).map_err(|e| {
            GatewayError::ConfigInvalid {
                setting: "pepper",
                reason: e.to_string(),
            }
        })?,
        random_seed()?,
    )
    .map_err(|e| GatewayError::ConfigInvalid {
        setting: "consent / survey",
        reason: e.to_string(),
    })?;
    drop(pepper);

    let media = Arc::new(MediaEngine::start(
        &EngineOptions {
            threads: config.media.threads,
            coalesce: Duration::from_micros(config.media.coalesce_us),
            realtime_priority: config.media.realtime_priority,
        },
        metrics.clone(),
    )?);
    let res = Resources {
        media,
        pool: PortPool::new(
            config.media.bind,
            config.media.port_min,
            config.media.port_max,
        ),
        prompts: library,
        outbox: outbox.clone(),
        epochs: epochs.clone(),
        records: JsonLines::open(&config.call_records_path())?,
        survey: JsonLines::open(&gw_dir.join("survey.jsonl"))?,
        signing_key,
        gateway_id: callseal_escrow::GatewayId::new("gateway")
            .map_err(|e| GatewayError::Escrow(e.to_string()))?,
        metrics: metrics.clone(),
        config: config.clone(),
    };
    let shell = Shell::new(core, transports, in_rx, res, random_seed()?);
    // The loop stops first (hanging up its calls and queueing their ends); the helpers, the
    // outbox among them, only after it, so the last deposits are still delivered.
    let (shell_stop_tx, shell_stop_rx) = watch::channel(false);
    let shell = tokio::spawn(shell.run(shell_stop_rx));
    tracing::info!(sip = ?sip_udp, tcp = ?sip_tcp, media = %format!("{}:{}-{}", config.media.bind, config.media.port_min, config.media.port_max), "gateway ready");
    Ok(Gateway {
        sip_udp,
        sip_tcp,
        metrics_addr,
        metrics,
        outbox,
        epochs,
        stop: stop_tx,
        shell_stop: shell_stop_tx,
        shell,
        helpers,
    })
}

/// The call core's settings from the gateway's.
async fn call_config(
    config: &Config,
    sip: SocketAddr,
    consent_sha256: [u8; 32],
) -> Result<CallConfig, GatewayError> {
    let target = match &config.sip.pbx {
        None => {
            tracing::warn!(
                "DEMO MODE: no PBX configured (--pbx sip:... or [sip] pbx); consenting and declining callers are \
                 connected to a built-in echo endpoint that plays back what they say"
            );
            Target::Echo
        }
        Some(text) => {
            let bad = |reason: String| GatewayError::ConfigInvalid {
                setting: "sip.pbx",
                reason,
            };
            let uri = callseal_sip::Uri::parse(text)
                .map_err(|e| bad(format!("'{text}' is not a SIP URI: {e}")))?;
            let callseal_sip::Uri::Sip(sip_uri) = &uri else {
                return Err(bad(format!("'{text}' is not a sip: URI")));
            };
            let port = sip_uri.port.unwrap_or(5060);
            let host = match &sip_uri.host {
                callseal_sip::Host::V4(ip) => ip.to_string(),
                callseal_sip::Host::V6(ip) => ip.to_string(),
                callseal_sip::Host::Domain(d) => d.to_string(),
            };
            let next_hop = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
                .next()
                .ok_or_else(|| bad(format!("{host} has no address")))?;
            Target::Pbx { uri, next_hop }
        }
    };
    let mut cfg = CallConfig::new(sip, target);
    cfg.transport = "UDP".into();
    cfg.identity = match config.sip.caller_identity {
        CallerIdentity::Pseudonym => IdentityMode::Pseudonym,
        CallerIdentity::Masked => IdentityMode::Masked,
        CallerIdentity::Passthrough => IdentityMode::Passthrough,
    };
    cfg.consent = ConsentSettings {
        consent_digit: config.consent.consent_digit,
        decline_digit: config.consent.decline_digit,
        digit_timeout: config.digit_timeout(),
        repeats: u8::try_from(config.consent.repeats).unwrap_or(u8::MAX),
        prompt_sha256: consent_sha256,
    };
    cfg.withdraw_code = config.consent.withdraw_code.clone();
    cfg.survey = SurveySettings {
        enabled: config.survey.enabled,
        line: config.survey.line.clone(),
        ..SurveySettings::default()
    };
    cfg.recording = RecordingSettings {
        retention_days: config.recording.retention_days,
        epoch_window_days: 1,
    };
    cfg.max_calls = config.limits.max_calls;
    Ok(cfg)
}

fn random_seed() -> Result<[u8; 32], GatewayError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| GatewayError::Random(e.to_string()))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_call_core_gets_every_limit_and_setting_of_the_file() {
        let mut config = Config::default();
        config.limits.max_calls = 1891;
        config.recording.retention_days = 90;
        config.consent.withdraw_code = "*7".into();
        let sip = SocketAddr::from(([127, 0, 0, 1], 5060));
        let cfg = call_config(&config, sip, [0; 32]).await.unwrap();
        assert_eq!(cfg.max_calls, 1891);
        assert_eq!(cfg.recording.retention_days, 90);
        assert_eq!(cfg.withdraw_code, "*7");
    }
}
