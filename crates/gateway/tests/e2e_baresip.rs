//! (5) baresip as a real softphone caller: dials the gateway, presses 1 (RFC 4733), plays a
//! WAV, hangs up. The PBX is sipp. Needs baresip, sipp (root for play_pcap_audio) and sox.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use callseal_testkit::audio::{tone_ratio, wav_tone};
use callseal_testkit::baresip::{Baresip, BaresipPorts};
use callseal_testkit::sipp::{self, SippPorts};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_caller_consents_and_is_recorded() {
    let work = tempfile::tempdir().unwrap();
    let pbx_ports = SippPorts::free();
    let mut env = Env::start(Some(pbx_ports.sip_addr()), |_| {}).await;
    let pbx = spawn_pbx(
        work.path(),
        Some(pbx_stream(work.path(), PBX_HZ, 8000)),
        pbx_ports,
        Duration::from_secs(40),
    );
    let wav = work.path().join("caller.wav");
    wav_tone(&wav, CALLER_HZ, 12.0).unwrap();
    let gw = env.sip();
    let work_path = work.path().to_owned();
    let log = blocking(move || {
        let mut phone = Baresip::start(
            &work_path,
            "softphone",
            &wav,
            BaresipPorts::free(),
            Duration::from_secs(40),
        )
        .unwrap();
        phone
            .command("dial", &format!("sip:counselling@{gw}"))
            .unwrap();
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        phone.command("sndcode", "1").unwrap();
        // Confirmation, PBX set-up, then a few seconds of bridged, recorded audio.
        std::thread::sleep(Duration::from_secs(6));
        phone.command("hangup", "").unwrap();
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .unwrap();
        phone.quit(Duration::from_secs(10)).unwrap()
    })
    .await;
    blocking(move || sipp::expect_success(pbx, Duration::from_secs(10)))
        .await
        .unwrap();
    env.wait_for(Duration::from_secs(10), "the call record", |e| {
        !e.call_records().is_empty()
    })
    .await;
    let rec = env.call_records().remove(0);
    assert_eq!(rec["consent"], "consented", "{rec}\nbaresip log:\n{log}");
    let id = record_recording(&rec).unwrap();
    env.wait_for(Duration::from_secs(10), "the deposit", |e| {
        e.outbox_depth() == 0
    })
    .await;
    let wav = env.export(&id).unwrap();
    assert!(
        tone_ratio(&wav.channels[0], f64::from(CALLER_HZ), f64::from(PBX_HZ)) > 20.0,
        "caller (left) is baresip's WAV"
    );
    assert!(
        tone_ratio(&wav.channels[1], f64::from(PBX_HZ), f64::from(CALLER_HZ)) > 20.0,
        "consultant (right) is the PBX's"
    );
    env.stop().await;
}
