//! `callseal doctor` against a real deployment (`callseal init` and a running escrow): a fresh
//! one passes every check, and the prompts check finds the gateway's prompts the way the
//! gateway does (a configured folder, else the built-in ones), naming each file in the wrong
//! format with the command that converts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Run;
use common::world::{World, setup};
use serde_json::Value;

/// Runs doctor with the admin's token. Two checks read the machine rather than the
/// deployment; both are pinned so the rows are exact: core dumps are off for this test process
/// (children inherit the limit) and `timedatectl` is a stub that answers "synchronised".
fn doctor(w: &World, args: &[&str]) -> Run {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Core);
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        },
    )
    .unwrap();
    let bin = w.dir.path().join("bin");
    if !bin.exists() {
        fs::create_dir(&bin).unwrap();
        let stub = bin.join("timedatectl");
        fs::write(&stub, "#!/bin/sh\necho yes\n").unwrap();
        fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
    }
    Run::from(
        common::callseal(&w.data)
            .env("CALLSEAL_TOKEN", &w.admin)
            .env("PATH", &bin)
            .arg("doctor")
            .args(args)
            .output()
            .unwrap(),
    )
}

/// (check, severity, detail, fix) of each row of `doctor --json`.
fn rows(r: &Run) -> Vec<(String, String, String, Option<String>)> {
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["detail"].as_str().unwrap().to_owned(),
                f["fix"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn row(check: &str, severity: &str, detail: &str) -> (String, String, String, Option<String>) {
    (check.into(), severity.into(), detail.into(), None)
}

/// A fresh deployment whose admin acknowledged the agreement (so doctor may read retention).
fn deployment() -> World {
    let w = setup();
    w.run(&w.admin, &["operator", "acknowledge", "--yes"])
        .expect_code(0);
    w
}

const PROMPTS: [&str; 6] = [
    "consent",
    "confirm-yes",
    "confirm-no",
    "withdrawn",
    "survey",
    "thanks",
];

/// A gateway configuration whose prompts folder holds copies of the six built-in prompts.
fn configured_prompts(w: &World) -> (PathBuf, PathBuf) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/prompts");
    let folder = w.dir.path().join("prompts");
    fs::create_dir(&folder).unwrap();
    for name in PROMPTS {
        let file = format!("{name}.wav");
        fs::copy(fixtures.join(&file), folder.join(&file)).unwrap();
    }
    let config = w.dir.path().join("callseal.toml");
    fs::write(
        &config,
        format!("[prompts]\nfolder = \"{}\"\n", folder.display()),
    )
    .unwrap();
    (config, folder)
}

fn write_wav(path: &Path, sample_rate: u32, channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..sample_rate * u32::from(channels) {
        w.write_sample(((i % 40) as i16 - 20) * 500).unwrap();
    }
    w.finalize().unwrap();
}

/// The rows that did not pass.
fn findings(r: &Run) -> Vec<(String, String, String, Option<String>)> {
    rows(r).into_iter().filter(|f| f.1 != "ok").collect()
}

#[test]
fn doctor_on_a_fresh_deployment_passes_every_check() {
    let w = deployment();
    let r = doctor(&w, &["--json"]);
    r.expect_code(0);
    let rows = rows(&r);
    let data = w.data.display();
    let (check, severity, detail, fix) = &rows[0];
    assert_eq!(
        (check.as_str(), severity.as_str(), fix),
        ("file modes", "ok", &None)
    );
    let entries = detail
        .strip_suffix(&format!(" entries under {data} are private"))
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(entries.parse::<u32>().unwrap() > 10, "{detail}");
    assert_eq!(
        rows[1..],
        [
            row("core dumps", "ok", "disabled"),
            row("clock", "ok", "synchronised (timedatectl)"),
            row("outbox", "ok", "empty"),
            row("prompts", "ok", "built-in prompts"),
            row(
                "tls",
                "ok",
                &format!("CA pinned from {data}/escrow/tls/ca.pem")
            ),
            row("escrow", "ok", &format!("reachable at {}", w.escrow.url)),
            row("retention", "ok", "30 days by default, 0 line override(s)"),
        ]
    );
    let human = doctor(&w, &[]);
    human.expect_code(0);
    let prompts: Vec<&str> = human
        .stdout
        .lines()
        .find(|l| l.starts_with("prompts "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(prompts, ["prompts", "ok", "built-in", "prompts"]);
    assert!(!human.stdout.contains("How to fix"), "{}", human.stdout);
}

#[test]
fn doctor_names_each_prompt_in_the_wrong_format_and_how_to_convert_it() {
    let w = deployment();
    let (config, folder) = configured_prompts(&w);
    let config = config.to_str().unwrap();
    let f = folder.display();
    let r = doctor(&w, &["--json", "--config", config]);
    r.expect_code(0);
    assert!(
        rows(&r).contains(&row(
            "prompts",
            "ok",
            &format!("6 prompts in {f}, 8 kHz mono 16-bit")
        )),
        "{}",
        r.stdout
    );

    write_wav(&folder.join("consent.wav"), 22_050, 1);
    write_wav(&folder.join("survey.wav"), 8000, 2);
    fs::write(folder.join("thanks.wav"), "not audio").unwrap();
    let r = doctor(&w, &["--json", "--config", config]);
    r.expect_code(3);
    let fix = |name: &str| {
        format!(
            "convert it to 8 kHz mono 16-bit PCM: `sox {f}/{name}.wav -r 8000 -c 1 -b 16 {f}/{name}.8k.wav && mv {f}/{name}.8k.wav {f}/{name}.wav`, or regenerate all six: `scripts/make-prompts --out {f}`"
        )
    };
    let found = findings(&r);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[..2],
        [
            (
                "prompts".into(),
                "fail".into(),
                format!(
                    "{f}/consent.wav: is 22050 Hz, 1 channel(s), 16 bit; need 8000 Hz mono 16-bit PCM"
                ),
                Some(fix("consent")),
            ),
            (
                "prompts".into(),
                "fail".into(),
                format!(
                    "{f}/survey.wav: is 8000 Hz, 2 channel(s), 16 bit; need 8000 Hz mono 16-bit PCM"
                ),
                Some(fix("survey")),
            ),
        ]
    );
    let (check, severity, detail, hint) = &found[2];
    assert_eq!((check.as_str(), severity.as_str()), ("prompts", "fail"));
    assert!(
        detail.starts_with(&format!("{f}/thanks.wav: not a WAV file")),
        "{detail}"
    );
    assert_eq!(hint.as_deref(), Some(fix("thanks").as_str()));

    let human = doctor(&w, &["--config", config]);
    human
        .expect_code(3)
        .stderr_has("3 problem(s) and 0 warning(s)")
        .stdout_has(&format!("FAIL    {f}/consent.wav: is 22050 Hz"))
        .stdout_has(&format!("\nHow to fix:\n  prompts: {}\n", fix("consent")));
}

#[test]
fn doctor_reports_prompts_missing_from_the_configured_folder() {
    let w = deployment();
    let (config, folder) = configured_prompts(&w);
    let config = config.to_str().unwrap();
    let f = folder.display();
    // The gateway plays the built-in prompt for a missing file: a warning, not a failure.
    fs::remove_file(folder.join("withdrawn.wav")).unwrap();
    fs::remove_file(folder.join("thanks.wav")).unwrap();
    let r = doctor(&w, &["--json", "--config", config]);
    r.expect_code(4);
    assert_eq!(
        findings(&r),
        [(
            "prompts".into(),
            "warn".into(),
            format!(
                "{f} lacks withdrawn.wav, thanks.wav: the gateway plays the built-in prompt instead"
            ),
            Some(format!(
                "add the missing files with `scripts/make-prompts --out {f}` (8 kHz mono 16-bit PCM WAV)"
            )),
        )]
    );
    // A configured folder that is not there at all is a mistake in the configuration.
    fs::remove_dir_all(&folder).unwrap();
    let r = doctor(&w, &["--json", "--config", config]);
    r.expect_code(3);
    assert_eq!(
        findings(&r),
        [(
            "prompts".into(),
            "fail".into(),
            format!(
                "prompts folder {f} does not exist: the gateway would play only the built-in prompts"
            ),
            Some(format!(
                "create it with `scripts/make-prompts --out {f}`, or remove `folder` from [prompts] to use the built-in prompts"
            )),
        )]
    );
}

#[test]
fn doctor_accepts_readable_public_files_but_not_writable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    common::run(&data, &["init"]).expect_code(0);
    let ca = data.join("escrow/tls/ca.pem");
    let modes = |r: &Run| -> Vec<_> {
        rows(r)
            .into_iter()
            .filter(|f| f.0 == "file modes")
            .map(|f| (f.1, f.2, f.3))
            .collect()
    };
    // The pinned CA, the identity's public half and the URL are published on purpose.
    for public in [
        "escrow/tls/ca.pem",
        "escrow/identity.pub",
        "escrow/escrow.url",
    ] {
        fs::set_permissions(data.join(public), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let r = common::run(&data, &["--json", "doctor"]);
    let found = modes(&r);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "ok", "{found:?}");
    // Writable by others, the CA could be swapped for one an attacker controls.
    fs::set_permissions(&ca, fs::Permissions::from_mode(0o666)).unwrap();
    let r = common::run(&data, &["--json", "doctor"]);
    r.expect_code(3);
    assert_eq!(
        modes(&r),
        [(
            "fail".to_owned(),
            format!("{} is writable by other users", ca.display()),
            Some(format!("chmod 644 {}", ca.display())),
        )]
    );
}

#[test]
fn doctor_with_a_config_checks_the_data_folder_the_config_names() {
    let w = deployment();
    doctor(&w, &[]).expect_code(0); // also makes the PATH stub and lowers the core limit
    let config = w.dir.path().join("callseal.toml");
    fs::write(
        &config,
        format!("data_dir = {:?}\n", w.data.display().to_string()),
    )
    .unwrap();
    // No --data: from another folder, the file's data_dir is the deployment, as for `serve`.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_callseal"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CALLSEAL_") {
            cmd.env_remove(k);
        }
    }
    let r = Run::from(
        cmd.current_dir(elsewhere.path())
            .env("CALLSEAL_TOKEN", &w.admin)
            .env("PATH", w.dir.path().join("bin"))
            .args(["--json", "doctor", "-c", config.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    r.expect_code(0);
    let rows = rows(&r);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("file modes", "ok")
    );
    assert!(
        rows[0].2.contains(&w.data.display().to_string()),
        "{:?}",
        rows[0]
    );
}
