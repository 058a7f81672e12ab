//! The `callseal` binary against a real escrow (`callseal escrow`) on loopback: init, operators,
//! recordings list/show/export/erase/hold/release, retention, epochs, audit, receipts, the
//! escrow-side errors of the CLI's error list, and a retention run on the test clock (the epoch
//! is shredded, export fails with "key shredded", a receipt exists, `audit verify` passes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use callseal_cli::timefmt::{format_day, format_utc};
use callseal_testkit::audio::{Channels, read_wav, ulaw_decode};
use common::world::{
    CALLER_ULAW, CONSULTANT_ULAW, FRAMES_PER_LEG, Listener, World, code_of, setup,
};
use common::{Run, callseal};
use serde_json::Value;

const DAY: i64 = 86_400;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn operators_recordings_retention_audit_and_receipts() {
    let rt = runtime();
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
    // A key file that is not the one enrolled for ana: the escrow refuses to re-wrap to it.
    let stranger = w.data.join("stranger.key");
    common::run(
        &w.data,
        &["operator", "keygen", "-o", stranger.to_str().unwrap()],
    )
    .expect_code(0);
    w.run(
        &ana,
        &[
            "--key-file",
            stranger.to_str().unwrap(),
            "recordings",
            "export",
            &a,
            "--purpose",
            "x",
            "-o",
            out2.to_str().unwrap(),
        ],
    )
    .expect_code(44)
    .stderr_has("refused the operator key");
    assert!(!out2.exists());
    // An id the escrow does not know is "unknown" (10), not "sealed file missing" (43).
    let mut args = vec![
        "recordings",
        "export",
        "00112233445566778899aabbccddeeff",
        "--purpose",
        "x",
        "-o",
        out2.to_str().unwrap(),
    ];
    args.extend_from_slice(&key_arg);
    w.run(&ana, &args)
        .expect_code(10)
        .stderr_has("no recording with id");
    assert!(!out2.exists());

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
    // The message gives the shred date: the UTC day the escrow destroyed the epoch.
    let shredded_at_ms = w
        .json(&admin, &["epochs"])
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["state"] == "shredded")
        .unwrap()["shredded_at_ms"]
        .as_i64()
        .unwrap();
    let shred_day = callseal_cli::timefmt::format_day(shredded_at_ms.div_euclid(86_400_000));
    let human = w.run(&ana, &args[1..]);
    human
        .expect_code(11)
        .stderr_has(&format!("was shredded on {shred_day}:"))
        .stderr_has("callseal receipts");
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

/// Exports one leg of `id` as `l`; returns the WAV's sample rate and channels.
fn export_leg(w: &World, l: &Listener, id: &str, leg: &str) -> Channels {
    let out = w.data.join(format!("{leg}.wav"));
    w.run(
        &l.token,
        &[
            "recordings",
            "export",
            id,
            "--purpose",
            "complaint 2291 review",
            "--leg",
            leg,
            "-o",
            out.to_str().unwrap(),
            "--key-file",
            l.key_file.to_str().unwrap(),
        ],
    )
    .expect_code(0)
    .stdout_has(&format!("(2.0 s, {leg}, "));
    read_wav(&out).unwrap()
}

/// Records a call, exports `leg` alone and checks it is mono and every sample is `leg`'s value.
fn assert_leg_export_holds_only(leg: &str) {
    let rt = runtime();
    let w = setup();
    let ana = w.admin_and_listener("ana");
    let id = w.record(&rt);
    let (caller, consultant) = (ulaw_decode(CALLER_ULAW), ulaw_decode(CONSULTANT_ULAW));
    assert!(caller != 0 && consultant != 0 && caller != consultant);
    let want = if leg == "caller" { caller } else { consultant };
    let wav = export_leg(&w, &ana, &id, leg);
    assert_eq!((wav.rate, wav.channels.len()), (8000, 1));
    let samples = &wav.channels[0];
    assert_eq!(samples.len(), FRAMES_PER_LEG as usize * 160);
    let other = samples.iter().filter(|&&s| s != want).count();
    assert_eq!(other, 0, "{other} samples are not the {leg}'s");
}

#[test]
fn export_leg_caller_is_mono_and_holds_only_the_caller() {
    assert_leg_export_holds_only("caller");
}

#[test]
fn export_leg_consultant_is_mono_and_holds_only_the_consultant() {
    assert_leg_export_holds_only("consultant");
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the precise form `--since`/`--until` accept.
fn instant(secs: i64) -> String {
    format_utc(secs).replace(' ', "T")
}

fn day(secs: i64) -> String {
    format_day(secs.div_euclid(DAY))
}

#[test]
fn recordings_list_since_and_until_filter_on_the_start_time() {
    let rt = runtime();
    let mut w = setup();
    let ana = w.admin_and_listener("ana");
    // Three calls two days apart; the escrow's clock moves with them.
    let t = w.now;
    let a = w.record(&rt);
    w.set_clock(t + 2 * DAY);
    let b = w.record(&rt);
    w.set_clock(t + 4 * DAY);
    let c = w.record(&rt);
    let ids = |filter: &[&str]| -> Vec<String> {
        let mut args = vec!["recordings", "list"];
        args.extend_from_slice(filter);
        w.json(&ana.token, &args)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&[]), [c.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(ids(&["--since", &day(t + DAY)]), [c.as_str(), b.as_str()]);
    assert_eq!(
        ids(&["--until", &day(t + 3 * DAY)]),
        [b.as_str(), a.as_str()]
    );
    assert_eq!(
        ids(&["--since", &day(t + DAY), "--until", &day(t + 3 * DAY)]),
        [b.as_str()]
    );
    // To the second: --since includes a call started at that instant, --until excludes it.
    assert_eq!(
        ids(&["--since", &instant(t + 2 * DAY)]),
        [c.as_str(), b.as_str()]
    );
    assert_eq!(ids(&["--until", &instant(t + 2 * DAY)]), [a.as_str()]);
    assert!(ids(&["--since", &instant(t + 4 * DAY + 1)]).is_empty());
    let r = w.run(
        &ana.token,
        &["recordings", "list", "--since", &day(t + 3 * DAY)],
    );
    r.expect_code(0).stdout_has(&c);
    assert!(
        !r.stdout.contains(&a) && !r.stdout.contains(&b),
        "{}",
        r.stdout
    );
    w.run(&ana.token, &["recordings", "list", "--until", "2026-02-30"])
        .expect_code(2)
        .stderr_has("--until");
}

#[test]
fn audit_list_since_leaves_out_earlier_entries() {
    let mut w = setup();
    let admin = w.admin.clone();
    w.run(&admin, &["operator", "acknowledge", "--yes"])
        .expect_code(0);
    let t = w.now;
    w.set_clock(t + 2 * DAY);
    w.run(&admin, &["retention", "set", "--days", "45"])
        .expect_code(0);
    let all = w.json(&admin, &["audit", "list"]);
    let since = day(t + DAY);
    let since_ms = (t + DAY).div_euclid(DAY) * DAY * 1000;
    let later = w.json(&admin, &["audit", "list", "--since", &since]);
    let seqs = |v: &Value, keep: &dyn Fn(i64) -> bool| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| keep(e["at_ms"].as_i64().unwrap()))
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let before = seqs(&all, &|at| at < since_ms);
    let after = seqs(&all, &|at| at >= since_ms);
    assert!(!before.is_empty(), "no entry before {since}: {all}");
    assert!(!after.is_empty(), "no entry after {since}: {all}");
    // Every later entry and none of the earlier ones (reading the log may add entries).
    let listed = seqs(&later, &|_| true);
    assert_eq!(seqs(&later, &|at| at >= since_ms), listed, "{later}");
    assert!(after.iter().all(|s| listed.contains(s)), "{later}");
    assert!(before.iter().all(|s| !listed.contains(s)), "{later}");
    let acknowledged = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor"] == "alice" && e["at_ms"].as_i64().unwrap() < since_ms)
        .unwrap();
    let retention = later
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"].as_str().unwrap().contains("retention"));
    assert!(
        retention.is_some(),
        "the retention change is not listed: {later}"
    );
    let human = w.run(&admin, &["audit", "list", "--since", &since]);
    human.expect_code(0).stdout_has("SEQ");
    assert!(
        !human
            .stdout
            .contains(acknowledged["action"].as_str().unwrap()),
        "{}",
        human.stdout
    );
}
