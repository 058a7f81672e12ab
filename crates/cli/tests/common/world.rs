//! A deployment for tests that need the escrow: `callseal init`, then `callseal escrow` on a
//! loopback port with the test clock, and recordings deposited as the gateway would.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callseal_escrow::client::{ClientConfig, EscrowClient};
use callseal_escrow::{
    CallerCode, ConsentEvidence, DataDir, Deposit, GatewayId, LineId, Timestamp,
};
use callseal_recording::keys::{DataKey, RecordingId, wrap};
use callseal_recording::{Leg, Writer, WriterConfig};
use serde_json::Value;
use zeroize::Zeroizing;

use super::{Run, callseal};

/// G.711 µ-law code of every caller frame of [`World::record`] (a loud negative sample).
pub const CALLER_ULAW: u8 = 0x20;
/// G.711 µ-law code of every consultant frame (the same loudness, positive).
pub const CONSULTANT_ULAW: u8 = 0xa0;
/// Frames per leg in a recorded call: 100 × 20 ms.
pub const FRAMES_PER_LEG: u32 = 100;

/// A running `callseal escrow`, killed when dropped.
pub struct EscrowProc {
    child: Child,
    pub url: String,
}

impl Drop for EscrowProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_escrow(data: &Path, clock: &Path) -> EscrowProc {
    let mut child = callseal(data)
        .args(["escrow", "--listen", "127.0.0.1:0", "--test-clock-file"])
        .arg(clock)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("escrow did not start within 30 s");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("listening line")
        .to_owned();
    EscrowProc { child, url }
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub clock: PathBuf,
    pub escrow: EscrowProc,
    pub admin: String,
    /// The escrow's wall clock, Unix seconds.
    pub now: i64,
}

/// An enrolled listener whose agreement is acknowledged.
pub struct Listener {
    pub token: String,
    pub key_file: PathBuf,
}

impl World {
    pub fn run(&self, token: &str, args: &[&str]) -> Run {
        Run::from(
            callseal(&self.data)
                .env("CALLSEAL_TOKEN", token)
                .args(args)
                .output()
                .unwrap(),
        )
    }

    pub fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let r = self.run(token, &a);
        r.expect_code(0);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    }

    pub fn set_clock(&mut self, secs: i64) {
        self.now = secs;
        std::fs::write(&self.clock, format!("{secs}\n")).unwrap();
    }

    pub fn client(&self, token: &str) -> EscrowClient {
        EscrowClient::new(ClientConfig {
            url: self.escrow.url.clone(),
            ca_pem: std::fs::read(DataDir::new(&self.data).tls().ca_cert).unwrap(),
            token: Some(Zeroizing::new(token.to_owned())),
            timeout: Duration::from_secs(10),
        })
        .unwrap()
    }

    /// The admin acknowledges the agreement, then enrols `name` as a listener with a key of
    /// their own, and `name` acknowledges too.
    pub fn admin_and_listener(&self, name: &str) -> Listener {
        self.run(&self.admin, &["operator", "acknowledge", "--yes"])
            .expect_code(0);
        let key_file = self.data.join(format!("{name}.key"));
        let r = self.run(
            &self.admin,
            &["operator", "keygen", "-o", key_file.to_str().unwrap()],
        );
        r.expect_code(0);
        let public = r.stdout.lines().last().unwrap().to_owned();
        let v = self.json(
            &self.admin,
            &[
                "operator",
                "add",
                name,
                "--role",
                "listener",
                "--public-key",
                &public,
            ],
        );
        let token = v["token"].as_str().unwrap().to_owned();
        self.run(&token, &["operator", "acknowledge", "--yes"])
            .expect_code(0);
        Listener { token, key_file }
    }

    /// Deposits a recording started now, as the gateway would, and writes its sealed file
    /// where the CLI looks for it.
    pub fn record(&self, rt: &tokio::runtime::Runtime) -> String {
        self.record_at(rt, self.now)
    }

    /// Like [`World::record`], for a call that started at `started` (Unix seconds): 2 s of
    /// [`CALLER_ULAW`] on the caller leg and [`CONSULTANT_ULAW`] on the consultant leg.
    pub fn record_at(&self, rt: &tokio::runtime::Runtime, started: i64) -> String {
        let gw_token = std::fs::read_to_string(DataDir::new(&self.data).gateway_token()).unwrap();
        let gw = self.client(gw_token.trim());
        let started = Timestamp::from_unix_ms(started * 1000);
        let vk = callseal_escrow::table::parse_identity(
            &std::fs::read_to_string(DataDir::new(&self.data).identity_pub()).unwrap(),
        )
        .unwrap();
        let table = rt.block_on(gw.epoch_table()).unwrap().verify(&vk).unwrap();
        let e = table.epoch_for(started, None).unwrap().clone();
        let key = DataKey::generate().unwrap();
        let id = RecordingId::generate().unwrap();
        let mut w = Writer::new(Vec::new(), &key, id, e.epoch, WriterConfig::default()).unwrap();
        for i in 0..FRAMES_PER_LEG {
            let arrival = Duration::from_millis(u64::from(i) * 20);
            w.push_frame(Leg::Caller, i * 160, arrival, 0, &[CALLER_ULAW; 160])
                .unwrap();
            w.push_frame(
                Leg::Consultant,
                i * 160,
                arrival,
                0,
                &[CONSULTANT_ULAW; 160],
            )
            .unwrap();
        }
        let file = w.finish().unwrap();
        let dir = self.data.join("recordings");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{id}.csrec")), file).unwrap();
        let d = Deposit {
            recording: id,
            epoch: e.epoch,
            wrapped_key: wrap(&key, id, e.epoch, &e.public_key).unwrap(),
            caller_code: CallerCode::new("C-7KQ2-9XMD").unwrap(),
            line: LineId::new("ivf").unwrap(),
            gateway: GatewayId::new("gateway").unwrap(),
            started_at: started,
            ended_at: Some(started.plus_ms(2000)),
            consent: ConsentEvidence {
                digit: Some('1'),
                decided_at: started,
                prompt_sha256: "ab".repeat(32),
                gateway_key: None,
                signature: None,
            },
        };
        rt.block_on(gw.deposit(&d)).unwrap();
        id.to_string()
    }
}

/// `callseal init` in a new temporary folder, then `callseal escrow` on the test clock.
pub fn setup() -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let clock = dir.path().join("clock");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    std::fs::write(&clock, format!("{now}\n")).unwrap();
    let r = super::run(&data, &["--json", "init", "--admin", "alice"]);
    r.expect_code(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let admin = v["admin_token"].as_str().unwrap().to_owned();
    assert!(admin.starts_with("cs1_") && admin.len() == 68);
    for f in [
        "escrow/keyring",
        "escrow/identity.key",
        "escrow/tls/ca.key",
        "escrow/tls/server.key",
        "gateway/escrow.token",
        "gateway/pepper",
    ] {
        assert_eq!(
            std::fs::metadata(data.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600,
            "{f}"
        );
    }
    super::run(&data, &["init"])
        .expect_code(50)
        .stderr_has("already holds");
    let escrow = start_escrow(&data, &clock);
    World {
        dir,
        data,
        clock,
        escrow,
        admin,
        now,
    }
}

/// The stable error code of a `--json` run's error object.
pub fn code_of(r: &Run) -> String {
    let v: Value = serde_json::from_str(r.stderr.trim()).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or("").to_owned()
}
