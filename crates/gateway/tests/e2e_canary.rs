//! (7) Canary: after a recorded call from a known number carrying known audio, neither the
//! number nor any 40-byte run of that audio (as sent, μ-law, or decoded to 16-bit PCM) is in
//! any file of the data folder, in the gateway's log, or in the temporary folder.
//! Its own test binary, so the log captured here (debug level) holds only this call.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callseal_testkit::canary::{files_containing, files_containing_since};
use callseal_testkit::sipp::{self, Caller, SippPorts};
use common::*;

const NUMBER: &str = "+4930901820731";
/// A frequency no other test uses, so its μ-law bytes appear nowhere else in the temp folder.
const MARKER_HZ: u32 = 523;

#[derive(Clone)]
struct LogFile(Arc<Mutex<std::fs::File>>);

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_caller_number_or_audio_reaches_disk_or_logs() {
    // Peer inputs (pcaps, sipp scenarios and logs hold the number and audio by design) live
    // outside the scanned folders.
    let inputs = tempfile::Builder::new()
        .prefix("canary-inputs")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("gateway.log");
    let file = LogFile(Arc::new(Mutex::new(
        std::fs::File::create(&log_path).unwrap(),
    )));
    let _ = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || file.clone())
        .with_ansi(false)
        .try_init();

    let started = std::time::SystemTime::now() - Duration::from_secs(2);
    let pbx_ports = SippPorts::free();
    let mut env = Env::start(Some(pbx_ports.sip_addr()), |_| {}).await;
    let pbx = spawn_pbx(
        inputs.path(),
        Some(pbx_stream(inputs.path(), PBX_HZ, 6000)),
        pbx_ports,
        Duration::from_secs(40),
    );
    let (pcap, pcap_ms) = caller_stream(inputs.path(), MARKER_HZ, 600, "1", 5000);
    let mut caller = Caller::new(NUMBER, "counselling", pcap_ms + 300);
    caller.pcap = Some(pcap);
    let uac = spawn_caller(inputs.path(), &caller, env.sip(), Duration::from_secs(40));
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
    let id = record_recording(&env.call_records()[0]).expect("the call was recorded");
    env.wait_for(Duration::from_secs(10), "the deposit", |e| {
        e.outbox_depth() == 0
    })
    .await;
    env.stop().await;

    // The recording really holds the marker audio (else the scan proves nothing).
    let wav = env.export(&id).unwrap();
    assert!(
        callseal_testkit::audio::tone_ratio(
            &wav.channels[0],
            f64::from(MARKER_HZ),
            f64::from(PBX_HZ)
        ) > 20.0
    );
    std::fs::remove_file(env.dir.path().join(format!("{id}.wav"))).unwrap();

    let ulaw = std::fs::read(inputs.path().join(format!("caller-{MARKER_HZ}.ulaw"))).unwrap();
    let window = &ulaw[8000..8040];
    let pcm: Vec<u8> = window
        .iter()
        .flat_map(|&b| callseal_testkit::audio::ulaw_decode(b).to_le_bytes())
        .collect();
    let needles: [&[u8]; 3] = [NUMBER.as_bytes(), window, &pcm[..40]];
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("recording started"),
        "the log was captured: {} bytes",
        log.len()
    );
    let tmp = std::env::temp_dir();
    let mut hits = files_containing(&[&env.data, &log_path], &needles);
    hits.extend(files_containing_since(&[&tmp], &needles, Some(started)));
    let hits: Vec<_> = hits
        .into_iter()
        .filter(|(p, _)| !p.starts_with(inputs.path()))
        .collect();
    assert!(hits.is_empty(), "found the canary in: {hits:?}");
}
