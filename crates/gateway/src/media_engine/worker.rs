//! One media thread: the shell loop of STYLE §1 for many calls at once.
//!
//! Each turn: wait on the epoll set (every call's sockets and the command eventfd) until the
//! earliest deadline; apply every queued command first (a leg's configuration, sent just before
//! the 200 OK that makes the peer send, must apply before the packets queued on its socket are
//! read, or the caller's first packets — often the consent digit — meet an unconfigured leg);
//! then read one datagram per ready socket (level-triggered: a socket with more waiting is
//! reported again next turn); then serve the calls whose deadline came. After any input a
//! call's transmits and events are drained and its next deadline scheduled.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callseal_media::{Leg, MediaSession, SessionConfig};
use rustix::buffer::spare_capacity;
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};
use rustix::io::Errno;

use super::closer::{Closer, Closing};
use super::deadlines::{Deadlines, Slot};
use super::{MediaCmd, MediaReport};
use crate::metrics::Metrics;
use crate::ports::RtpPair;
use crate::recorder::Recorder;

/// The longest single wait (nothing scheduled): the loop simply turns again.
const IDLE: Duration = Duration::from_secs(60);
/// Readiness events taken per wait.
const EVENTS: usize = 512;
/// Readiness events in one turn from which the thread counts as busy and lets packets
/// gather before its next wait (`[media] coalesce_us`).
const BUSY_EVENTS: usize = 2;
/// The epoll token of the command eventfd; call sockets use `call << 2 | socket`.
const WAKE: u64 = u64::MAX;

/// Hands a report to the signalling loop; false once it is gone.
pub(super) type Reporter = Box<dyn Fn(MediaReport) -> bool + Send>;

/// What the signalling loop hands a media thread.
pub(super) enum Msg {
    /// A new call.
    Open {
        call: u64,
        config: Box<SessionConfig>,
        report: Reporter,
    },
    /// A command for a call.
    Command { call: u64, cmd: MediaCmd },
    /// End every call and the thread.
    Stop,
}

/// A media thread's command queue; pushing to an empty queue wakes the thread.
pub(super) struct Inbox {
    queue: Mutex<Queue>,
    wake: Option<OwnedFd>,
}

struct Queue {
    msgs: Vec<Msg>,
    closed: bool,
}

impl Inbox {
    fn new(wake: Option<OwnedFd>) -> Self {
        Self {
            queue: Mutex::new(Queue {
                msgs: Vec::new(),
                closed: wake.is_none(),
            }),
            wake,
        }
    }

    /// An inbox no thread reads: every push fails.
    pub(super) fn closed() -> Self {
        Self::new(None)
    }

    /// Queues `msg`; false (and `msg` dropped) when the thread has ended.
    pub(super) fn push(&self, msg: Msg) -> bool {
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.closed {
                return false;
            }
            q.msgs.push(msg);
            q.msgs.len() == 1
        };
        // One wake-up per batch: a non-empty queue already has one pending.
        if was_empty && let Some(fd) = &self.wake {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        true
    }

    fn take(&self, into: &mut Vec<Msg>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut q.msgs, into);
    }

    fn close(&self) -> Vec<Msg> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.closed = true;
        std::mem::take(&mut q.msgs)
    }
}

/// One call as its thread holds it.
struct Call {
    session: MediaSession,
    caller: Option<RtpPair>,
    pbx: Option<RtpPair>,
    /// Per leg (caller, PBX): the RTP socket's connection to the latched peer.
    peers: [Peer; 2],
    recorder: Option<Recorder>,
    slot: Slot,
    report: Reporter,
}

impl Call {
    fn pair(&self, leg: Leg) -> Option<&RtpPair> {
        match leg {
            Leg::Caller => self.caller.as_ref(),
            Leg::Pbx => self.pbx.as_ref(),
        }
    }

    fn fail(&self, leg: Leg, reason: String) {
        (self.report)(MediaReport::Failed { leg, reason });
    }
}

/// The thread's state.
pub(super) struct Worker {
    inbox: Arc<Inbox>,
    epoll: OwnedFd,
    metrics: Arc<Metrics>,
    calls: HashMap<u64, Call>,
    deadlines: Deadlines<u64>,
    /// Packets sent since the counter was last published.
    sent: u64,
    /// Least time between two wake-ups of a busy thread.
    coalesce: Duration,
    /// Where recordings are finished, off this thread.
    closer: Arc<Closer>,
}

impl Worker {
    /// A worker and its inbox; the caller runs [`Worker::run`] on a thread of its own.
    pub(super) fn new(
        metrics: Arc<Metrics>,
        coalesce: Duration,
        closer: Arc<Closer>,
    ) -> std::io::Result<(Arc<Inbox>, Self)> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN,
        )?;
        let inbox = Arc::new(Inbox::new(Some(wake)));
        Ok((
            inbox.clone(),
            Self {
                inbox,
                epoll,
                metrics,
                calls: HashMap::new(),
                deadlines: Deadlines::new(),
                sent: 0,
                coalesce,
                closer,
            },
        ))
    }

    /// The loop; returns after [`Msg::Stop`], every call ended.
    pub(super) fn run(mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        let mut msgs = Vec::new();
        let mut buf = vec![0u8; 2048];
        let mut woke = Instant::now();
        let mut busy = false;
        loop {
            // Interrupt coalescing: a thread that found work last time lets more gather before
            // it waits again, so one wake-up serves a batch; an idle thread waits at once.
            if busy && !self.coalesce.is_zero() {
                let gathered = woke.elapsed();
                if gathered < self.coalesce {
                    std::thread::sleep(self.coalesce - gathered);
                }
            }
            let timeout = wait_for(self.deadlines.next());
            events.clear();
            match epoll::wait(&self.epoll, spare_capacity(&mut events), Some(&timeout)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => {
                    tracing::error!("media thread: waiting for packets failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let now = Instant::now();
            woke = now;
            // Worth gathering for only when packets already come faster than one per wake-up:
            // a lightly loaded thread wakes at once for every packet and never sleeps extra.
            busy = events.len() >= BUSY_EVENTS;
            // The eventfd is reset before the queue is taken: a command queued after the take
            // finds the queue empty and wakes the thread again.
            if events.iter().any(|ev| ev.data.u64() == WAKE)
                && let Some(fd) = &self.inbox.wake
            {
                let mut b = [0u8; 8];
                let _ = rustix::io::read(fd, &mut b);
            }
            self.inbox.take(&mut msgs);
            // Commands that follow a Stop in the batch are applied too (see below).
            let stop = msgs.iter().any(|m| matches!(m, Msg::Stop));
            for msg in msgs.drain(..) {
                self.message(now, msg);
            }
            if stop {
                break;
            }
            for ev in &events {
                match ev.data.u64() {
                    WAKE => {}
                    token => self.readable(now, token, &mut buf),
                }
            }
            self.timers(now);
            if self.sent > 0 {
                self.metrics
                    .rtp_packets_out
                    .fetch_add(std::mem::take(&mut self.sent), Ordering::Relaxed);
            }
        }
        // Whatever is still queued is applied first, so that a withdrawal that raced the stop
        // (StopRecording with discard) still removes its file; then every call still held is
        // ended as by Release.
        let now = Instant::now();
        for msg in self.inbox.close() {
            self.message(now, msg);
        }
        let calls: Vec<u64> = self.calls.keys().copied().collect();
        for call in calls {
            self.end(call);
        }
    }

    fn message(&mut self, now: Instant, msg: Msg) {
        let (call, cmd) = match msg {
            Msg::Open {
                call,
                config,
                report,
            } => {
                self.calls.insert(
                    call,
                    Call {
                        session: MediaSession::new(*config),
                        caller: None,
                        pbx: None,
                        peers: [Peer::default(); 2],
                        recorder: None,
                        slot: Slot::default(),
                        report,
                    },
                );
                return;
            }
            Msg::Command { call, cmd } => (call, cmd),
            Msg::Stop => return,
        };
        if matches!(cmd, MediaCmd::Release) {
            self.end(call);
            return;
        }
        let Some(c) = self.calls.get_mut(&call) else {
            // Already released: nothing to do (a StopRecording's `done` is answered by the drop).
            return;
        };
        match cmd {
            MediaCmd::Release => {}
            MediaCmd::Attach { leg, pair } => {
                let base = call << 2 | if leg == Leg::Caller { 0 } else { 2 };
                let registered = epoll::add(
                    &self.epoll,
                    &pair.rtp,
                    epoll::EventData::new_u64(base),
                    epoll::EventFlags::IN,
                )
                .and_then(|()| {
                    epoll::add(
                        &self.epoll,
                        &pair.rtcp,
                        epoll::EventData::new_u64(base | 1),
                        epoll::EventFlags::IN,
                    )
                });
                if let Err(e) = registered {
                    c.fail(leg, format!("cannot watch the RTP sockets: {e}"));
                    deregister(&self.epoll, Some(&pair));
                    return;
                }
                let old = match leg {
                    Leg::Caller => c.caller.replace(pair),
                    Leg::Pbx => c.pbx.replace(pair),
                };
                // A fresh socket: connected to nobody yet.
                c.peers[leg.index()] = Peer::default();
                deregister(&self.epoll, old.as_ref());
            }
            MediaCmd::Configure { leg, config } => {
                if let Err(e) = c.session.configure_leg(now, leg, *config) {
                    c.fail(leg, e.to_string());
                }
            }
            MediaCmd::Play { leg, playback } => {
                if let Err(e) = c.session.play_prompt(now, leg, playback) {
                    c.fail(leg, e.to_string());
                }
            }
            MediaCmd::StopPrompt(leg) => c.session.stop_prompt(leg),
            MediaCmd::Bridge(on) => c.session.set_bridge(on),
            MediaCmd::DtmfForwarding(on) => c.session.set_dtmf_forwarding(on),
            MediaCmd::StartRecording { recorder, tap } => {
                // A recording already running is finished first, never dropped unfinished.
                stop_tap(&mut c.session, false);
                if let Some(previous) = c.recorder.take() {
                    tracing::warn!(
                        recording = %previous.id(),
                        "a new recording started on a call that was recording; the first is finished"
                    );
                    self.closer.close(Closing {
                        recorder: previous,
                        discard: false,
                        done: None,
                    });
                }
                c.session.start_recording(now, tap);
                c.recorder = Some(recorder);
            }
            MediaCmd::StopRecording { discard, done } => {
                // Synchronous in the core: no frame reaches the file after this.
                stop_tap(&mut c.session, discard);
                match c.recorder.take() {
                    // `done` is answered by the closing thread once the file is closed.
                    Some(recorder) => self.closer.close(Closing {
                        recorder,
                        discard,
                        done: Some(done),
                    }),
                    None => {
                        let _ = done.send(());
                    }
                }
            }
        }
        service(&mut self.deadlines, &mut self.sent, call, c);
    }

    fn readable(&mut self, now: Instant, token: u64, buf: &mut [u8]) {
        let call = token >> 2;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let leg = if token & 2 == 0 {
            Leg::Caller
        } else {
            Leg::Pbx
        };
        let Some(pair) = c.pair(leg) else { return };
        let sock = if token & 1 == 0 {
            &pair.rtp
        } else {
            &pair.rtcp
        };
        match sock.recv_from(buf) {
            Ok((n, from)) => {
                c.session
                    .handle_packet(now, leg, from, buf.get(..n).unwrap_or_default());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                // Spurious readiness, or an ICMP port unreachable from a peer that went away.
                return;
            }
            Err(e) => {
                tracing::debug!(?leg, "RTP receive failed: {e}");
                return;
            }
        }
        service(&mut self.deadlines, &mut self.sent, call, c);
    }

    fn timers(&mut self, now: Instant) {
        while let Some((at, call)) = self.deadlines.pop_due(now) {
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            if !Deadlines::<u64>::is_current(&mut c.slot, at) {
                continue;
            }
            // Includes the recording's timed check: a failure stops the tap and queues
            // `RecordingFailed`, reported by `service`.
            c.session.handle_timeout(now);
            service(&mut self.deadlines, &mut self.sent, call, c);
        }
    }

    /// Ends a call: finalises its recording, frees its ports, reports `Ended`.
    fn end(&mut self, call: u64) {
        let Some(mut c) = self.calls.remove(&call) else {
            return;
        };
        stop_tap(&mut c.session, false);
        if let Some(recorder) = c.recorder.take() {
            self.closer.close(Closing {
                recorder,
                discard: false,
                done: None,
            });
        }
        // Ports go back to the pool before the end is reported.
        deregister(&self.epoll, c.caller.take().as_ref());
        deregister(&self.epoll, c.pbx.take().as_ref());
        let caller = c.session.stats(Leg::Caller);
        let pbx = c.session.stats(Leg::Pbx);
        for s in [&caller, &pbx] {
            self.metrics
                .rtp_packets_in
                .fetch_add(s.packets_received, Ordering::Relaxed);
            self.metrics
                .rtp_packets_lost
                .fetch_add(s.lost, Ordering::Relaxed);
            self.metrics
                .latching_drops
                .fetch_add(s.dropped_latching, Ordering::Relaxed);
        }
        (c.report)(MediaReport::Ended {
            stats: Box::new((caller, pbx)),
        });
    }
}

/// Stops the recording tap; unless the recording is discarded, the writer seals its final
/// segment and hands it to the disk thread here (one segment's sealing, like any other) and
/// the closing thread waits for it to be durable. A failure is kept on the file for `finish`.
/// A tap that had already failed is not closed: its recording then reports the failure (or
/// that it ended without its final segment), never a complete file with a gap.
fn stop_tap(session: &mut MediaSession, discard: bool) {
    let healthy = session.is_recording();
    if let Some(mut tap) = session.stop_recording()
        && healthy
        && !discard
    {
        let _ = tap.close();
    }
}

/// After any input: sends the call's transmits, reports its events, schedules its next wake.
fn service(deadlines: &mut Deadlines<u64>, sent: &mut u64, id: u64, c: &mut Call) {
    for leg in [Leg::Caller, Leg::Pbx] {
        let latched = c.session.latched_peer(leg);
        let peer = c.peers[leg.index()];
        if peer.latched != latched {
            c.peers[leg.index()] = peer.follow(c.pair(leg), latched, leg);
        }
    }
    while let Some(t) = c.session.poll_transmit() {
        if let Some(pair) = c.pair(t.leg) {
            let connected = c.peers[t.leg.index()].connected;
            send(&pair.rtp, connected, &t.payload, t.destination, t.leg, sent);
        }
        c.session.recycle(t.payload);
    }
    while let Some(ev) = c.session.poll_event() {
        if !(c.report)(MediaReport::Event(ev)) {
            break;
        }
    }
    // The session's deadline includes the recording's: one segment duration after the pending
    // segment's first frame, so a recording costs a timer only when silence leaves audio pending.
    deadlines.schedule(id, &mut c.slot, c.session.poll_timeout());
}

/// A leg's RTP socket follows the session's latch: once the leg has latched onto a peer the
/// socket is `connect`ed to it, and sends to that peer carry no address. An unconnected
/// `sendto` looks the route up for every packet; a connected socket keeps it: ~0.35 µs of
/// the ~3 µs a loopback send costs here, on every relayed packet (docs/PERFORMANCE.md).
///
/// Receiving is unchanged in effect: a latched leg admits only its peer (strict source), and
/// the kernel now drops other sources before the session sees them, so
/// `callseal_latching_drops_total` counts only what arrived while the leg was not latched.
/// When the session re-opens latching (a re-INVITE with a new address) the socket is
/// disconnected in the same turn, before any packet of the new peer is read.
#[derive(Debug, Default, Clone, Copy)]
struct Peer {
    /// The session's latched peer when last looked at.
    latched: Option<SocketAddr>,
    /// The address the RTP socket is connected to.
    connected: Option<SocketAddr>,
}

impl Peer {
    /// The state after following the session's latch to `latched`.
    fn follow(self, pair: Option<&RtpPair>, latched: Option<SocketAddr>, leg: Leg) -> Peer {
        let mut next = Peer {
            latched,
            connected: None,
        };
        let Some(pair) = pair else {
            return next;
        };
        if self.connected.is_some()
            && let Err(e) = rustix::net::connect_unspec(&pair.rtp)
        {
            // Still connected to the old peer: the new one would never be heard. Say so;
            // the call's media timeout ends the call if it matters.
            tracing::warn!(
                ?leg,
                "cannot disconnect an RTP socket from its former peer: {e}"
            );
        }
        // A socket bound to the wildcard address would, once connected, receive only on the
        // source address the route to the peer picks, which on a multi-homed host need not be
        // the one the SDP advertised: such sockets stay unconnected.
        let specific = pair
            .rtp
            .local_addr()
            .is_ok_and(|a| !a.ip().to_canonical().is_unspecified());
        if let Some(peer) = latched.filter(|_| specific) {
            match pair.rtp.connect(peer) {
                Ok(()) => next.connected = Some(peer),
                // Unconnected sends still work; only the saving is lost.
                Err(e) => tracing::debug!(?leg, "RTP socket not connected to its peer: {e}"),
            }
        }
        next
    }
}

fn send(
    sock: &UdpSocket,
    connected: Option<SocketAddr>,
    payload: &[u8],
    to: SocketAddr,
    leg: Leg,
    sent: &mut u64,
) {
    let once = || {
        if connected == Some(to) {
            sock.send(payload)
        } else {
            sock.send_to(payload, to)
        }
    };
    // A connected socket reports an ICMP error (the peer's port was closed for a moment, or
    // a forged ICMP) on the next send, which then fails without sending. The error is
    // consumed by that failure: send the packet again rather than lose it.
    let result = match once() {
        Err(e) if is_icmp_error(&e) => once(),
        other => other,
    };
    match result {
        Ok(_) => *sent += 1,
        // A full socket buffer drops the packet, as a real-time path should.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => tracing::debug!(?leg, "RTP send failed: {e}"),
    }
}

fn is_icmp_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::HostUnreachable
            | std::io::ErrorKind::NetworkUnreachable
    )
}

fn deregister(epoll: &OwnedFd, pair: Option<&RtpPair>) {
    if let Some(p) = pair {
        let _ = epoll::delete(epoll, &p.rtp);
        let _ = epoll::delete(epoll, &p.rtcp);
    }
}

/// The wait until `next` (or IDLE), rounded up to whole milliseconds so the loop never wakes
/// just before a deadline and spins.
fn wait_for(next: Option<Instant>) -> Timespec {
    let d = next.map_or(IDLE, |at| {
        at.saturating_duration_since(Instant::now()).min(IDLE)
    });
    let ms = d.as_nanos().div_ceil(1_000_000);
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callseal_media::{RecordingSink, TapFrame, TapSinkError};
    use std::sync::atomic::AtomicBool;

    /// Wants a timed check at once and never takes it (so the session stops it as failed);
    /// notes whether it was closed.
    struct Stuck(Arc<AtomicBool>);

    impl RecordingSink for Stuck {
        fn push_frame(&mut self, _: &TapFrame<'_>) -> Result<(), TapSinkError> {
            Ok(())
        }
        fn next_tick(&self) -> Option<Duration> {
            Some(Duration::ZERO)
        }
        fn close(&mut self) -> Result<(), TapSinkError> {
            self.0.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_failed_tap_is_not_closed_so_its_recording_cannot_read_as_complete() {
        let (a, b) = super::super::random_streams().unwrap();
        let config = SessionConfig {
            latching_window: Duration::from_secs(2),
            media_timeout: None,
            caller_stream: a,
            pbx_stream: b,
        };
        let now = Instant::now();
        for (fail_first, discard, closed) in [
            (true, false, false),
            (false, false, true),
            (false, true, false),
        ] {
            let flag = Arc::new(AtomicBool::new(false));
            let mut session = MediaSession::new(config);
            session.start_recording(now, Box::new(Stuck(flag.clone())));
            if fail_first {
                session.handle_timeout(now);
                assert!(!session.is_recording());
            }
            stop_tap(&mut session, discard);
            assert_eq!(
                flag.load(Ordering::SeqCst),
                closed,
                "failed first {fail_first}, discard {discard}"
            );
        }
    }

    #[test]
    fn a_send_after_an_icmp_error_on_a_connected_socket_still_reaches_the_peer() {
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = peer.local_addr().unwrap();
        ours.connect(to).unwrap();
        // The peer's port closes for a moment: the kernel answers our packet with an ICMP
        // port unreachable, which the connected socket keeps as a pending error.
        drop(peer);
        let mut sent = 0;
        send(&ours, Some(to), b"lost", to, Leg::Caller, &mut sent);
        let peer = UdpSocket::bind(to).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let before = sent;
        send(&ours, Some(to), b"audio", to, Leg::Caller, &mut sent);
        assert_eq!(sent, before + 1, "counted as sent");
        let mut buf = [0u8; 16];
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"audio");
    }
}
