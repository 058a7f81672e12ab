//! End to end with sipp on loopback: a caller and a PBX, real SIP and RTP through the gateway,
//! the escrow in process. Needs sipp (Debian sip-tester) and sox; play_pcap_audio needs root.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use callseal_testkit::audio::tone_ratio;
use callseal_testkit::sipp::{self, Caller, SippPorts};
use common::*;

/// (1) The milestone: consent with digit 1, both directions sealed, decoded by frequency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consenting_caller_is_recorded_in_stereo_caller_left_pbx_right() {
    let work = tempfile::tempdir().unwrap();
    let pbx_ports = SippPorts::free();
    let mut env = Env::start(Some(pbx_ports.sip_addr()), |_| {}).await;
    let pbx_pcap = pbx_stream(work.path(), PBX_HZ, 8000);
    let pbx = spawn_pbx(
        work.path(),
        Some(pbx_pcap),
        pbx_ports,
        Duration::from_secs(40),
    );
    let (pcap, pcap_ms) = caller_stream(work.path(), CALLER_HZ, 600, "1", 7000);
    let mut caller = Caller::new("+15550100", "counselling", pcap_ms + 300);
    caller.pcap = Some(pcap);
    let uac = spawn_caller(work.path(), &caller, env.sip(), Duration::from_secs(40));
    blocking(move || sipp::expect_success(uac, Duration::from_secs(45)))
        .await
        .unwrap();
    blocking(move || sipp::expect_success(pbx, Duration::from_secs(10)))
        .await
        .unwrap();

    env.wait_for(Duration::from_secs(10), "the call record", |e| {
        !e.call_records().is_empty()
    })
    .await;
    let rec = env.call_records().remove(0);
    assert_eq!(rec["consent"], "consented", "{rec}");
    assert_eq!(rec["pbx_reached"], true, "{rec}");
    assert!(rec["caller"].as_str().unwrap().starts_with("C-"), "{rec}");
    let id = record_recording(&rec).expect("a recording id in the call record");
    env.wait_for(Duration::from_secs(10), "the deposit", |e| {
        e.outbox_depth() == 0
    })
    .await;

    let info = env.service.recording(&env.admin, &id).unwrap();
    let consent = info.consent.expect("consent evidence deposited");
    assert_eq!(consent.digit, Some('1'));
    assert!(
        consent.signature.is_some(),
        "evidence signed by the gateway"
    );
    assert!(info.ended_at.is_some(), "end of the recording delivered");

    let wav = env.export(&id).unwrap();
    assert_eq!(wav.channels.len(), 2);
    let (left, right) = (&wav.channels[0], &wav.channels[1]);
    assert!(
        left.len() > 8000 * 3,
        "at least 3 s recorded, got {} samples",
        left.len()
    );
    let l = tone_ratio(left, f64::from(CALLER_HZ), f64::from(PBX_HZ));
    let r = tone_ratio(right, f64::from(PBX_HZ), f64::from(CALLER_HZ));
    assert!(
        l > 20.0,
        "left channel should carry the caller's {CALLER_HZ} Hz (ratio {l:.2})"
    );
    assert!(
        r > 20.0,
        "right channel should carry the PBX's {PBX_HZ} Hz (ratio {r:.2})"
    );
    env.stop().await;
}

/// (2) Digit 2: the caller is connected to the PBX, nothing is recorded, the record says declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_caller_reaches_the_pbx_and_nothing_is_recorded() {
    let work = tempfile::tempdir().unwrap();
    let pbx_ports = SippPorts::free();
    let mut env = Env::start(Some(pbx_ports.sip_addr()), |_| {}).await;
    let pbx = spawn_pbx(
        work.path(),
        Some(pbx_stream(work.path(), PBX_HZ, 4000)),
        pbx_ports,
        Duration::from_secs(30),
    );
    let (pcap, pcap_ms) = caller_stream(work.path(), CALLER_HZ, 600, "2", 4000);
    let mut caller = Caller::new("+15550101", "counselling", pcap_ms + 300);
    caller.pcap = Some(pcap);
    let uac = spawn_caller(work.path(), &caller, env.sip(), Duration::from_secs(30));
    blocking(move || sipp::expect_success(uac, Duration::from_secs(35)))
        .await
        .unwrap();
    // The PBX answered and got a BYE: it was reached.
    blocking(move || sipp::expect_success(pbx, Duration::from_secs(10)))
        .await
        .unwrap();
    env.wait_for(Duration::from_secs(10), "the call record", |e| {
        !e.call_records().is_empty()
    })
    .await;
    let rec = env.call_records().remove(0);
    assert_eq!(rec["consent"], "declined", "{rec}");
    assert_eq!(rec["pbx_reached"], true, "{rec}");
    assert!(rec["recording"].is_null(), "{rec}");
    assert!(
        env.recordings().is_empty(),
        "no sealed file: {:?}",
        env.recordings()
    );
    env.stop().await;
}

/// (3) Hang-up during the prompt: no recording, and the PBX never sees an INVITE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_up_during_the_prompt_never_calls_the_pbx() {
    let work = tempfile::tempdir().unwrap();
    // A plain socket where the PBX would be: anything arriving there is a failure.
    let pbx_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    pbx_sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut env = Env::start(Some(pbx_sock.local_addr().unwrap()), |_| {}).await;
    let caller = Caller::new("+15550102", "counselling", 1000);
    let uac = spawn_caller(work.path(), &caller, env.sip(), Duration::from_secs(20));
    blocking(move || sipp::expect_success(uac, Duration::from_secs(25)))
        .await
        .unwrap();
    env.wait_for(Duration::from_secs(10), "the call record", |e| {
        !e.call_records().is_empty()
    })
    .await;
    let rec = env.call_records().remove(0);
    assert_eq!(rec["consent"], "hung-up", "{rec}");
    assert_eq!(rec["pbx_reached"], false, "{rec}");
    assert!(env.recordings().is_empty());
    let mut buf = [0u8; 2048];
    assert!(
        pbx_sock.recv_from(&mut buf).is_err(),
        "the PBX address received: {:?}",
        String::from_utf8_lossy(&buf)
    );
    env.stop().await;
}

/// (4) Withdrawal mid-call: the recording is erased; releasing its key fails with `erased`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_mid_call_erases_the_recording() {
    let work = tempfile::tempdir().unwrap();
    let pbx_ports = SippPorts::free();
    let mut env = Env::start(Some(pbx_ports.sip_addr()), |_| {}).await;
    let pbx = spawn_pbx(
        work.path(),
        Some(pbx_stream(work.path(), PBX_HZ, 8000)),
        pbx_ports,
        Duration::from_secs(40),
    );
    // Consent, 3 s of call, then the withdraw code *9, then 2 s more.
    let tone =
        callseal_testkit::audio::ulaw_tone(&work.path().join("c.ulaw"), CALLER_HZ, 10.0).unwrap();
    let mut s = callseal_testkit::pcap::RtpStream::new(0x0bad_cafe, 0, 101);
    s.audio(&tone[..4800]);
    s.digit('1', 100).unwrap();
    s.audio(&tone[..24_000]);
    s.digits("*9", 100, 150).unwrap();
    s.audio(&tone[..16_000]);
    let pcap = work.path().join("withdraw.pcap");
    s.write_pcap(&pcap).unwrap();
    let mut caller = Caller::new("+15550103", "counselling", s.duration_ms() + 300);
    caller.pcap = Some(pcap);
    let uac = spawn_caller(work.path(), &caller, env.sip(), Duration::from_secs(40));
    blocking(move || sipp::expect_success(uac, Duration::from_secs(45)))
        .await
        .unwrap();
    blocking(move || sipp::expect_success(pbx, Duration::from_secs(10)))
        .await
        .unwrap();
    env.wait_for(Duration::from_secs(10), "the call record", |e| {
        !e.call_records().is_empty()
    })
    .await;
    let rec = env.call_records().remove(0);
    assert_eq!(rec["consent"], "withdrawn", "{rec}");
    let id = record_recording(&rec).expect("the withdrawn recording's id");
    env.wait_for(Duration::from_secs(10), "the erasure", |e| {
        e.outbox_depth() == 0
    })
    .await;
    assert!(
        env.recordings().is_empty(),
        "ciphertext removed too: {:?}",
        env.recordings()
    );
    let err = env.export(&id).unwrap_err();
    assert!(
        err.starts_with("Erased"),
        "releasing a withdrawn recording's key must fail with erased: {err}"
    );
    env.stop().await;
}

/// Graceful shutdown with a call in progress: both sides get a BYE, the recording is finished
/// (it reads to its end, no `truncated`), the end reaches the escrow and the call is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_call_hangs_up_both_sides_and_finalises_the_recording() {
    let work = tempfile::tempdir().unwrap();
    let pbx_ports = SippPorts::free();
    let mut env = Env::start(Some(pbx_ports.sip_addr()), |_| {}).await;
    let pbx = spawn_pbx(
        work.path(),
        Some(pbx_stream(work.path(), PBX_HZ, 20_000)),
        pbx_ports,
        Duration::from_secs(60),
    );
    let (pcap, pcap_ms) = caller_stream(work.path(), CALLER_HZ, 600, "1", 20_000);
    let mut caller = Caller::new("+15550104", "counselling", pcap_ms);
    caller.pcap = Some(pcap);
    caller.expect_bye = true;
    let uac = spawn_caller(work.path(), &caller, env.sip(), Duration::from_secs(60));
    // Recording for a while, then the gateway is stopped under the call.
    env.wait_for(Duration::from_secs(20), "the recording to start", |e| {
        !e.recordings().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(env.call_records().is_empty(), "the call is still up");
    let gateway = env.gateway.take().unwrap();
    gateway.shutdown(Duration::from_secs(5)).await;

    blocking(move || sipp::expect_success(uac, Duration::from_secs(20)))
        .await
        .expect("the caller got a BYE and answered it");
    blocking(move || sipp::expect_success(pbx, Duration::from_secs(20)))
        .await
        .expect("the PBX got a BYE and answered it");
    let records = env.call_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["consent"], "consented", "{}", records[0]);
    let id = record_recording(&records[0]).expect("a recording id");
    let info = env.service.recording(&env.admin, &id).unwrap();
    assert!(
        info.ended_at.is_some(),
        "the end of the recording reached the escrow before the gateway stopped"
    );
    let wav = env
        .export(&id)
        .expect("the recording reads to its final segment");
    let left = &wav.channels[0];
    assert!(
        left.len() > 8000 * 2,
        "the call up to the shutdown is kept: {} samples",
        left.len()
    );
    assert!(tone_ratio(left, f64::from(CALLER_HZ), f64::from(PBX_HZ)) > 20.0);
}
