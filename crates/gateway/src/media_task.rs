//! One task per call: the call's `MediaSession`, its RTP/RTCP sockets and its recorder.
//!
//! The task is the shell loop of STYLE §1 for media: drain the session's transmits and
//! events, then wait on the four sockets, the command channel and the session's next
//! deadline (or the recorder's next seal). Every decision — latching, PT rewriting, prompt
//! pacing, digit detection — is the media core's; this file only moves bytes and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use callseal_media::{
    Leg, LegConfig, LegStats, MediaEvent, MediaSession, Playback, SessionConfig, StreamInit,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::ports::RtpPair;
use crate::recorder::Recorder;

/// How often a recording's pending audio is checked for sealing (silence, hold).
const SEAL_CHECK: Duration = Duration::from_millis(250);
/// How long the task sleeps when neither the session nor the recorder has a deadline.
const IDLE: Duration = Duration::from_secs(3600);

/// What the signalling loop asks a call's media task to do.
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
    StartRecording(Recorder),
    /// Stop the tap; the recorder is finalised (or discarded when `discard`) before `done`.
    StopRecording {
        /// Remove the file instead of finishing it (withdrawn consent).
        discard: bool,
        /// Answered once no frame can reach the file any more.
        done: oneshot::Sender<()>,
    },
    /// End the task: finalise any recording, free the ports.
    Release,
}

/// What a media task reports to the signalling loop.
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
    /// The task ended; final statistics per leg.
    Ended {
        /// Caller leg, then PBX leg.
        stats: Box<(LegStats, LegStats)>,
    },
}

/// Starts the task for one call. `report` receives `(tag, report)`.
pub fn spawn<T: Copy + Send + 'static>(
    tag: T,
    config: SessionConfig,
    metrics: Arc<Metrics>,
    report: mpsc::UnboundedSender<(T, MediaReport)>,
) -> mpsc::UnboundedSender<MediaCmd> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(tag, config, metrics, report, rx));
    tx
}

/// Random initial SSRC, sequence number and timestamp (RFC 3550 §5.1) for both legs.
pub fn random_streams() -> Result<(StreamInit, StreamInit), crate::GatewayError> {
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).map_err(|e| crate::GatewayError::Random(e.to_string()))?;
    let init = |o: usize| StreamInit {
        ssrc: u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]),
        sequence: u16::from_be_bytes([b[o + 4], b[o + 5]]),
        timestamp: u32::from_be_bytes([b[o + 6], b[o + 7], b[o + 8], b[o + 9]]),
    };
    Ok((init(0), init(10)))
}

struct Legs {
    caller: Option<RtpPair>,
    pbx: Option<RtpPair>,
}

impl Legs {
    fn get(&self, leg: Leg) -> Option<&RtpPair> {
        match leg {
            Leg::Caller => self.caller.as_ref(),
            Leg::Pbx => self.pbx.as_ref(),
        }
    }
}

async fn recv(
    pair: Option<&RtpPair>,
    rtcp: bool,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match pair {
        Some(p) if rtcp => p.rtcp.recv_from(buf).await,
        Some(p) => p.rtp.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn run<T: Copy + Send + 'static>(
    tag: T,
    config: SessionConfig,
    metrics: Arc<Metrics>,
    report: mpsc::UnboundedSender<(T, MediaReport)>,
    mut commands: mpsc::UnboundedReceiver<MediaCmd>,
) {
    let mut session = MediaSession::new(config);
    let mut legs = Legs {
        caller: None,
        pbx: None,
    };
    let mut recorder: Option<(Recorder, Instant)> = None;
    let mut bufs = [[0u8; 2048], [0u8; 2048], [0u8; 2048], [0u8; 2048]];
    let send = |t: &callseal_media::Transmit, legs: &Legs| {
        if let Some(pair) = legs.get(t.leg) {
            // try_send: a full socket buffer drops the packet, as a real-time path should.
            match pair.rtp.try_send_to(&t.payload, t.destination) {
                Ok(_) => {
                    metrics.rtp_packets_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => tracing::debug!(leg = ?t.leg, "RTP send failed: {e}"),
            }
        }
    };
    // One timer for the task's life, moved only when its deadline changes: a fresh timer per
    // packet would be registered in (and removed from) the runtime's wheel every time.
    let sleep = tokio::time::sleep_until(Instant::now() + IDLE);
    tokio::pin!(sleep);
    let mut next_seal: Option<Instant> = None;
    loop {
        // Drain outputs.
        while let Some(t) = session.poll_transmit() {
            send(&t, &legs);
            session.recycle(t.payload);
        }
        while let Some(ev) = session.poll_event() {
            if report.send((tag, MediaReport::Event(ev))).is_err() {
                break;
            }
        }
        let wake = session.poll_timeout().map(Instant::from_std);
        // The recorder's check runs every SEAL_CHECK while recording, whatever the traffic.
        if recorder.is_none() {
            next_seal = None;
        } else if next_seal.is_none() {
            next_seal = Some(Instant::now() + SEAL_CHECK);
        }
        let deadline = match (wake, next_seal) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or_else(|| Instant::now() + IDLE),
        };
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        let [b0, b1, b2, b3] = &mut bufs;
        // Biased, commands first: a leg's configuration (sent just before the 200 OK that
        // makes the peer send) must apply before the packets queued on its socket are read,
        // or the caller's first packets (often the consent digit) meet an unconfigured leg.
        tokio::select! {
            biased;
            cmd = commands.recv() => {
                let now = Instant::now().into_std();
                match cmd {
                    None | Some(MediaCmd::Release) => break,
                    Some(MediaCmd::Attach { leg, pair }) => match leg {
                        Leg::Caller => legs.caller = Some(pair),
                        Leg::Pbx => legs.pbx = Some(pair),
                    },
                    Some(MediaCmd::Configure { leg, config }) => {
                        if let Err(e) = session.configure_leg(now, leg, *config) {
                            let _ = report.send((tag, MediaReport::Failed { leg, reason: e.to_string() }));
                        }
                    }
                    Some(MediaCmd::Play { leg, playback }) => {
                        if let Err(e) = session.play_prompt(now, leg, playback) {
                            let _ = report.send((tag, MediaReport::Failed { leg, reason: e.to_string() }));
                        }
                    }
                    Some(MediaCmd::StopPrompt(leg)) => session.stop_prompt(leg),
                    Some(MediaCmd::Bridge(on)) => session.set_bridge(on),
                    Some(MediaCmd::DtmfForwarding(on)) => session.set_dtmf_forwarding(on),
                    Some(MediaCmd::StartRecording(rec)) => {
                        session.start_recording(now, rec.tap());
                        recorder = Some((rec, Instant::now()));
                    }
                    Some(MediaCmd::StopRecording { discard, done }) => {
                        // Synchronous in the core: no frame reaches the file after this.
                        drop(session.stop_recording());
                        if let Some((rec, _)) = recorder.take() {
                            close(&rec, discard);
                        }
                        let _ = done.send(());
                    }
                }
            }
            r = recv(legs.caller.as_ref(), false, b0) => packet(&mut session, Leg::Caller, r, b0),
            r = recv(legs.caller.as_ref(), true, b1) => packet(&mut session, Leg::Caller, r, b1),
            r = recv(legs.pbx.as_ref(), false, b2) => packet(&mut session, Leg::Pbx, r, b2),
            r = recv(legs.pbx.as_ref(), true, b3) => packet(&mut session, Leg::Pbx, r, b3),
            () = &mut sleep => {
                let now = Instant::now();
                session.handle_timeout(now.into_std());
                if next_seal.is_some_and(|at| at <= now) {
                    next_seal = None;
                } else {
                    continue;
                }
                if let Some((rec, started)) = &recorder
                    && let Err(e) = rec.tick(started.elapsed())
                {
                    tracing::error!(recording = %rec.id(), "recording stopped: {e}");
                    drop(session.stop_recording());
                    let _ = report.send((tag, MediaReport::Event(MediaEvent::RecordingFailed {
                        error: callseal_media::TapSinkError { reason: e.to_string() },
                    })));
                    recorder = None;
                }
            }
        }
    }
    drop(session.stop_recording());
    if let Some((rec, _)) = recorder.take() {
        close(&rec, false);
    }
    // Ports go back to the pool before the end is reported.
    drop(legs);
    let caller = session.stats(Leg::Caller);
    let pbx = session.stats(Leg::Pbx);
    for s in [&caller, &pbx] {
        metrics
            .rtp_packets_in
            .fetch_add(s.packets_received, Ordering::Relaxed);
        metrics
            .rtp_packets_lost
            .fetch_add(s.lost, Ordering::Relaxed);
        metrics
            .latching_drops
            .fetch_add(s.dropped_latching, Ordering::Relaxed);
    }
    let _ = report.send((
        tag,
        MediaReport::Ended {
            stats: Box::new((caller, pbx)),
        },
    ));
}

fn close(rec: &Recorder, discard: bool) {
    let result = if discard { rec.discard() } else { rec.finish() };
    if let Err(e) = result {
        tracing::error!(recording = %rec.id(), "closing the recording failed: {e}");
    }
}

fn packet(
    session: &mut MediaSession,
    leg: Leg,
    r: std::io::Result<(usize, SocketAddr)>,
    buf: &[u8],
) {
    match r {
        Ok((n, from)) => {
            session.handle_packet(
                Instant::now().into_std(),
                leg,
                from,
                buf.get(..n).unwrap_or_default(),
            );
        }
        // ICMP port unreachable from a peer that went away: not fatal.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(e) => tracing::debug!(?leg, "RTP receive failed: {e}"),
    }
}

/// A built-in echo endpoint for the demo mode: every datagram is sent back to its sender.
/// The PBX leg of a call is pointed at it, so the caller hears themselves and the recording
/// holds the echo on the consultant channel.
pub async fn echo_socket(
    bind: std::net::IpAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let sock = UdpSocket::bind(SocketAddr::new(bind, 0)).await?;
    let addr = sock.local_addr()?;
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    let _ = sock.send_to(buf.get(..n).unwrap_or_default(), from).await;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(_) => return,
            }
        }
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortPool;
    use callseal_media::{Codec, PayloadMap};

    fn rtp(seq: u16, pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x80,
            pt,
            (seq >> 8) as u8,
            seq as u8,
            0,
            0,
            (seq >> 8) as u8,
            seq as u8,
            1,
            2,
            3,
            4,
        ];
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn bridged_audio_is_relayed_and_digits_are_reported() {
        let (lo, hi) = (43_100, 43_111);
        let pool = PortPool::new([127, 0, 0, 1].into(), lo, hi);
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pbx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a, b) = random_streams().unwrap();
        let config = SessionConfig {
            latching_window: Duration::from_secs(2),
            media_timeout: None,
            caller_stream: a,
            pbx_stream: b,
        };
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::default());
        let cmd = spawn(1u8, config, metrics.clone(), rep_tx);
        let (pa, pb) = (pool.allocate().unwrap(), pool.allocate().unwrap());
        let (a_local, b_local) = (pa.local_rtp(), pb.local_rtp());
        cmd.send(MediaCmd::Attach {
            leg: Leg::Caller,
            pair: pa,
        })
        .ok();
        cmd.send(MediaCmd::Attach {
            leg: Leg::Pbx,
            pair: pb,
        })
        .ok();
        let pm = PayloadMap::g711(Codec::Pcmu).with_telephone_event(101);
        cmd.send(MediaCmd::Configure {
            leg: Leg::Caller,
            config: Box::new(LegConfig::new(Some(caller.local_addr().unwrap()), pm)),
        })
        .ok();
        let pm96 = PayloadMap::g711(Codec::Pcmu).with_telephone_event(96);
        cmd.send(MediaCmd::Configure {
            leg: Leg::Pbx,
            config: Box::new(LegConfig::new(Some(pbx.local_addr().unwrap()), pm96)),
        })
        .ok();
        cmd.send(MediaCmd::Bridge(true)).ok();
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
        let digit = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if let Some((1, MediaReport::Event(MediaEvent::DtmfDigit { leg, digit, .. }))) =
                    rep_rx.recv().await
                {
                    return (leg, digit.as_char());
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(digit, (Leg::Caller, '1'));
        cmd.send(MediaCmd::Release).ok();
        let ended = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if let Some((_, MediaReport::Ended { stats })) = rep_rx.recv().await {
                    return stats.0;
                }
            }
        })
        .await
        .unwrap();
        assert!(ended.packets_received >= 5);
        assert_eq!(pool.available(), 6, "both pairs returned to the pool");
    }
}
