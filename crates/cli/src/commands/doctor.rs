//! `callseal doctor`: checks a deployment and says how to fix each finding.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use callseal_escrow::DataDir;
use callseal_gateway::prompts::{PromptName, decode};
use callseal_gateway::{Config, GatewayError};
use serde::Serialize;

use crate::error::CliError;
use crate::output::{Table, print_json};

/// How bad a finding is. Failures exit 3, warnings alone exit 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Fail,
}

/// One check's result and, unless it passed, how to fix it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Prints the findings and turns them into the command's outcome.
pub fn conclude(findings: &[Finding], json: bool) -> Result<(), CliError> {
    if json {
        print_json(findings)?;
    } else {
        let mut t = Table::new(&["CHECK", "RESULT", "DETAIL"]);
        for f in findings {
            let result = match f.severity {
                Severity::Ok => "ok",
                Severity::Warn => "WARN",
                Severity::Fail => "FAIL",
            };
            t.row(vec![
                f.check.to_owned(),
                result.to_owned(),
                f.detail.clone(),
            ]);
        }
        print!("{}", t.render());
        let fixes: Vec<&Finding> = findings.iter().filter(|f| f.fix.is_some()).collect();
        if !fixes.is_empty() {
            println!("\nHow to fix:");
            for f in fixes {
                if let Some(fix) = &f.fix {
                    println!("  {}: {}", f.check, fix);
                }
            }
        }
    }
    let failures = findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warn)
        .count();
    if failures + warnings > 0 {
        return Err(CliError::DoctorFindings { failures, warnings });
    }
    Ok(())
}

/// File modes under the data folder: secrets and data 0600, folders 0700; the escrow's public
/// files (identity.pub, escrow.url, tls/ca.pem, tls/server.pem) may be readable, not writable.
pub fn check_file_modes(data: &Path, out: &mut Vec<Finding>) {
    const CHECK: &str = "file modes";
    if !data.is_dir() {
        out.push(Finding::fail(
            "data folder",
            format!("{} does not exist", data.display()),
            format!("run `callseal --data {} init`", data.display()),
        ));
        return;
    }
    // Published on purpose (gateways and operators pin them): readable is fine, writable is not.
    let escrow = DataDir::new(data);
    let tls = escrow.tls();
    let public = [
        escrow.identity_pub(),
        escrow.url_file(),
        tls.ca_cert,
        tls.server_cert,
    ];
    let mut loose_dirs = Vec::new();
    let mut loose_files = Vec::new();
    let mut writable_public = Vec::new();
    let mut readable_recordings = 0usize;
    let mut stack = vec![data.to_owned()];
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            loose_dirs.push(dir.clone());
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            out.push(Finding::fail(
                CHECK,
                format!("cannot read {}", dir.display()),
                "run doctor as the user that runs callseal",
            ));
            continue;
        };
        for e in entries.flatten() {
            visited += 1;
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && m.permissions().mode() & 0o077 != 0 {
                if public.contains(&p) {
                    if m.permissions().mode() & 0o022 != 0 {
                        writable_public.push(p);
                    }
                // Sealed recordings are ciphertext: readable by others is a warning, not a leak.
                } else if p.extension().is_some_and(|x| x == "csrec") {
                    readable_recordings += 1;
                } else {
                    loose_files.push(p);
                }
            }
        }
    }
    for d in &loose_dirs {
        out.push(Finding::fail(
            CHECK,
            format!("{} is accessible to other users", d.display()),
            format!("chmod 700 {}", d.display()),
        ));
    }
    for f in &loose_files {
        out.push(Finding::fail(
            CHECK,
            format!("{} is accessible to other users", f.display()),
            format!("chmod 600 {}", f.display()),
        ));
    }
    for f in &writable_public {
        out.push(Finding::fail(
            CHECK,
            format!("{} is writable by other users", f.display()),
            format!("chmod 644 {}", f.display()),
        ));
    }
    if readable_recordings > 0 {
        out.push(Finding::warn(
            CHECK,
            format!("{readable_recordings} sealed recording(s) readable by other users (ciphertext, but sizes and times leak)"),
            format!("chmod 600 {}/recordings/*.csrec", data.display()),
        ));
    }
    if loose_dirs.is_empty()
        && loose_files.is_empty()
        && writable_public.is_empty()
        && readable_recordings == 0
    {
        out.push(Finding::ok(
            CHECK,
            format!("{visited} entries under {} are private", data.display()),
        ));
    }
}

/// Core dumps: this process disabled them; the environment may not have.
pub fn check_core_dumps(enabled_in_environment: bool, out: &mut Vec<Finding>) {
    const CHECK: &str = "core dumps";
    let hardened = rustix::process::dumpable_behavior()
        .is_ok_and(|b| b == rustix::process::DumpableBehavior::NotDumpable)
        && rustix::process::getrlimit(rustix::process::Resource::Core).current == Some(0);
    if !hardened {
        out.push(Finding::fail(
            CHECK,
            "this kernel refused to disable core dumps for callseal",
            "run callseal with `ulimit -c 0` and LimitCORE=0 in its systemd unit",
        ));
    } else if enabled_in_environment {
        out.push(Finding::warn(
            CHECK,
            "enabled in this environment (callseal turns them off for itself at start)",
            "set `ulimit -c 0` in the service environment or LimitCORE=0 in the systemd unit",
        ));
    } else {
        out.push(Finding::ok(CHECK, "disabled"));
    }
}

/// Clock synchronisation, from timedatectl where systemd is present, else chrony.
pub fn check_clock(out: &mut Vec<Finding>) {
    const CHECK: &str = "clock";
    let fix = "enable NTP: `timedatectl set-ntp true` or install chrony; a drifting clock shreds early or late, and a forward jump of more than 5 minutes suspends shredding until an admin confirms the clock";
    if let Ok(o) = Command::new("timedatectl")
        .args(["show", "--property=NTPSynchronized", "--value"])
        .output()
        && o.status.success()
    {
        match String::from_utf8_lossy(&o.stdout).trim() {
            "yes" => out.push(Finding::ok(CHECK, "synchronised (timedatectl)")),
            "no" => out.push(Finding::fail(CHECK, "not synchronised (timedatectl)", fix)),
            other => out.push(Finding::warn(
                CHECK,
                format!("timedatectl answered \"{other}\""),
                fix,
            )),
        }
        return;
    }
    if let Ok(o) = Command::new("chronyc").arg("tracking").output()
        && o.status.success()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        if text
            .lines()
            .any(|l| l.starts_with("Leap status") && l.contains("Normal"))
        {
            out.push(Finding::ok(CHECK, "synchronised (chronyc)"));
        } else {
            out.push(Finding::fail(CHECK, "not synchronised (chronyc)", fix));
        }
        return;
    }
    out.push(Finding::warn(
        CHECK,
        "cannot tell: neither timedatectl nor chronyc answered",
        fix,
    ));
}

/// Sealed key deposits waiting in the gateway's outbox for the escrow.
pub fn check_outbox(data: &Path, out: &mut Vec<Finding>) {
    const CHECK: &str = "outbox";
    let dir = data.join("gateway").join("outbox");
    let waiting = match fs::read_dir(&dir) {
        Ok(entries) => entries.flatten().filter(|e| e.path().is_file()).count(),
        Err(_) => 0,
    };
    if waiting == 0 {
        out.push(Finding::ok(CHECK, "empty"));
    } else {
        out.push(Finding::warn(
            CHECK,
            format!("{waiting} key deposit(s) waiting for the escrow"),
            "make sure the escrow is running and reachable from the gateway; they are delivered automatically",
        ));
    }
}

/// The prompts the gateway will play, found the way the gateway finds them: the configured
/// folder's `NAME.wav` files, each missing one replaced by the built-in prompt.
pub fn check_prompts(config: Option<&Path>, out: &mut Vec<Finding>) {
    const CHECK: &str = "prompts";
    let folder = match config.map(Config::from_file).transpose() {
        Ok(c) => c.and_then(|c| c.prompts.folder),
        Err(e) => {
            out.push(Finding::fail(
                CHECK,
                format!("cannot tell which prompts play: {e}"),
                "fix the configuration file; `callseal gateway --config FILE` refuses it too",
            ));
            return;
        }
    };
    let Some(folder) = folder else {
        out.push(Finding::ok(CHECK, "built-in prompts"));
        return;
    };
    let regenerate = format!("scripts/make-prompts --out {}", folder.display());
    if !folder.is_dir() {
        out.push(Finding::fail(
            CHECK,
            format!(
                "prompts folder {} does not exist: the gateway would play only the built-in prompts",
                folder.display()
            ),
            format!(
                "create it with `{regenerate}`, or remove `folder` from [prompts] to use the built-in prompts"
            ),
        ));
        return;
    }
    let mut missing = Vec::new();
    let mut wrong = 0usize;
    for name in PromptName::ALL {
        let file = format!("{}.wav", name.file_stem());
        let path = folder.join(&file);
        if !path.exists() {
            missing.push(file);
            continue;
        }
        // The gateway's own loader: what it refuses at start is what doctor reports.
        let reason = match fs::read(&path) {
            Ok(bytes) => match decode(name, &bytes, true) {
                Ok(_) => continue,
                Err(GatewayError::Prompt { reason, .. }) => reason,
                Err(other) => other.to_string(),
            },
            Err(e) => format!("cannot read: {e}"),
        };
        wrong += 1;
        let converted = folder.join(format!("{}.8k.wav", name.file_stem()));
        out.push(Finding::fail(
            CHECK,
            format!("{}: {reason}", path.display()),
            format!(
                "convert it to 8 kHz mono 16-bit PCM: `sox {p} -r 8000 -c 1 -b 16 {c} && mv {c} {p}`, or regenerate all six: `{regenerate}`",
                p = path.display(),
                c = converted.display(),
            ),
        ));
    }
    if !missing.is_empty() {
        out.push(Finding::warn(
            CHECK,
            format!(
                "{} lacks {}: the gateway plays the built-in prompt instead",
                folder.display(),
                missing.join(", ")
            ),
            format!("add the missing files with `{regenerate}` (8 kHz mono 16-bit PCM WAV)"),
        ));
    }
    if missing.is_empty() && wrong == 0 {
        out.push(Finding::ok(
            CHECK,
            format!(
                "{} prompts in {}, 8 kHz mono 16-bit",
                PromptName::ALL.len(),
                folder.display()
            ),
        ));
    }
}
