//! Over the wire: sipp (Debian `sip-tester`) places 5 calls to the `uas` example on 127.0.0.1
//! (INVITE → 200 → ACK, BYE → 200). sipp must exit 0 (every call succeeded) and the example
//! must count 5 completed calls and 5 ACKs. Bounded in time: sipp's own `-timeout`, a wait
//! limit that kills it, and the example's time limit.

#[allow(dead_code)]
#[path = "../examples/uas.rs"]
mod uas;

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use callseal_testkit::sipp::{Caller, SippPorts};
use callseal_testkit::{Peer, require_tool};

const CALLS: usize = 5;

#[test]
fn sipp_completes_five_calls_against_the_uas_example() {
    let sipp = require_tool("sipp", "sip-tester").unwrap_or_else(|e| {
        panic!("sipp is not on PATH; install it with `apt-get install sip-tester` ({e})")
    });

    // A free loopback port: bind to port 0 and keep the socket.
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let uas_addr = std_socket.local_addr().expect("local address");
    std_socket
        .set_nonblocking(true)
        .expect("non-blocking socket");
    let (done_tx, done_rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let report = rt.block_on(async move {
            let socket = tokio::net::UdpSocket::from_std(std_socket)?;
            uas::serve(socket, CALLS, Duration::from_secs(30)).await
        });
        let _ = done_tx.send(report);
    });

    let dir = tempfile::tempdir().expect("temporary directory");
    let scenario = dir.path().join("uac.xml");
    std::fs::write(&scenario, Caller::new("alice", "line", 100).scenario())
        .expect("write the scenario");
    let ports = SippPorts::free();
    let mut cmd = Command::new(sipp);
    cmd.arg(uas_addr.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args([
            "-p",
            &ports.sip.to_string(),
            "-mp",
            &ports.media.to_string(),
        ])
        .args(["-m", &CALLS.to_string(), "-r", "10"])
        .args(["-nostdin", "-trace_err"])
        .args(["-timeout", "20s", "-timeout_error"]);
    // Killed when dropped, whatever happens below.
    let peer = Peer::spawn("sipp-uac", cmd, dir.path()).expect("start sipp");
    let finished = peer
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("sipp did not finish: {e}"));
    assert_eq!(
        finished.code(),
        Some(0),
        "sipp failed (0 = all calls succeeded); its log:\n{}",
        finished.log
    );

    let report = done_rx
        .recv_timeout(Duration::from_secs(35))
        .expect("the UAS example stops by itself")
        .expect("the UAS example's socket works");
    server.join().expect("the UAS thread ends");
    assert_eq!(
        report,
        uas::Report {
            completed: CALLS,
            acks: CALLS,
            timed_out: false,
        },
        "sipp log:\n{}",
        finished.log
    );
}
