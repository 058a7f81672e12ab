//! The main job, as the README walks through it: `callseal serve` on embedded defaults (no PBX:
//! the built-in echo endpoint), one real call placed by `scripts/demo-call` (sipp, a spoken
//! sentence from espeak-ng, the consent digit as RFC 4733), then the operator commands: list,
//! export with a purpose, audit, erase, and the export that must then fail. Needs sipp, sox and
//! espeak-ng (scripts/test-all installs them) and root (sipp replays the digit via a raw socket).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callseal_testkit::audio::{read_wav, rms};
use callseal_testkit::canary::files_containing;
use callseal_testkit::net::{free_port, free_range};
use callseal_testkit::process::{Peer, require_tool};
use common::{Run, callseal, run};

/// The caller number `scripts/demo-call` presents (it must never reach disk or logs).
const CALLER: &str = "+15550177";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Polls `check` every 100 ms until it yields a value or `limit` passes.
fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `callseal` with an operator's token (and key file) in the environment.
fn as_operator(data: &Path, token: &str, key: Option<&Path>, args: &[&str]) -> Run {
    let mut c = callseal(data);
    c.env("CALLSEAL_TOKEN", token);
    if let Some(k) = key {
        c.arg("--key-file").arg(k);
    }
    Run::from(c.args(args).output().expect("run callseal"))
}

/// The largest normalised cross-correlation of `b` against `a` delayed by 0..`max_lag` samples.
fn best_correlation(a: &[i16], b: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (0.0, 0);
    for lag in 0..max_lag {
        let n = a.len().min(b.len().saturating_sub(lag));
        if n < 8000 {
            break;
        }
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        let c = ab / (aa.sqrt() * bb.sqrt()).max(1e-9);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

#[test]
fn serve_takes_a_real_call_records_it_and_the_operators_walk_through_it() {
    for (tool, package) in [
        ("sipp", "sip-tester"),
        ("sox", "sox"),
        ("espeak-ng", "espeak-ng"),
    ] {
        require_tool(tool, package).unwrap_or_else(|e| panic!("{e}"));
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("callseal-data");
    let sip = format!("127.0.0.1:{}", free_port(0));
    let (lo, hi) = free_range(40);
    let config = work.path().join("callseal.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nudp = [\"{sip}\"]\ntcp = [\"{sip}\"]\n\n[media]\nport_min = {lo}\nport_max = {hi}\n"
        ),
    )
    .unwrap();

    // 1. Serve on the embedded defaults (no PBX: the echo endpoint), escrow API on a free port.
    let mut cmd = callseal(&data);
    cmd.args(["serve", "--config"])
        .arg(&config)
        .args(["--escrow-listen", "127.0.0.1:0"]);
    let serve = Peer::spawn("serve", cmd, work.path()).unwrap();
    let admin = wait_until(Duration::from_secs(60), "gateway ready", || {
        let log = serve.log();
        if !log.contains("gateway ready") {
            return None;
        }
        // Output that is not a terminal never carries the token: it is left in a 0600 file.
        assert!(
            !log.contains("cs1_"),
            "admin token printed into a log:\n{log}"
        );
        let file = data.join("admin.token");
        assert!(log.contains(&file.display().to_string()), "{log}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        Some(std::fs::read_to_string(&file).unwrap().trim().to_owned())
    });
    assert!(
        serve.log().contains("DEMO MODE"),
        "echo mode must be announced loudly:\n{}",
        serve.log()
    );

    // A second gateway on the same data folder is refused, and names the first one.
    let second = Run::from(
        callseal(&data)
            .args([
                "serve",
                "--sip",
                "127.0.0.1:0",
                "--escrow-listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap(),
    );
    second
        .expect_code(50)
        .stderr_has("is already using")
        .stderr_has(&format!("pid {}", serve.id().unwrap()));
    assert!(
        !serve.log().contains('\u{1b}'),
        "no terminal colour codes in a log that goes to a file"
    );

    // 2. One call: the caller presses 1 and speaks; the echo endpoint plays it back.
    let call = Command::new(repo_root().join("scripts/demo-call"))
        .args(["--to", &sip, "--digit", "1", "--from", CALLER])
        .output()
        .expect("run scripts/demo-call");
    assert!(
        call.status.success(),
        "demo-call failed:\n{}\n{}\nserve log:\n{}",
        String::from_utf8_lossy(&call.stdout),
        String::from_utf8_lossy(&call.stderr),
        serve.log()
    );
    let records = data.join("gateway/calls.jsonl");
    let record: serde_json::Value = wait_until(Duration::from_secs(15), "call record", || {
        let text = std::fs::read_to_string(&records).ok()?;
        serde_json::from_str(text.lines().next()?).ok()
    });
    assert_eq!(record["consent"], "consented", "{record}");
    assert!(
        record["caller"].as_str().unwrap().starts_with("C-"),
        "{record}"
    );
    let id = record["recording"]
        .as_str()
        .expect("a recording id")
        .to_owned();

    // 3. The admin acknowledges the agreement and enrols a listener with her own key.
    as_operator(&data, &admin, None, &["operator", "acknowledge", "--yes"]).expect_code(0);
    let key = work.path().join("ana.key");
    let keygen = run(&data, &["operator", "keygen", "-o", key.to_str().unwrap()]);
    keygen.expect_code(0);
    let public = keygen.stdout.lines().last().unwrap().trim().to_owned();
    let added = as_operator(
        &data,
        &admin,
        None,
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
    added.expect_code(0);
    let ana = added
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("cs1_"))
        .expect("the listener's token")
        .to_owned();
    as_operator(&data, &ana, None, &["operator", "acknowledge", "--yes"]).expect_code(0);

    // 4. The recording is listed (once the end of the call is delivered) and exported.
    wait_until(Duration::from_secs(15), "recording listed", || {
        let r = as_operator(&data, &admin, None, &["--json", "recordings", "list"]);
        (r.code == 0 && r.stdout.contains(&id) && r.stdout.contains("sealed")).then_some(())
    });
    let wav = work.path().join("call.wav");
    let purpose = "quality review of the walkthrough call";
    let export = |out: &Path| {
        let out = out.to_str().unwrap();
        let args = ["recordings", "export", &id, "--purpose", purpose, "-o", out];
        as_operator(&data, &ana, Some(&key), &args)
    };
    export(&wav).expect_code(0).stdout_has("Wrote");
    let audio = read_wav(&wav).unwrap();
    assert_eq!((audio.rate, audio.channels.len()), (8000, 2));
    let (caller, consultant) = (&audio.channels[0], &audio.channels[1]);
    assert!(
        caller.len() > 8000 * 2,
        "at least 2 s of bridged call recorded, got {} samples",
        caller.len()
    );
    assert!(rms(caller) > 300.0, "the caller spoke: rms {}", rms(caller));
    // The echo endpoint is the "consultant": its channel is the caller's speech, a little later.
    let (corr, lag) = best_correlation(caller, consultant, 4000);
    assert!(
        corr > 0.6,
        "the consultant channel should echo the caller (best correlation {corr:.2} at {lag} samples)"
    );

    // 5. The release is in the audit log with its purpose, and the log verifies.
    as_operator(&data, &admin, None, &["audit", "list"])
        .expect_code(0)
        .stdout_has("key_release")
        .stdout_has(purpose);
    as_operator(&data, &admin, None, &["audit", "verify"]).expect_code(0);

    // 6. Erase; the export then fails with its own exit code, and a receipt exists.
    as_operator(
        &data,
        &admin,
        None,
        &["recordings", "erase", &id, "--reason", "caller asked"],
    )
    .expect_code(0);
    let again = work.path().join("again.wav");
    export(&again).expect_code(12).stderr_has("erased");
    assert!(!again.exists(), "no file is left behind by a failed export");
    as_operator(&data, &admin, None, &["receipts"])
        .expect_code(0)
        .stdout_has(&id);

    // 7. SIGTERM: a graceful stop with exit 0; the caller's number is nowhere on disk or in
    //    the log.
    let pid = serve.id().expect("serve is running").to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let done = serve.wait(Duration::from_secs(20)).unwrap();
    assert_eq!(done.code(), Some(0), "serve's exit; its log:\n{}", done.log);
    assert!(done.log.contains("stopped"), "{}", done.log);
    assert!(
        !done.log.contains(CALLER),
        "the caller number reached the log"
    );
    std::fs::remove_file(&wav).unwrap();
    let hits = files_containing(&[&data], &[CALLER.as_bytes()]);
    assert!(hits.is_empty(), "the caller number reached {hits:?}");
}
