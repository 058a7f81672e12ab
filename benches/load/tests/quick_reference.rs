//! The harness end to end: `--quick` brings up rtpengine and Kamailio on loopback, then the
//! callseal gateway, sets up 100 calls through each, streams media and must report measured
//! figures with exit status 0. Needs Debian `kamailio` and `rtpengine-daemon` (without them the
//! harness fails naming the package to install) and the workspace's debug `callseal` binary.

use std::net::UdpSocket;
use std::process::Command;

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    s.local_addr().expect("local address").port()
}

/// The `callseal` binary cargo built beside this harness (the workspace's test build).
fn callseal_bin() -> std::path::PathBuf {
    let harness = std::path::Path::new(env!("CARGO_BIN_EXE_callseal-loadbench"));
    harness.with_file_name("callseal")
}

/// The result row of `system` (one run of 100 calls, 200 streams, measured) and its loss %.
fn measured_row<'a>(stdout: &'a str, system: &str) -> (&'a str, f64) {
    let row = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(system) && l.trim_end().ends_with("1/1"))
        .unwrap_or_else(|| panic!("no measured {system} row in:\n{stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.get(1..3), Some(&["100", "200"][..]), "{row}");
    let loss = cells
        .get(3)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("loss cell in {row}"));
    (row, loss)
}

#[test]
fn quick_run_measures_the_reference_and_the_gateway_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_callseal-loadbench"))
        .args(["--quick", "--systems", "direct,reference,callseal"])
        .args(["--require-callseal", "--callseal-bin"])
        .arg(callseal_bin())
        .args(["--sip", &format!("127.0.0.1:{}", free_port())])
        .args(["--ng-port", &free_port().to_string()])
        .output()
        .expect("run callseal-loadbench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // system calls streams loss p50 p99 cpu ...
    let (row, loss) = measured_row(&stdout, "reference");
    assert!(
        loss < 5.0,
        "the reference lost {loss} % on an idle loopback: {row}"
    );
    let cpu: f64 = row
        .split_whitespace()
        .nth(6)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0.0);
    assert!(cpu > 0.0, "no CPU measured for the reference: {row}");
    // The gateway, in the same run: every call set up through the consent flow (digit 1),
    // recorded, and carrying media both ways.
    let progress = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("callseal ") && l.contains("rep 1"))
        .unwrap_or_else(|| panic!("no callseal progress line in:\n{stdout}"));
    assert!(progress.contains("100 recordings"), "{progress}");
    let (row, loss) = measured_row(&stdout, "callseal");
    // A debug build of the gateway on a shared CI core: generous, but media must flow.
    assert!(
        loss < 20.0,
        "callseal lost {loss} % on an idle loopback: {row}"
    );
    assert!(
        stdout.contains("Differences under ~15 % are noise"),
        "{stdout}"
    );
    assert!(stdout.contains("Targets:"), "{stdout}");
}

#[test]
fn a_missing_callseal_binary_is_a_clear_failure_when_required() {
    let out = Command::new(env!("CARGO_BIN_EXE_callseal-loadbench"))
        .args([
            "--quick",
            "--systems",
            "callseal",
            "--require-callseal",
            "--callseal-bin",
            "/nonexistent/callseal",
        ])
        .output()
        .expect("run callseal-loadbench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/callseal does not exist")
            && stderr.contains("cargo build --release -p callseal-cli"),
        "{stderr}"
    );
}
