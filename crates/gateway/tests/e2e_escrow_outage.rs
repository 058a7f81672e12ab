//! (6) The escrow is stopped during a call: the call is still recorded, the deposit waits in
//! the durable outbox, and the key is delivered when the escrow returns. The gateway talks to
//! the escrow over its real HTTPS API here (pinned CA, gateway token).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callseal_escrow::server::{Server, ServerConfig};
use callseal_escrow::{DataDir, Service};
use callseal_gateway::escrow::{EscrowApi, Link};
use callseal_testkit::audio::tone_ratio;
use callseal_testkit::sipp::{self, Caller, SippPorts};
use common::*;
use tokio::sync::oneshot;

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(service: Arc<Service>, data: &Path, listen: SocketAddr) -> (SocketAddr, Running) {
    let server = Server::bind(
        service,
        &DataDir::new(data),
        &ServerConfig {
            listen,
            tick: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let (stop, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        server
            .run(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (addr, Running { stop, task })
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escrow_outage_during_a_call_still_records_and_delivers_the_key_later() {
    let work = tempfile::tempdir().unwrap();
    let pbx_ports = SippPorts::free();
    let slot: Arc<std::sync::Mutex<Option<(SocketAddr, Running)>>> = Arc::default();
    let slot2 = slot.clone();
    let mut env = Env::start_with(
        Some(pbx_ports.sip_addr()),
        |_| {},
        move |data, service, _| {
            let (addr, running) = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(serve(
                    service.clone(),
                    data,
                    "127.0.0.1:0".parse().unwrap(),
                ))
            });
            let dir = DataDir::new(data);
            let token = std::fs::read_to_string(dir.gateway_token()).unwrap();
            let client =
                callseal_escrow::client::EscrowClient::new(callseal_escrow::client::ClientConfig {
                    url: format!("https://{addr}"),
                    ca_pem: std::fs::read(dir.tls().ca_cert).unwrap(),
                    token: Some(zeroize::Zeroizing::new(token.trim().to_owned())),
                    timeout: Duration::from_secs(2),
                })
                .unwrap();
            *slot2.lock().unwrap() = Some((addr, running));
            Arc::new(Link(client)) as Arc<dyn EscrowApi>
        },
    )
    .await;
    let (addr, running) = slot.lock().unwrap().take().unwrap();
    assert!(
        env.gateway.as_ref().unwrap().epochs.is_ready(),
        "epoch table fetched over HTTPS at start"
    );

    // The escrow goes down before the call.
    running.stop().await;
    let pbx = spawn_pbx(
        work.path(),
        Some(pbx_stream(work.path(), PBX_HZ, 6000)),
        pbx_ports,
        Duration::from_secs(40),
    );
    let (pcap, pcap_ms) = caller_stream(work.path(), CALLER_HZ, 600, "1", 5000);
    let mut caller = Caller::new("+15550106", "counselling", pcap_ms + 300);
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
    let id =
        record_recording(&env.call_records()[0]).expect("recorded although the escrow is down");
    assert!(env.recording_path(&id).exists());
    assert!(env.outbox_depth() > 0, "the deposit waits in the outbox");
    assert!(
        env.service.recording(&env.admin, &id).is_err(),
        "the escrow has not seen it yet"
    );
    let errors = env
        .gateway
        .as_ref()
        .unwrap()
        .metrics
        .escrow_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(errors > 0, "failed deliveries are counted");

    // The escrow returns on the same address: the outbox delivers.
    let (_, running) = serve(env.service.clone(), &env.data, addr).await;
    env.wait_for(Duration::from_secs(20), "the outbox to drain", |e| {
        e.outbox_depth() == 0
    })
    .await;
    let info = env.service.recording(&env.admin, &id).unwrap();
    assert_eq!(info.consent.unwrap().digit, Some('1'));
    let wav = env.export(&id).unwrap();
    assert!(tone_ratio(&wav.channels[0], f64::from(CALLER_HZ), f64::from(PBX_HZ)) > 20.0);
    assert!(tone_ratio(&wav.channels[1], f64::from(PBX_HZ), f64::from(CALLER_HZ)) > 20.0);
    env.stop().await;
    running.stop().await;
}
