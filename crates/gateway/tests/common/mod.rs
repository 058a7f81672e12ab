//! End-to-end harness: a real gateway and a real in-process escrow in a temporary data
//! folder, on free loopback ports, with real peers (sipp, baresip) from the testkit.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use callseal_escrow::{Actor, NewOperator, OperatorId, Role, Service};
use callseal_gateway::escrow::{EscrowApi, InProcess};
use callseal_gateway::{Config, Gateway};
use callseal_recording::keys::{RecordingId, SecretKey, unwrap};
use callseal_testkit::audio;
use callseal_testkit::pcap::RtpStream;
use callseal_testkit::process::Peer;
use callseal_testkit::sipp::{self, Caller, Pbx, SippPorts};

/// Caller audio (Hz) and PBX audio (Hz): far apart, neither a DTMF frequency.
pub const CALLER_HZ: u32 = 440;
pub const PBX_HZ: u32 = 1000;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub service: Arc<Service>,
    pub admin: Actor,
    pub gateway: Option<Gateway>,
    pub config: Config,
}

/// Short test prompts (sox tones) in `dir/prompts`, so a call does not wait for 30 s of speech.
pub fn short_prompts(dir: &Path) -> PathBuf {
    let p = dir.join("prompts");
    std::fs::create_dir_all(&p).unwrap();
    for (name, hz, secs) in [
        ("consent", 700, 3.0),
        ("confirm-yes", 800, 0.4),
        ("confirm-no", 850, 0.4),
        ("withdrawn", 900, 0.4),
        ("survey", 950, 0.6),
        ("thanks", 750, 0.3),
    ] {
        audio::wav_tone(&p.join(format!("{name}.wav")), hz, secs).unwrap();
    }
    p
}

impl Env {
    /// A gateway whose PBX is `pbx` (None: the echo demo), with `tweak` applied to the config,
    /// using the escrow in process.
    pub async fn start(pbx: Option<SocketAddr>, tweak: impl FnOnce(&mut Config)) -> Env {
        Self::start_with(pbx, tweak, |_, _, api| api).await
    }

    /// Same, with the escrow seam chosen by `seam(data, service, in_process_api)`.
    pub async fn start_with(
        pbx: Option<SocketAddr>,
        tweak: impl FnOnce(&mut Config),
        seam: impl FnOnce(&Path, &Arc<Service>, Arc<dyn EscrowApi>) -> Arc<dyn EscrowApi>,
    ) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut config = Config::default();
        config.data_dir = data.clone();
        config.sip.udp = vec!["127.0.0.1:0".parse().unwrap()];
        config.sip.tcp = vec!["127.0.0.1:0".parse().unwrap()];
        let (lo, hi) = callseal_testkit::net::free_range(40);
        config.media.port_min = lo;
        config.media.port_max = hi;
        config.sip.pbx = pbx.map(|a| format!("sip:consult@{a}"));
        config.prompts.folder = Some(short_prompts(dir.path()));
        config.consent.digit_timeout_secs = 3;
        config.consent.repeats = 0;
        config.escrow.retry_min_secs = 1;
        config.escrow.retry_max_secs = 1;
        config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        tweak(&mut config);
        std::fs::create_dir_all(&data).unwrap();
        let InProcess {
            service,
            created,
            api,
            identity,
        } = callseal_gateway::escrow::in_process(&data, Arc::new(callseal_escrow::SystemClock))
            .unwrap();
        let token = created.unwrap().admin_token.expose().to_string();
        let admin = service.authenticate(&token).unwrap();
        let ag = service.agreement(&admin).unwrap();
        service.acknowledge(&admin, &ag.sha256).unwrap();
        let admin = service.authenticate(&token).unwrap();
        let api = seam(&data, &service, api);
        let gateway = callseal_gateway::start(config.clone(), api, identity)
            .await
            .unwrap();
        Env {
            dir,
            data,
            service,
            admin,
            gateway: Some(gateway),
            config,
        }
    }

    /// The gateway's SIP (UDP) address.
    pub fn sip(&self) -> SocketAddr {
        self.gateway.as_ref().unwrap().sip_udp[0]
    }

    pub async fn stop(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown(Duration::from_secs(1)).await;
        }
    }

    /// A listener operator with its own X25519 key, agreement acknowledged.
    pub fn listener(&self, name: &str) -> (Actor, SecretKey) {
        let secret = SecretKey::generate().unwrap();
        let new = NewOperator {
            id: OperatorId::new(name).unwrap(),
            role: Role::Listener,
            public_key: Some(secret.public_key()),
        };
        let en = self.service.add_operator(&self.admin, &new).unwrap();
        let actor = self.service.authenticate(&en.token).unwrap();
        let ag = self.service.agreement(&actor).unwrap();
        self.service.acknowledge(&actor, &ag.sha256).unwrap();
        (self.service.authenticate(&en.token).unwrap(), secret)
    }

    /// Releases the key of `id` to a new listener and exports the recording as a stereo WAV.
    pub fn export(&self, id: &RecordingId) -> Result<audio::Channels, String> {
        let (actor, secret) = self.listener("listener-e2e");
        let released = self
            .service
            .release_key(
                &actor,
                id,
                "end-to-end test of the gateway",
                &secret.public_key(),
            )
            .map_err(|e| format!("{:?}: {e}", e.code()))?;
        let key = unwrap(&released.wrapped_key, &secret).map_err(|e| e.to_string())?;
        let file = std::fs::File::open(self.recording_path(id)).map_err(|e| e.to_string())?;
        let reader = callseal_recording::Reader::new(file, &key).map_err(|e| e.to_string())?;
        let out = self.dir.path().join(format!("{id}.wav"));
        let wav = std::fs::File::create(&out).map_err(|e| e.to_string())?;
        callseal_recording::export::export_wav(
            reader,
            wav,
            callseal_recording::export::Channels::Stereo,
            |_| {},
        )
        .map_err(|e| e.to_string())?;
        audio::read_wav(&out).map_err(|e| e.to_string())
    }

    pub fn recording_path(&self, id: &RecordingId) -> PathBuf {
        self.config.recordings_dir().join(format!("{id}.csrec"))
    }

    /// Sealed files in the recordings folder.
    pub fn recordings(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.config.recordings_dir())
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    /// Lines of calls.jsonl.
    pub fn call_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.config.call_records_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `f` holds (polling), up to `limit`.
    pub async fn wait_for(&self, limit: Duration, what: &str, mut f: impl FnMut(&Env) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !f(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn outbox_depth(&self) -> i64 {
        self.gateway
            .as_ref()
            .map(|g| {
                g.metrics
                    .outbox_depth
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .unwrap_or(0)
    }
}

/// A caller RTP stream: `lead_ms` of tone, the `digits`, then `tail_ms` of tone.
pub fn caller_stream(
    dir: &Path,
    hz: u32,
    lead_ms: u32,
    digits: &str,
    tail_ms: u32,
) -> (PathBuf, u64) {
    let tone = audio::ulaw_tone(&dir.join(format!("caller-{hz}.ulaw")), hz, 30.0).unwrap();
    let ms = |m: u32| &tone[..(m as usize * 8).min(tone.len())];
    let mut s = RtpStream::new(0x1357_9bdf, 0, 101);
    s.audio(ms(lead_ms));
    s.digits(digits, 100, 200).unwrap();
    s.audio(ms(tail_ms));
    let path = dir.join(format!("caller-{}.pcap", digits.replace('*', "s")));
    s.write_pcap(&path).unwrap();
    (path, s.duration_ms())
}

/// The PBX's RTP stream: `ms` of tone.
pub fn pbx_stream(dir: &Path, hz: u32, ms: u32) -> PathBuf {
    let tone = audio::ulaw_tone(&dir.join(format!("pbx-{hz}.ulaw")), hz, 30.0).unwrap();
    let mut s = RtpStream::new(0x2468_ace0, 0, 101);
    s.audio(&tone[..(ms as usize * 8).min(tone.len())]);
    let path = dir.join("pbx.pcap");
    s.write_pcap(&path).unwrap();
    path
}

/// sipp as the PBX on `ports`: answers, replays `pcap` after the ACK, waits for the BYE.
pub fn spawn_pbx(dir: &Path, pcap: Option<PathBuf>, ports: SippPorts, limit: Duration) -> Peer {
    sipp::spawn("pbx", dir, &Pbx { pcap }.scenario(), ports, None, limit).unwrap()
}

/// sipp as `caller`, calling the gateway at `gateway`.
pub fn spawn_caller(dir: &Path, caller: &Caller, gateway: SocketAddr, limit: Duration) -> Peer {
    let scenario = caller.scenario();
    sipp::spawn(
        "caller",
        dir,
        &scenario,
        SippPorts::free(),
        Some(gateway),
        limit,
    )
    .unwrap()
}

/// Runs a blocking peer wait off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The recording id in a call record.
pub fn record_recording(rec: &serde_json::Value) -> Option<RecordingId> {
    rec["recording"].as_str().map(|s| s.parse().unwrap())
}

pub fn unused(_: &dyn EscrowApi) {}
