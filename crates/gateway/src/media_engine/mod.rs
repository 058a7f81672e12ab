//! The media engine: a few OS threads, each owning many calls' `MediaSession`s, their RTP/RTCP
//! sockets and their recorders.
//!
//! A relayed packet costs a receive, a send and a wake-up in the kernel (~10 µs on loopback);
//! the media core's own work is under 0.1 µs. With one tokio task per call, every packet also
//! paid for a task wake-up through the runtime's I/O driver and a poll of a six-branch
//! `select!`. Here a worker thread waits on one level-triggered epoll set holding every
//! socket of its calls plus an eventfd for commands; each readiness event is one `recv_from`,
//! and one wake-up serves every packet that arrived meanwhile. Per-call deadlines (prompt
//! pacing, media timeouts, the recorder's seal check) sit in one heap per worker.
//!
//! This file is the API the signalling loop uses ([`MediaEngine`], [`MediaHandle`],
//! [`MediaCmd`], [`MediaReport`]); `worker` is the thread loop, `deadlines` its timer heap,
//! `closer` the thread that finishes recordings (a wait for the disk) off the packet path.
//! Every decision — latching, PT rewriting, prompt pacing, digit detection — is the media
//! core's; this module only moves bytes and time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use callseal_media::{LegConfig, LegStats, MediaEvent, Playback, SessionConfig, StreamInit};
use tokio::sync::{mpsc, oneshot};

use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::ports::RtpPair;
use crate::recorder::Recorder;
use callseal_media::RecordingSink;

mod closer;
mod deadlines;
mod priority;
mod worker;

pub use callseal_media::Leg;

/// What the signalling loop asks a call's media to do.
pub enum MediaCmd {
    /// Hand over the bound sockets of a leg.
    Attach {
        /// Leg.
        leg: Leg,
        /// Its sockets.
        pair: RtpPair,
    },
    /// (Re)configure a leg from negotiated SDP.
    Configure {
        /// Leg.
        leg: Leg,
        /// Parameters.
        config: Box<LegConfig>,
    },
    /// Play a prompt on a leg.
    Play {
        /// Leg.
        leg: Leg,
        /// What and how.
        playback: Playback,
    },
    /// Stop the prompt on a leg.
    StopPrompt(Leg),
    /// Relay between the legs, or stop relaying.
    Bridge(bool),
    /// Forward digits to the other leg (off during the consent question).
    DtmfForwarding(bool),
    /// Start the recording tap.
    StartRecording {
        /// The file's handle, for the closing thread.
        recorder: Recorder,
        /// The writer's end, owned by the media session while recording.
        tap: Box<dyn RecordingSink>,
    },
    /// Stop the tap; the recorder is finalised (or discarded when `discard`) before `done`.
    StopRecording {
        /// Remove the file instead of finishing it (withdrawn consent).
        discard: bool,
        /// Answered once no frame can reach the file any more.
        done: oneshot::Sender<()>,
    },
    /// End the call's media: finalise any recording, free the ports, report `Ended`.
    Release,
}

/// What a call's media reports to the signalling loop.
#[derive(Debug)]
pub enum MediaReport {
    /// An event of the media session.
    Event(MediaEvent),
    /// A command could not be applied (bad SDP parameters, socket failure).
    Failed {
        /// Leg concerned.
        leg: Leg,
        /// Why (no secrets).
        reason: String,
    },
    /// The call's media ended; final statistics per leg.
    Ended {
        /// Caller leg, then PBX leg.
        stats: Box<(LegStats, LegStats)>,
    },
}

/// The media threads. Dropping the engine stops them once every call they hold is released
/// (a call still open then is ended as by [`MediaCmd::Release`]).
pub struct MediaEngine {
    workers: Vec<Arc<worker::Inbox>>,
    closer: Arc<closer::Closer>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    next_worker: AtomicUsize,
    next_call: AtomicU64,
}

/// One call's handle: commands go to the worker that owns the call. Dropping it releases the
/// call's media, like [`MediaCmd::Release`].
pub struct MediaHandle {
    call: u64,
    inbox: Arc<worker::Inbox>,
}

/// How the media threads run (`[media]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Media threads (0: one per core this process may run on).
    pub threads: usize,
    /// How long a busy thread lets packets gather between two waits (`coalesce_us`).
    pub coalesce: std::time::Duration,
    /// `SCHED_FIFO` priority of the media threads (0: the normal scheduler).
    pub realtime_priority: u8,
}

/// Media thread `index` asks for real-time scheduling; the first thread says how it went (the
/// others fare the same).
fn enter_realtime(index: usize, priority: u8) {
    match priority::enter_realtime(priority) {
        Ok(()) if index == 0 => {
            tracing::info!("media threads run at real-time priority {priority} (SCHED_FIFO)");
        }
        Err(e) if index == 0 => tracing::warn!(
            "media threads run at normal priority: real-time priority {priority} was refused \
             ({e}); {}",
            priority::refusal_hint(&e)
        ),
        _ => {}
    }
}

/// The call's media has already ended (or its worker is gone).
#[derive(Debug, thiserror::Error)]
#[error("the call's media has ended")]
pub struct MediaGone;

impl MediaEngine {
    /// Starts the media threads `options` asks for.
    pub fn start(options: &EngineOptions, metrics: Arc<Metrics>) -> Result<Self, GatewayError> {
        let EngineOptions {
            threads,
            coalesce,
            realtime_priority,
        } = *options;
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let closer = Arc::new(closer::Closer::start().map_err(|e| {
            GatewayError::TaskFailed(format!("cannot start the recording closing thread: {e}"))
        })?);
        let mut workers = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (inbox, worker) = worker::Worker::new(metrics.clone(), coalesce, closer.clone())
                .map_err(|e| {
                    GatewayError::TaskFailed(format!("cannot set up media thread {i}: {e}"))
                })?;
            let handle = std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || {
                    if realtime_priority > 0 {
                        enter_realtime(i, realtime_priority);
                    }
                    worker.run();
                })
                .map_err(|e| {
                    GatewayError::TaskFailed(format!("cannot start media thread {i}: {e}"))
                })?;
            workers.push(inbox);
            handles.push(handle);
        }
        Ok(Self {
            workers,
            closer,
            threads: Mutex::new(handles),
            next_worker: AtomicUsize::new(0),
            next_call: AtomicU64::new(1),
        })
    }

    /// Media threads running.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Opens a call's media on the next thread (round robin). `report` receives
    /// `(tag, report)`; the last report of a call is always [`MediaReport::Ended`].
    pub fn open<T: Copy + Send + 'static>(
        &self,
        tag: T,
        config: SessionConfig,
        report: mpsc::UnboundedSender<(T, MediaReport)>,
    ) -> MediaHandle {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let n = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1);
        let Some(inbox) = self.workers.get(n).cloned() else {
            // Unreachable: `start` runs at least one thread. A handle on a closed inbox
            // reports every command as failed instead of panicking.
            return MediaHandle {
                call,
                inbox: Arc::new(worker::Inbox::closed()),
            };
        };
        let reporter: worker::Reporter = Box::new(move |r| report.send((tag, r)).is_ok());
        inbox.push(worker::Msg::Open {
            call,
            config: Box::new(config),
            report: reporter,
        });
        MediaHandle { call, inbox }
    }

    /// Stops the threads after the calls they hold are ended, and waits for them.
    pub fn shutdown(&self) {
        for w in &self.workers {
            w.push(worker::Msg::Stop);
        }
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            if h.join().is_err() {
                tracing::error!("a media thread panicked");
            }
        }
        // Last: the recordings the threads handed over while ending their calls.
        self.closer.stop();
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl MediaHandle {
    /// Queues a command for the call's media thread.
    pub fn send(&self, cmd: MediaCmd) -> Result<(), MediaGone> {
        if self.inbox.push(worker::Msg::Command {
            call: self.call,
            cmd,
        }) {
            Ok(())
        } else {
            Err(MediaGone)
        }
    }
}

impl Drop for MediaHandle {
    fn drop(&mut self) {
        self.inbox.push(worker::Msg::Command {
            call: self.call,
            cmd: MediaCmd::Release,
        });
    }
}

/// Random initial SSRC, sequence number and timestamp (RFC 3550 §5.1) for both legs.
pub fn random_streams() -> Result<(StreamInit, StreamInit), GatewayError> {
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).map_err(|e| GatewayError::Random(e.to_string()))?;
    let init = |o: usize| StreamInit {
        ssrc: u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]),
        sequence: u16::from_be_bytes([b[o + 4], b[o + 5]]),
        timestamp: u32::from_be_bytes([b[o + 6], b[o + 7], b[o + 8], b[o + 9]]),
    };
    Ok((init(0), init(10)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortPool;
    use callseal_media::{Codec, PayloadMap, Prompt};
    use std::time::Duration;

    fn options(threads: usize, coalesce_us: u64) -> EngineOptions {
        EngineOptions {
            threads,
            coalesce: Duration::from_micros(coalesce_us),
            realtime_priority: 0,
        }
    }

    fn rtp(seq: u16, pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(payload);
        p
    }

    fn session_config() -> SessionConfig {
        let (a, b) = random_streams().unwrap();
        SessionConfig {
            latching_window: Duration::from_secs(2),
            media_timeout: None,
            caller_stream: a,
            pbx_stream: b,
        }
    }

    type Reports<T> = mpsc::UnboundedReceiver<(T, MediaReport)>;

    async fn next_report<T: Copy>(
        rx: &mut Reports<T>,
        mut want: impl FnMut(T, &MediaReport) -> bool,
    ) -> MediaReport {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (tag, r) = rx.recv().await.expect("reports channel open");
                if want(tag, &r) {
                    return r;
                }
            }
        })
        .await
        .expect("the report came within 5 s")
    }

    /// A call whose caller leg faces `caller` and whose PBX leg faces `pbx`, bridged.
    fn bridged_call<T: Copy + Send + 'static>(
        engine: &MediaEngine,
        pool: &PortPool,
        tag: T,
        caller: SocketAddr,
        pbx: SocketAddr,
        report: mpsc::UnboundedSender<(T, MediaReport)>,
    ) -> (MediaHandle, SocketAddr, SocketAddr) {
        let cmd = engine.open(tag, session_config(), report);
        let (pa, pb) = (pool.allocate().unwrap(), pool.allocate().unwrap());
        let (a_local, b_local) = (pa.local_rtp(), pb.local_rtp());
        for (leg, pair, peer, event) in [(Leg::Caller, pa, caller, 101), (Leg::Pbx, pb, pbx, 96)] {
            cmd.send(MediaCmd::Attach { leg, pair }).unwrap();
            let map = PayloadMap::g711(Codec::Pcmu).with_telephone_event(event);
            cmd.send(MediaCmd::Configure {
                leg,
                config: Box::new(LegConfig::new(Some(peer), map)),
            })
            .unwrap();
        }
        cmd.send(MediaCmd::Bridge(true)).unwrap();
        (cmd, a_local, b_local)
    }

    use std::net::SocketAddr;
    use std::net::UdpSocket as StdUdp;

    fn peer() -> tokio::net::UdpSocket {
        let s = StdUdp::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        tokio::net::UdpSocket::from_std(s).unwrap()
    }

    #[tokio::test]
    async fn bridged_audio_is_relayed_and_digits_are_reported() {
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_100, 43_111);
        let engine = MediaEngine::start(&options(1, 0), Arc::new(Metrics::default())).unwrap();
        let (caller, pbx) = (peer(), peer());
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
        let (cmd, a_local, b_local) = bridged_call(
            &engine,
            &pool,
            1u8,
            caller.local_addr().unwrap(),
            pbx.local_addr().unwrap(),
            rep_tx,
        );
        for seq in 0..5u16 {
            caller
                .send_to(&rtp(seq, 0, &[0x55; 160]), a_local)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut buf = [0u8; 2048];
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), pbx.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, b_local, "relayed from the PBX leg's own port");
        assert_eq!(n, 172);
        assert_eq!(&buf[12..n], &[0x55; 160][..]);
        // An RFC 4733 digit from the caller (PT 101) is reported once.
        for (i, e) in [(5u16, 0u8), (6, 0), (7, 0x80), (8, 0x80)] {
            let mut p = rtp(i, 101 | if i == 5 { 0x80 } else { 0 }, &[1, e | 10, 0, 160]);
            p[4..8].copy_from_slice(&[0, 0, 9, 9]);
            caller.send_to(&p, a_local).await.unwrap();
        }
        let digit = next_report(&mut rep_rx, |_, r| {
            matches!(r, MediaReport::Event(MediaEvent::DtmfDigit { .. }))
        })
        .await;
        let MediaReport::Event(MediaEvent::DtmfDigit { leg, digit, .. }) = digit else {
            unreachable!()
        };
        assert_eq!((leg, digit.as_char()), (Leg::Caller, '1'));
        cmd.send(MediaCmd::Release).unwrap();
        let MediaReport::Ended { stats } =
            next_report(&mut rep_rx, |_, r| matches!(r, MediaReport::Ended { .. })).await
        else {
            unreachable!()
        };
        assert!(stats.0.packets_received >= 5);
        assert_eq!(pool.available(), 6, "both pairs returned to the pool");
    }

    #[tokio::test]
    async fn one_thread_carries_many_calls_each_to_its_own_peer() {
        const CALLS: usize = 40;
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_200, 43_200 + 5 * CALLS as u16);
        let engine = MediaEngine::start(&options(1, 0), Arc::new(Metrics::default())).unwrap();
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
        let mut calls = Vec::new();
        for i in 0..CALLS {
            let (caller, pbx) = (peer(), peer());
            let (cmd, a_local, _) = bridged_call(
                &engine,
                &pool,
                i,
                caller.local_addr().unwrap(),
                pbx.local_addr().unwrap(),
                rep_tx.clone(),
            );
            calls.push((cmd, caller, pbx, a_local));
        }
        // Each caller sends a payload naming its call; each PBX must get its own call's.
        for seq in 0..3u16 {
            for (i, (_, caller, _, a_local)) in calls.iter().enumerate() {
                let payload = [u8::try_from(i).unwrap(); 160];
                caller
                    .send_to(&rtp(seq, 0, &payload), *a_local)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (i, (_, _, pbx, _)) in calls.iter().enumerate() {
            let mut buf = [0u8; 2048];
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), pbx.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n, 172);
            assert!(buf[12..n].iter().all(|&b| usize::from(b) == i), "call {i}");
        }
        // Dropping a handle releases the call like Release does.
        let mut ended = std::collections::HashSet::new();
        drop(calls);
        while ended.len() < CALLS {
            let mut tag = None;
            next_report(&mut rep_rx, |t, r| {
                tag = Some(t);
                matches!(r, MediaReport::Ended { .. })
            })
            .await;
            assert!(ended.insert(tag.unwrap()), "one end per call");
        }
        assert_eq!(
            pool.available(),
            5 * CALLS / 2,
            "every pair back in the pool"
        );
    }

    /// Receives on `sock` until a packet whose payload is all `byte` comes (2 s at most).
    async fn recv_payload(sock: &tokio::net::UdpSocket, byte: u8) -> SocketAddr {
        let mut buf = [0u8; 2048];
        tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                let (n, from) = sock.recv_from(&mut buf).await.unwrap();
                if n > 12 && buf[12..n].iter().all(|&b| b == byte) {
                    return from;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("a packet of {byte:#x} within 2 s"))
    }

    #[tokio::test]
    async fn a_latched_leg_is_connected_to_its_peer_and_hears_a_new_address_after_a_reinvite() {
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_600, 43_611);
        let engine = MediaEngine::start(&options(1, 0), Arc::new(Metrics::default())).unwrap();
        let (caller, pbx, stranger, moved) = (peer(), peer(), peer(), peer());
        let (rep_tx, _rep_rx) = mpsc::unbounded_channel();
        let (cmd, a_local, b_local) = bridged_call(
            &engine,
            &pool,
            3u8,
            caller.local_addr().unwrap(),
            pbx.local_addr().unwrap(),
            rep_tx,
        );
        // Both legs latch; audio flows both ways (the PBX's through the connected caller leg).
        for seq in 0..3u16 {
            caller
                .send_to(&rtp(seq, 0, &[0x11; 160]), a_local)
                .await
                .unwrap();
            pbx.send_to(&rtp(seq, 0, &[0x22; 160]), b_local)
                .await
                .unwrap();
        }
        assert_eq!(recv_payload(&pbx, 0x11).await, b_local);
        assert_eq!(recv_payload(&caller, 0x22).await, a_local);
        // Once latched, another source is refused by the kernel (the socket is connected to
        // the caller): the stranger's own connected socket learns of it by ICMP.
        stranger.connect(a_local).await.unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(2), async {
            let mut buf = [0u8; 64];
            for seq in 0..20u16 {
                stranger.send(&rtp(seq, 0, &[0x33; 160])).await.ok();
                match tokio::time::timeout(Duration::from_millis(50), stranger.recv(&mut buf)).await
                {
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        return true;
                    }
                    _ => {}
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(
            refused,
            "the latched caller leg's socket refuses other sources"
        );
        // The caller's leg is re-negotiated to `remote`.
        let reconfigure = |remote: Option<SocketAddr>| {
            let map = PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
            cmd.send(MediaCmd::Configure {
                leg: Leg::Caller,
                config: Box::new(LegConfig::new(remote, map)),
            })
            .unwrap();
        };
        // Audio from `moved` reaches the PBX, and the PBX's reaches `moved`.
        let both_ways = |seq: u16, byte: u8| {
            let (moved, pbx) = (&moved, &pbx);
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                for s in seq..seq + 3 {
                    moved
                        .send_to(&rtp(s, 0, &[byte; 160]), a_local)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert_eq!(recv_payload(pbx, byte).await, b_local);
                for s in seq..seq + 3 {
                    pbx.send_to(&rtp(s, 0, &[byte + 1; 160]), b_local)
                        .await
                        .unwrap();
                }
                assert_eq!(recv_payload(moved, byte + 1).await, a_local);
            }
        };
        // A re-INVITE moves the caller to a new address: the leg must hear it, and send to it.
        let moved_to = moved.local_addr().unwrap();
        reconfigure(Some(moved_to));
        both_ways(10, 0x44).await;
        // RFC 2543 hold (c=0.0.0.0: no address), then resume at the same address: the socket
        // is disconnected on hold and connected again once the caller is heard.
        reconfigure(None);
        reconfigure(Some(moved_to));
        both_ways(20, 0x76).await;
        cmd.send(MediaCmd::Release).unwrap();
    }

    /// Starts a real recording (segments of `segment`) on the call behind `cmd`; returns its
    /// file and data key.
    fn record(
        cmd: &MediaHandle,
        dir: &std::path::Path,
        secret: &callseal_recording::keys::SecretKey,
        segment: Duration,
    ) -> (std::path::PathBuf, callseal_recording::keys::DataKey) {
        use callseal_recording::keys::{EpochId, unwrap};
        let started = Recorder::create(
            dir,
            EpochId(20_800),
            &secret.public_key(),
            segment,
            &[101],
            Arc::new(Metrics::default()),
        )
        .unwrap();
        let file = (
            started.recorder.path().to_owned(),
            unwrap(&started.wrapped, secret).unwrap(),
        );
        cmd.send(MediaCmd::StartRecording {
            recorder: started.recorder,
            tap: started.tap,
        })
        .unwrap();
        file
    }

    #[tokio::test]
    async fn audio_left_pending_by_silence_is_sealed_by_the_threads_timer() {
        use callseal_recording::keys::SecretKey;
        use callseal_recording::{ReadError, Reader};
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_700, 43_711);
        let engine = MediaEngine::start(&options(1, 0), Arc::new(Metrics::default())).unwrap();
        let (caller, pbx) = (peer(), peer());
        let (rep_tx, _rep_rx) = mpsc::unbounded_channel();
        let (cmd, a_local, _) = bridged_call(
            &engine,
            &pool,
            4u8,
            caller.local_addr().unwrap(),
            pbx.local_addr().unwrap(),
            rep_tx,
        );
        let (path, key) = record(&cmd, dir.path(), &secret, Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Three frames, then silence: only the thread's timer can seal them.
        for seq in 0..3u16 {
            caller
                .send_to(&rtp(seq, 0, &[0x66; 160]), a_local)
                .await
                .unwrap();
        }
        let read = || -> usize {
            let Ok(file) = std::fs::File::open(&path) else {
                return 0;
            };
            let Ok(mut reader) = Reader::new(file, &key) else {
                return 0;
            };
            let mut n = 0;
            while let Ok(Some(f)) = reader.next_frame() {
                assert_eq!(f.payload, vec![0x66; 160]);
                n += 1;
            }
            n
        };
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while read() < 3 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(read(), 3, "sealed and written while the call is still up");
        // Still in progress: no final segment yet.
        let mut reader = Reader::new(std::fs::File::open(&path).unwrap(), &key).unwrap();
        while let Ok(Some(_)) = reader.next_frame() {}
        assert!(matches!(
            reader.next_frame(),
            Err(ReadError::Truncated { .. })
        ));
        cmd.send(MediaCmd::Release).unwrap();
    }

    #[tokio::test]
    async fn a_second_recording_on_a_call_finishes_the_first_instead_of_dropping_it() {
        use callseal_recording::Reader;
        use callseal_recording::keys::SecretKey;
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().unwrap();
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_800, 43_811);
        let engine = MediaEngine::start(&options(1, 0), Arc::new(Metrics::default())).unwrap();
        let (caller, pbx) = (peer(), peer());
        let (rep_tx, _rep_rx) = mpsc::unbounded_channel();
        let (cmd, a_local, _) = bridged_call(
            &engine,
            &pool,
            5u8,
            caller.local_addr().unwrap(),
            pbx.local_addr().unwrap(),
            rep_tx,
        );
        let mut files = Vec::new();
        for (round, byte) in [(0u16, 0x21u8), (1, 0x22)] {
            let (path, key) = record(&cmd, dir.path(), &secret, Duration::from_secs(1));
            files.push((path, key, byte));
            tokio::time::sleep(Duration::from_millis(20)).await;
            for seq in 0..3u16 {
                let seq = round * 10 + seq;
                caller
                    .send_to(&rtp(seq, 0, &[byte; 160]), a_local)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        cmd.send(MediaCmd::Release).unwrap();
        // Both files are complete (their final segment is there) and hold their own audio.
        for (path, key, byte) in files {
            let until = std::time::Instant::now() + Duration::from_secs(5);
            let frames = loop {
                let mut reader = Reader::new(std::fs::File::open(&path).unwrap(), &key).ok();
                let mut frames = Vec::new();
                let complete = loop {
                    match reader.as_mut().map(Reader::next_frame) {
                        Some(Ok(Some(f))) => frames.push(f.payload),
                        Some(Ok(None)) => break true,
                        _ => break false,
                    }
                };
                if complete {
                    break frames;
                }
                assert!(
                    std::time::Instant::now() < until,
                    "{} never completed",
                    path.display()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(frames, vec![vec![byte; 160]; 3]);
        }
    }

    #[tokio::test]
    async fn a_prompt_is_paced_at_20_ms_and_its_end_reported() {
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_400, 43_411);
        let engine = MediaEngine::start(&options(1, 0), Arc::new(Metrics::default())).unwrap();
        let (caller, pbx) = (peer(), peer());
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
        let (cmd, _, _) = bridged_call(
            &engine,
            &pool,
            7u8,
            caller.local_addr().unwrap(),
            pbx.local_addr().unwrap(),
            rep_tx,
        );
        // 200 ms of audio: 10 packets of 20 ms.
        let prompt = Prompt::from_samples(vec![1000; 1600]);
        cmd.send(MediaCmd::Play {
            leg: Leg::Caller,
            playback: Playback::once(prompt),
        })
        .unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 2048];
        let mut got = 0;
        while got < 10 {
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), caller.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n, 172);
            got += 1;
        }
        let took = started.elapsed();
        // Paced, not burst: the 10th packet leaves ~180 ms after the first.
        assert!(took >= Duration::from_millis(150), "{took:?}");
        next_report(&mut rep_rx, |_, r| {
            matches!(r, MediaReport::Event(MediaEvent::PromptFinished { .. }))
        })
        .await;
    }

    #[tokio::test]
    async fn shutdown_ends_the_calls_still_held() {
        let pool = PortPool::new([127, 0, 0, 1].into(), 43_500, 43_511);
        let engine = MediaEngine::start(&options(2, 300), Arc::new(Metrics::default())).unwrap();
        assert_eq!(engine.threads(), 2);
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
        let (a, b) = (peer(), peer());
        let handles: Vec<_> = (0..2u8)
            .map(|i| {
                bridged_call(
                    &engine,
                    &pool,
                    i,
                    a.local_addr().unwrap(),
                    b.local_addr().unwrap(),
                    rep_tx.clone(),
                )
                .0
            })
            .collect();
        tokio::task::spawn_blocking(move || engine.shutdown())
            .await
            .unwrap();
        let mut ended = Vec::new();
        while ended.len() < 2 {
            let (tag, r) = rep_rx.recv().await.unwrap();
            if matches!(r, MediaReport::Ended { .. }) {
                ended.push(tag);
            }
        }
        ended.sort_unstable();
        assert_eq!(ended, [0, 1]);
        assert_eq!(pool.available(), 6);
        // The threads are gone: a command now fails instead of vanishing silently.
        assert!(handles[0].send(MediaCmd::Bridge(false)).is_err());
    }
}
