//! The `callseal` binary against a real escrow (`callseal escrow`) on loopback: init, operators,
//! recordings list/show/export/erase/hold/release, retention, epochs, audit, receipts, the
//! escrow-side errors of the CLI's error list, and a retention run on the test clock (the epoch
//! is shredded, export fails with "key shredded", a receipt exists, `audit verify` passes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
use common::{Run, callseal};
use serde_json::Value;
use zeroize::Zeroizing;

/// A running `callseal escrow`, killed when dropped.
struct EscrowProc {
    child: Child,
    url: String,
}

impl Drop for EscrowProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_escrow(data: &Path, clock: &Path) -> EscrowProc {
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

struct World {
    _dir: tempfile::TempDir,
    data: PathBuf,
    clock: PathBuf,
    escrow: EscrowProc,
    admin: String,
    now: i64,
}

impl World {
    fn run(&self, token: &str, args: &[&str]) -> Run {
        Run::from(
            callseal(&self.data)
                .env("CALLSEAL_TOKEN", token)
                .args(args)
                .output()
                .unwrap(),
        )
    }

    fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let r = self.run(token, &a);
        r.expect_code(0);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    }

    fn set_clock(&mut self, secs: i64) {
        self.now = secs;
        std::fs::write(&self.clock, format!("{secs}\n")).unwrap();
    }

    fn client(&self, token: &str) -> EscrowClient {
        EscrowClient::new(ClientConfig {
            url: self.escrow.url.clone(),
            ca_pem: std::fs::read(DataDir::new(&self.data).tls().ca_cert).unwrap(),
            token: Some(Zeroizing::new(token.to_owned())),
            timeout: Duration::from_secs(10),
        })
        .unwrap()
    }

    /// Deposits a recording as the gateway would, and writes its sealed file where the CLI
    /// looks for it.
    fn record(&self, rt: &tokio::runtime::Runtime) -> String {
        let gw_token = std::fs::read_to_string(DataDir::new(&self.data).gateway_token()).unwrap();
        let gw = self.client(gw_token.trim());
        let started = Timestamp::from_unix_ms(self.now * 1000);
        let vk = callseal_escrow::table::parse_identity(
            &std::fs::read_to_string(DataDir::new(&self.data).identity_pub()).unwrap(),
        )
        .unwrap();
        let table = rt.block_on(gw.epoch_table()).unwrap().verify(&vk).unwrap();
        let e = table.epoch_for(started, None).unwrap().clone();
        let key = DataKey::generate().unwrap();
        let id = RecordingId::generate().unwrap();
        let mut w = Writer::new(Vec::new(), &key, id, e.epoch, WriterConfig::default()).unwrap();
        for i in 0..100u32 {
            w.push_frame(
                Leg::Caller,
                i * 160,
                Duration::from_millis(u64::from(i) * 20),
                0,
                &[0x7f; 160],
            )
            .unwrap();
            w.push_frame(
                Leg::Consultant,
                i * 160,
                Duration::from_millis(u64::from(i) * 20),
                0,
                &[0xff; 160],
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

fn setup() -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let clock = dir.path().join("clock");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    std::fs::write(&clock, format!("{now}\n")).unwrap();
    let r = common::run(&data, &["--json", "init", "--admin", "alice"]);
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
    common::run(&data, &["init"])
        .expect_code(50)
        .stderr_has("already holds");
    let escrow = start_escrow(&data, &clock);
    World {
        _dir: dir,
        data,
        clock,
        escrow,
        admin,
        now,
    }
}

fn code_of(r: &Run) -> String {
    let v: Value = serde_json::from_str(r.stderr.trim()).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[test]
fn operators_recordings_retention_audit_and_receipts() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut w = setup();
    let admin = w.admin.clone();

    // The admin must acknowledge the agreement first.
    w.run(&admin, &["operator", "list"])
        .expect_code(24)
        .stderr_has("operator acknowledge");
    w.run(&admin, &["operator", "acknowledge", "--yes"])
        .expect_code(0)
        .stdout_has("CONFIDENTIALITY AGREEMENT")
        .stdout_has("Acknowledged");

    // A listener with her own key.
    let key = w.data.join("ana.key");
    let r = w.run(&admin, &["operator", "keygen", "-o", key.to_str().unwrap()]);
    r.expect_code(0);
    let public = r.stdout.lines().last().unwrap().to_owned();
    let v = w.json(
        &admin,
        &[
            "operator",
            "add",
            "ana",
            "--role",
            "listener",
            "--public-key",
            &public,
        ],
    );
    let ana = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["operator"]["status"], "pending_agreement");
    w.run(&admin, &["operator", "add", "ana", "--role", "listener"])
        .expect_code(24)
        .stderr_has("already exists");
    let list = w.run(&admin, &["operator", "list"]);
    list.expect_code(0)
        .stdout_has("alice")
        .stdout_has("ana")
        .stdout_has("pending agreement");
    let key_arg = ["--key-file", key.to_str().unwrap()];
    w.run(&ana, &["recordings", "list"]).expect_code(24);
    w.run(&ana, &["operator", "acknowledge", "--yes"])
        .expect_code(0);

    // Two recordings deposited by the gateway.
    let a = w.record(&rt);
    let b = w.record(&rt);
    let v = w.json(&ana, &["recordings", "list"]);
    assert_eq!(v.as_array().unwrap().len(), 2);
    w.run(
        &ana,
        &[
            "recordings",
            "list",
            "--caller",
            "C-7KQ2-9XMD",
            "--line",
            "ivf",
        ],
    )
    .expect_code(0)
    .stdout_has(&a)
    .stdout_has(&b);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "sealed" && r["caller_code"] == "C-7KQ2-9XMD")
    );
    w.run(&ana, &["recordings", "list", "--status", "erased"])
        .expect_code(0)
        .stdout_has("No recordings match");
    w.run(&ana, &["recordings", "show", &a])
        .expect_code(0)
        .stdout_has("sealed")
        .stdout_has("C-7KQ2-9XMD")
        .stdout_has("consented");
    w.run(
        &ana,
        &["recordings", "show", "00112233445566778899aabbccddeeff"],
    )
    .expect_code(10);

    // Export: key released to ana, decrypted locally, WAV 0600.
    let out = w.data.join("review.wav");
    let mut args = vec![
        "recordings",
        "export",
        &a,
        "--purpose",
        "complaint 2291 review",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(&key_arg);
    w.run(&ana, &args)
        .expect_code(0)
        .stdout_has("segments verified");
    let wav = std::fs::read(&out).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Exit codes of the escrow's refusals.
    let out2 = w.data.join("again.wav");
    let mut args = vec![
        "--json",
        "recordings",
        "export",
        &a,
        "--purpose",
        "x",
        "-o",
        out2.to_str().unwrap(),
    ];
    args.extend_from_slice(&key_arg);
    let r = w.run(&admin, &args);
    r.expect_code(20);
    assert_eq!(code_of(&r), "wrong_role");
    assert!(!out2.exists());
    w.run(&ana, &["operator", "add", "eve", "--role", "admin"])
        .expect_code(20)
        .stderr_has("admin role");

    // Play to stdout: WAV bytes, nothing on disk.
    let mut args = vec![
        "recordings",
        "play",
        &a,
        "--purpose",
        "quality review",
        "--player",
        "-",
    ];
    args.extend_from_slice(&key_arg);
    let played = callseal(&w.data)
        .env("CALLSEAL_TOKEN", &ana)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(
        played.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    assert_eq!(&played.stdout[..4], b"RIFF");

    // A tampered and a truncated sealed file: exit 42, how much verified, no plaintext left.
    let c = w.record(&rt);
    let sealed = w.data.join("recordings").join(format!("{c}.csrec"));
    let original = std::fs::read(&sealed).unwrap();
    let mut bad = original.clone();
    let mid = bad.len() - 40;
    bad[mid] ^= 0x01;
    std::fs::write(&sealed, &bad).unwrap();
    let out5 = w.data.join("tampered.wav");
    let mut args = vec![
        "recordings",
        "export",
        &c,
        "--purpose",
        "integrity check",
        "-o",
        out5.to_str().unwrap(),
    ];
    args.extend_from_slice(&key_arg);
    w.run(&ana, &args)
        .expect_code(42)
        .stderr_has("tampered")
        .stderr_has("verified");
    assert!(!out5.exists());
    std::fs::write(&sealed, &original[..original.len() - 20]).unwrap();
    w.run(&ana, &args)
        .expect_code(42)
        .stderr_has("truncated")
        .stderr_has("segments");
    assert!(!out5.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&w.data)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("tampered"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "a partial plaintext file was left behind"
    );

    // The audit shows the release with its purpose.
    let v = w.json(&admin, &["audit", "list"]);
    let rel = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "key_release" && e["outcome"] == "granted")
        .unwrap();
    assert_eq!(rel["actor"], "ana");
    assert_eq!(rel["purpose"], "complaint 2291 review");
    w.run(&admin, &["audit", "verify"])
        .expect_code(0)
        .stdout_has("Audit log verified");

    // Hold, erase, release.
    w.run(
        &admin,
        &["recordings", "hold", &a, "--reason", "litigation"],
    )
    .expect_code(0);
    w.run(
        &admin,
        &["recordings", "erase", &a, "--reason", "deletion request"],
    )
    .expect_code(13)
    .stderr_has("recordings release");
    w.run(&admin, &["recordings", "release", &a]).expect_code(0);
    w.run(
        &admin,
        &[
            "recordings",
            "erase",
            &a,
            "--reason",
            "caller withdrew consent by letter",
        ],
    )
    .expect_code(0)
    .stdout_has("Erased");
    let out3 = w.data.join("erased.wav");
    let mut args = vec![
        "recordings",
        "export",
        &a,
        "--purpose",
        "x",
        "-o",
        out3.to_str().unwrap(),
    ];
    args.extend_from_slice(&key_arg);
    w.run(&ana, &args).expect_code(12).stderr_has("erased");
    assert!(!out3.exists());
    w.json(&admin, &["receipts", &a]);

    // Retention.
    w.run(
        &admin,
        &["retention", "set", "--days", "90", "--line", "ivf"],
    )
    .expect_code(0);
    let v = w.json(&admin, &["retention", "show"]);
    assert_eq!(v["default_days"], 30);
    assert_eq!(v["lines"][0]["line"], "ivf");
    assert_eq!(v["lines"][0]["days"], 90);
    w.run(&admin, &["retention", "set", "--days", "30"])
        .expect_code(0);
    w.run(&admin, &["epochs"])
        .expect_code(0)
        .stdout_has("EPOCH")
        .stdout_has("active");

    // Retention runs out on the test clock: 31 days, then the pending hour.
    let t = w.now;
    w.set_clock(t + 31 * 86_400);
    wait_for(&w, &admin, "pending_shred");
    w.set_clock(t + 31 * 86_400 + 7200);
    wait_for(&w, &admin, "shredded");
    let out4 = w.data.join("late.wav");
    let mut args = vec![
        "--json",
        "recordings",
        "export",
        &b,
        "--purpose",
        "late review",
        "-o",
        out4.to_str().unwrap(),
    ];
    args.extend_from_slice(&key_arg);
    let r = w.run(&ana, &args);
    r.expect_code(11);
    assert_eq!(code_of(&r), "key_shredded");
    assert!(!out4.exists());
    let human = w.run(&ana, &args[1..]);
    human.expect_code(11).stderr_has("callseal receipts");
    let v = w.json(&admin, &["receipts"]);
    assert!(v.as_array().unwrap().iter().any(|r| {
        r["subject"].as_str().unwrap().starts_with("epoch ") && r["reason"] == "retention"
    }));
    let epoch = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "retention")
        .unwrap()["subject"]
        .as_str()
        .unwrap()[6..]
        .to_owned();
    w.run(&admin, &["receipts", &epoch])
        .expect_code(0)
        .stdout_has("Signature valid")
        .stdout_has("yes");
    w.run(&admin, &["audit", "verify"]).expect_code(0);

    // Disabled operators and expired tokens.
    w.run(&admin, &["operator", "disable", "ana"])
        .expect_code(0);
    w.run(&ana, &["recordings", "list"]).expect_code(22);
    w.set_clock(t + 200 * 86_400);
    std::thread::sleep(Duration::from_millis(500));
    let r = w.run(&admin, &["--json", "epochs"]);
    r.expect_code(21);
    assert_eq!(code_of(&r), "token_expired");
}

fn wait_for(w: &World, admin: &str, state: &str) {
    for _ in 0..100 {
        let v = w.json(admin, &["epochs"]);
        if v.as_array().unwrap().iter().any(|e| e["state"] == state) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no epoch reached {state}");
}

#[test]
fn a_foreign_ca_is_a_pin_mismatch_and_a_stopped_escrow_is_unreachable() {
    let w = setup();
    let other = tempfile::tempdir().unwrap();
    common::run(&other.path().join("o"), &["init"]).expect_code(0);
    let foreign = other.path().join("o/escrow/tls/ca.pem");
    let r = w.run(&w.admin, &["--ca", foreign.to_str().unwrap(), "epochs"]);
    r.expect_code(31).stderr_has("pinned CA");
    let url = w.escrow.url.clone();
    drop(w.escrow);
    let r = Run::from(
        callseal(&w.data)
            .env("CALLSEAL_TOKEN", &w.admin)
            .args(["--escrow", &url, "epochs"])
            .output()
            .unwrap(),
    );
    r.expect_code(30).stderr_has("cannot be reached");
}
