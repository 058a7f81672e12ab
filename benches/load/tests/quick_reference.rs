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
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("reference") && l.trim_end().ends_with("1/1"))
        .unwrap_or_else(|| panic!("no measured reference row in:\n{stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    // system calls streams loss p50 p99 cpu ...
    assert_eq!(&cells[1..3], &["100", "200"], "{row}");
    let loss: f64 = cells[3]
        .parse()
        .unwrap_or_else(|_| panic!("loss cell in {row}"));
    assert!(
        loss < 5.0,
        "the reference lost {loss} % on an idle loopback: {row}"
    );
    let cpu: f64 = cells[6]
        .parse()
        .unwrap_or_else(|_| panic!("CPU cell in {row}"));
    assert!(cpu > 0.0, "no CPU measured for the reference: {row}");
    // The gateway, in the same run: every call set up through the consent flow (digit 1),
    // recorded, and carrying media both ways.
    let progress = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("callseal ") && l.contains("rep 1"))
        .unwrap_or_else(|| panic!("no callseal progress line in:\n{stdout}"));
    assert!(progress.contains("100 recordings"), "{progress}");
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("callseal ") && l.trim_end().ends_with("1/1"))
        .unwrap_or_else(|| panic!("no measured callseal row in:\n{stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..3], &["100", "200"], "{row}");
    let loss: f64 = cells[3]
        .parse()
        .unwrap_or_else(|_| panic!("loss cell in {row}"));
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
