//! Commands and errors that the binary decides on its own, before or without the escrow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{closed_port, run};

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["--help"]);
    r.expect_code(0);
    for cmd in [
        "init",
        "serve",
        "gateway",
        "escrow",
        "operator",
        "recordings",
        "retention",
        "epochs",
        "audit",
        "receipts",
        "doctor",
    ] {
        r.stdout_has(&format!("  {cmd}"));
    }
    // The test clock is not advertised.
    assert!(!r.stdout.contains("test-clock"));
    let r = run(dir.path(), &["recordings", "--help"]);
    r.expect_code(0);
    for cmd in ["list", "show", "export", "play", "erase", "hold", "release"] {
        r.stdout_has(&format!("  {cmd}"));
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["recordings", "shred"])
        .expect_code(2)
        .stderr_has("unrecognized subcommand");
}

#[test]
fn keygen_writes_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("me.key");
    let r = run(
        dir.path(),
        &["operator", "keygen", "-o", key.to_str().unwrap()],
    );
    r.expect_code(0).stdout_has("mode 0600");
    let public = r.stdout.lines().last().unwrap();
    assert_eq!(public.len(), 64, "{public}");
    assert!(public.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = fs::read(&key).unwrap();
    run(
        dir.path(),
        &["operator", "keygen", "-o", key.to_str().unwrap()],
    )
    .expect_code(40)
    .stderr_has("never overwrites");
    assert_eq!(fs::read(&key).unwrap(), before);
}

#[test]
fn token_file_with_loose_mode_is_refused_with_the_chmod() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("tok");
    fs::write(&token, "secret-token-text\n").unwrap();
    fs::set_permissions(&token, fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("https://127.0.0.1:{}", closed_port());
    let r = run(
        dir.path(),
        &[
            "--escrow",
            &url,
            "--token-file",
            token.to_str().unwrap(),
            "recordings",
            "list",
        ],
    );
    r.expect_code(23)
        .stderr_has(&format!("chmod 600 {}", token.display()))
        .stderr_has("0644");
    assert!(!r.stderr.contains("secret-token-text"));
}

#[test]
fn missing_token_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{}", closed_port());
    run(dir.path(), &["--escrow", &url, "recordings", "list"])
        .expect_code(22)
        .stderr_has("CALLSEAL_TOKEN");
}

#[test]
fn purpose_missing_or_too_long_is_refused_before_anything_happens() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    let id = "00112233445566778899aabbccddeeff";
    let o = out.to_str().unwrap();
    run(dir.path(), &["recordings", "export", id, "-o", o])
        .expect_code(14)
        .stderr_has("--purpose");
    run(
        dir.path(),
        &["recordings", "export", id, "-o", o, "--purpose", "  "],
    )
    .expect_code(14);
    let long = "x".repeat(2000);
    run(
        dir.path(),
        &["recordings", "export", id, "-o", o, "--purpose", &long],
    )
    .expect_code(14)
    .stderr_has("2000 characters");
    run(dir.path(), &["recordings", "play", id]).expect_code(14);
    run(dir.path(), &["recordings", "erase", id])
        .expect_code(14)
        .stderr_has("--reason");
    assert!(!out.exists());
}

/// `recordings export` of a well-formed id with a purpose, to `out`.
fn export_to(data: &std::path::Path, out: &str) -> common::Run {
    let id = "00112233445566778899aabbccddeeff";
    run(
        data,
        &["recordings", "export", id, "--purpose", "review", "-o", out],
    )
}

#[test]
fn output_file_exists_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    fs::write(&out, b"keep me").unwrap();
    let r = export_to(dir.path(), out.to_str().unwrap());
    r.expect_code(40).stderr_has("never overwrites");
    assert_eq!(fs::read(&out).unwrap(), b"keep me");
}

#[test]
fn malformed_ids_are_refused_before_any_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    let o = out.to_str().unwrap();
    for id in [
        "../../etc/passwd",
        "e02e",
        "00112233445566778899aabbccddeefg",
    ] {
        run(
            dir.path(),
            &["recordings", "export", id, "--purpose", "review", "-o", o],
        )
        .expect_code(10)
        .stderr_has("is not a recording id");
    }
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
    // `-o -` names no file: the plaintext would land in one called "-".
    export_to(dir.path(), "-")
        .expect_code(2)
        .stderr_has("--player -");
    assert!(!dir.path().join("-").exists());
}

#[test]
fn output_path_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-such-folder").join("x.wav");
    export_to(dir.path(), out.to_str().unwrap())
        .expect_code(41)
        .stderr_has("does not exist");
}

#[test]
fn retention_with_ambiguous_units_or_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["retention", "set", "--days", "1m"])
        .expect_code(15)
        .stderr_has("ambiguous");
    run(dir.path(), &["retention", "set", "--days", "1y"]).expect_code(15);
    run(dir.path(), &["retention", "set", "--days", "0"])
        .expect_code(15)
        .stderr_has("out of range");
    run(dir.path(), &["retention", "set", "--days", "99999"])
        .expect_code(15)
        .stderr_has("1..=3650");
}

#[test]
fn escrow_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{}", closed_port());
    let r = common::Run::from(
        common::callseal(dir.path())
            .env("CALLSEAL_TOKEN", "t")
            .args(["--escrow", &url, "epochs"])
            .output()
            .unwrap(),
    );
    r.expect_code(30)
        .stderr_has("cannot be reached")
        .stderr_has("callseal serve");
}

#[test]
fn errors_in_json_mode_are_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["--json", "retention", "set", "--days", "2y"]);
    r.expect_code(15);
    let v: serde_json::Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(v["error"]["code"], "retention_ambiguous_unit");
    assert_eq!(v["error"]["exit"], 15);
}

#[test]
fn doctor_on_a_missing_data_folder_fails_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    let r = run(&data, &["doctor"]);
    r.expect_code(3)
        .stdout_has("FAIL")
        .stdout_has("callseal --data");
}

#[test]
fn doctor_flags_a_readable_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    fs::create_dir(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    let key = data.join("operator.key");
    fs::write(&key, "x").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(&data, &["--json", "doctor"]);
    assert!(r.code == 3, "{} {}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let finding = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "file modes" && f["severity"] == "fail")
        .unwrap();
    assert_eq!(finding["fix"], format!("chmod 600 {}", key.display()));
}

#[test]
fn serve_refuses_bad_prompts_and_a_busy_port_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prompts = dir.path().join("prompts");
    fs::create_dir(&prompts).unwrap();
    fs::write(prompts.join("consent.wav"), b"not a wav").unwrap();
    let config = dir.path().join("callseal.toml");
    fs::write(
        &config,
        format!("[prompts]\nfolder = {:?}\n", prompts.display().to_string()),
    )
    .unwrap();
    run(&data, &["serve", "-c", config.to_str().unwrap()])
        .expect_code(2)
        .stderr_has("prompt consent")
        .stderr_has("callseal.example.toml");
    assert!(
        !data.exists(),
        "nothing created for a start that cannot work"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    run(
        &data,
        &["serve", "--sip", "127.0.0.1:0", "--escrow-listen", &addr],
    )
    .expect_code(1)
    .stderr_has("cannot listen for the escrow API")
    .stderr_has("--escrow-listen");
    assert!(
        !data.join("escrow/keyring").exists(),
        "no deployment (and no one-time admin token) spent on a busy port"
    );
}
