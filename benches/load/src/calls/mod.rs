//! Call setup and teardown through the system under test: a caller (UAC) that sends
//! INVITE, ACK, the consent digit and BYE, and a PBX stand-in (UAS) that answers
//! every INVITE with SDP pointing at the generator's sockets. The system's media
//! ports are learned from the SDP it sends on each side.
//!
//! Legs are not paired: the generator identifies streams by the probe inside each
//! payload, so a B2BUA (new Call-ID on the PBX side) and a proxy (same Call-ID)
//! are measured the same way.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeSpec;

use crate::error::BenchError;
use crate::generator::{SocketPool, Stream};
use crate::probe;
use crate::sip::{self, Msg, Request};

mod pump;

const RETRANSMIT: Duration = Duration::from_millis(1000);
const MAX_TRIES: u32 = 4;
/// Most new INVITEs sent per turn of the setup loop (a turn waits up to 5 ms).
const BURST: usize = 16;

/// How to set up calls.
#[derive(Debug, Clone)]
pub struct Plan {
    pub calls: usize,
    pub sut: SocketAddrV4,
    /// RFC 4733 digit sent by each caller after answer (the consent flow); `None` for a plain proxy.
    pub digit: Option<u8>,
    /// Calls in progress at once.
    pub window: usize,
    /// Pool sockets per side: pool indices `0..per_side` are callers, the rest the PBX side.
    pub per_side: usize,
    pub timeout: Duration,
}

/// Outcome of a setup phase.
#[derive(Debug, Clone)]
pub struct Setup {
    pub wanted: usize,
    pub answered: usize,
    pub pbx_legs: usize,
    pub failed: HashMap<u16, usize>,
    pub elapsed: Duration,
    pub streams: Vec<Stream>,
}

impl Setup {
    pub fn complete(&self) -> bool {
        self.answered == self.wanted && self.pbx_legs == self.wanted
    }
    pub fn rate(&self) -> f64 {
        self.pbx_legs.min(self.answered) as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }
    pub fn detail(&self) -> String {
        let mut codes: Vec<String> = self
            .failed
            .iter()
            .map(|(c, n)| format!("{n}x {}", code_name(*c)))
            .collect();
        codes.sort();
        format!(
            "{} answered the caller, {} reached the PBX stand-in{}",
            self.answered,
            self.pbx_legs,
            if codes.is_empty() {
                String::new()
            } else {
                format!(", failed: {}", codes.join(", "))
            }
        )
    }
}

fn code_name(c: u16) -> String {
    if c == 0 {
        "no answer".into()
    } else {
        format!("status {c}")
    }
}

enum UacState {
    Inviting { last: Instant, tries: u32 },
    Up,
    Failed,
    Byeing { last: Instant, tries: u32 },
    Ended,
}

struct UacCall {
    call_id: String,
    from: String,
    to: String,
    target: String,
    routes: Vec<String>,
    sock: usize,
    media: Option<SocketAddrV4>,
    state: UacState,
}

struct UasLeg {
    tag: String,
    sock: usize,
    media: Option<SocketAddrV4>,
    answer: String,
    /// Where the INVITE came from: the 2xx is retransmitted there until the ACK comes.
    peer: SocketAddr,
    acked: bool,
    /// Last send of the 2xx and the number of sends so far (RFC 3261 §13.3.1.4).
    last: Instant,
    sends: u32,
}

/// The SIP side of the harness: one caller socket, one PBX stand-in socket.
pub struct Driver {
    uac: UdpSocket,
    uas: UdpSocket,
    run: String,
    calls: Vec<UacCall>,
    by_id: HashMap<String, usize>,
    legs: HashMap<String, UasLeg>,
    leg_order: Vec<String>,
    failed: HashMap<u16, usize>,
    buf: Vec<u8>,
}

impl Driver {
    pub fn bind() -> Result<Self, BenchError> {
        let open = || -> Result<UdpSocket, BenchError> {
            let s = UdpSocket::bind("127.0.0.1:0")
                .map_err(|e| BenchError::io("bind a SIP socket on 127.0.0.1", e))?;
            s.set_nonblocking(true)
                .map_err(|e| BenchError::io("set a SIP socket non-blocking", e))?;
            if setsockopt(&s, sockopt::RcvBufForce, &(4usize << 20)).is_err() {
                let _ = setsockopt(&s, sockopt::RcvBuf, &(4usize << 20));
            }
            Ok(s)
        };
        let run = format!(
            "{:x}",
            crate::generator::realtime_ns() ^ u64::from(std::process::id())
        );
        Ok(Self {
            uac: open()?,
            uas: open()?,
            run,
            calls: Vec::new(),
            by_id: HashMap::new(),
            legs: HashMap::new(),
            leg_order: Vec::new(),
            failed: HashMap::new(),
            buf: vec![0; 65_536],
        })
    }

    /// Address of the PBX stand-in, the target the system under test calls.
    pub fn pbx_addr(&self) -> Result<SocketAddrV4, BenchError> {
        v4(self
            .uas
            .local_addr()
            .map_err(|e| BenchError::io("read the PBX stand-in address", e))?)
    }

    fn uac_addr(&self) -> Result<SocketAddrV4, BenchError> {
        v4(self
            .uac
            .local_addr()
            .map_err(|e| BenchError::io("read the caller address", e))?)
    }

    /// Sends one OPTIONS to `sut` and waits up to `wait` for any response.
    pub fn ping(&mut self, sut: SocketAddrV4, wait: Duration) -> Result<bool, BenchError> {
        let via = self.uac_addr()?;
        let id = format!("ping-{}-{}", self.run, crate::generator::realtime_ns());
        let uri = format!("sip:ping@{sut}");
        let req = Request {
            method: "OPTIONS",
            uri: &uri,
            via,
            branch: &id,
            from: "<sip:bench@127.0.0.1>;tag=ping",
            to: &format!("<{uri}>"),
            call_id: &id,
            cseq: 1,
            routes: &[],
            contact: None,
            sdp: None,
        };
        let _ = self.uac.send_to(req.render().as_bytes(), sut);
        let end = Instant::now() + wait;
        while Instant::now() < end {
            wait_readable(&[&self.uac], Duration::from_millis(20));
            while let Ok((n, _)) = self.uac.recv_from(&mut self.buf) {
                if let Some(m) = Msg::parse(&self.buf[..n])
                    && m.status().is_some()
                    && m.call_id() == Some(id.as_str())
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Sets up `plan.calls` calls, bounded by `plan.timeout` and `stop`.
    pub fn setup(
        &mut self,
        plan: &Plan,
        pool: &SocketPool,
        stop: &Arc<AtomicBool>,
    ) -> Result<Setup, BenchError> {
        self.calls.clear();
        self.by_id.clear();
        self.legs.clear();
        self.leg_order.clear();
        self.failed.clear();
        let start = Instant::now();
        let deadline = start + plan.timeout;
        let mut done_at = start;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            let (answered, failed) = self.uac_counts();
            let legs = self.acked_legs();
            if failed + answered.min(legs) >= plan.calls && self.calls.len() == plan.calls {
                break;
            }
            let in_progress = self.calls.len().saturating_sub(failed + legs.min(answered));
            // New INVITEs per turn are capped so a window opening at once does not
            // arrive as one burst that overflows the system's socket buffer.
            let mut room = plan.window.saturating_sub(in_progress).min(BURST);
            while room > 0 && self.calls.len() < plan.calls {
                self.invite(plan, pool)?;
                room -= 1;
            }
            wait_readable(&[&self.uac, &self.uas], Duration::from_millis(5));
            if self.pump(plan, pool)? {
                done_at = Instant::now();
            }
            self.retransmit_invites(plan, pool)?;
            self.retransmit_answers();
        }
        let (answered, _) = self.uac_counts();
        let mut streams = Vec::with_capacity(2 * plan.calls);
        for c in &self.calls {
            if let (UacState::Up, Some(media)) = (&c.state, c.media) {
                streams.push(Stream {
                    local: c.sock,
                    remote: media,
                });
            }
        }
        for id in &self.leg_order {
            if let Some(UasLeg {
                acked: true,
                media: Some(m),
                sock,
                ..
            }) = self.legs.get(id)
            {
                streams.push(Stream {
                    local: *sock,
                    remote: *m,
                });
            }
        }
        let mut failed = self.failed.clone();
        let unanswered = self
            .calls
            .iter()
            .filter(|c| matches!(c.state, UacState::Inviting { .. }))
            .count();
        if unanswered > 0 {
            *failed.entry(0).or_default() += unanswered;
        }
        Ok(Setup {
            wanted: plan.calls,
            answered,
            pbx_legs: self.acked_legs(),
            failed,
            elapsed: done_at.saturating_duration_since(start),
            streams,
        })
    }

    /// Hangs up every answered call from the caller side; returns (ended, total).
    pub fn teardown(
        &mut self,
        plan: &Plan,
        pool: &SocketPool,
        timeout: Duration,
    ) -> Result<(usize, usize), BenchError> {
        let now = Instant::now();
        let mut total = 0;
        for i in 0..self.calls.len() {
            if matches!(self.calls[i].state, UacState::Up) {
                self.calls[i].state = UacState::Byeing {
                    last: now,
                    tries: 1,
                };
                self.send_bye(plan, i)?;
                total += 1;
            }
        }
        let deadline = now + timeout;
        loop {
            let pending = self
                .calls
                .iter()
                .filter(|c| matches!(c.state, UacState::Byeing { .. }))
                .count();
            if pending == 0 || Instant::now() >= deadline {
                return Ok((total - pending, total));
            }
            wait_readable(&[&self.uac, &self.uas], Duration::from_millis(5));
            self.pump(plan, pool)?;
            self.retransmit_answers();
            let now = Instant::now();
            for i in 0..self.calls.len() {
                if let UacState::Byeing { last, tries } = self.calls[i].state
                    && now.duration_since(last) >= RETRANSMIT
                    && tries < MAX_TRIES
                {
                    self.calls[i].state = UacState::Byeing {
                        last: now,
                        tries: tries + 1,
                    };
                    self.send_bye(plan, i)?;
                }
            }
        }
    }

    fn uac_counts(&self) -> (usize, usize) {
        let up = self
            .calls
            .iter()
            .filter(|c| {
                matches!(
                    c.state,
                    UacState::Up | UacState::Byeing { .. } | UacState::Ended
                )
            })
            .count();
        let failed = self
            .calls
            .iter()
            .filter(|c| matches!(c.state, UacState::Failed))
            .count();
        (up, failed)
    }

    fn acked_legs(&self) -> usize {
        self.legs.values().filter(|l| l.acked).count()
    }

    fn invite(&mut self, plan: &Plan, pool: &SocketPool) -> Result<(), BenchError> {
        let i = self.calls.len();
        let call_id = format!("lb{}-{i}@127.0.0.1", self.run);
        let from = format!("<sip:+4930555{i:05}@127.0.0.1>;tag=c{i}");
        let to = format!("<sip:service@{}>", plan.sut);
        let sock = i % plan.per_side;
        self.by_id.insert(call_id.clone(), i);
        self.calls.push(UacCall {
            call_id,
            from,
            to,
            target: format!("sip:service@{}", plan.sut),
            routes: Vec::new(),
            sock,
            media: None,
            state: UacState::Inviting {
                last: Instant::now(),
                tries: 1,
            },
        });
        self.send_invite(plan, pool, i)
    }

    fn send_invite(&self, plan: &Plan, pool: &SocketPool, i: usize) -> Result<(), BenchError> {
        let c = &self.calls[i];
        let sdp = sip::sdp(pool.addr(c.sock)?, i as u64 + 1);
        let branch = format!("{}-{i}-inv", self.run);
        let req = Request {
            method: "INVITE",
            uri: &c.target,
            via: self.uac_addr()?,
            branch: &branch,
            from: &c.from,
            to: &c.to,
            call_id: &c.call_id,
            cseq: 1,
            routes: &[],
            contact: Some(self.uac_addr()?),
            sdp: Some(&sdp),
        };
        let _ = self.uac.send_to(req.render().as_bytes(), plan.sut);
        Ok(())
    }
}

fn v4(a: SocketAddr) -> Result<SocketAddrV4, BenchError> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(BenchError::Internal {
            what: "SIP socket is not IPv4",
        }),
    }
}

/// Waits until one of `socks` is readable or `max` passes.
fn wait_readable(socks: &[&UdpSocket], max: Duration) {
    let mut fds: Vec<PollFd<'_>> = socks
        .iter()
        .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
        .collect();
    let _ = ppoll(&mut fds, Some(TimeSpec::from_duration(max)), None);
}

/// The consent digit: sent from the caller's socket to the system's caller-side
/// media port, as the first RTP of the call.
fn digit_burst(
    pool: &SocketPool,
    sock: usize,
    to: SocketAddrV4,
    digit: u8,
    call: usize,
) -> Result<(), BenchError> {
    let ssrc = 0x2000_0000 | call as u32;
    for p in probe::digit_packets(digit, ssrc, 1, 160) {
        pool.send_from(sock, to, &p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller calls the PBX stand-in directly (the stand-in is the "system"):
    /// every call is answered, acknowledged and hung up, and both directions of
    /// every call become a stream.
    #[test]
    fn calls_straight_to_the_stand_in_are_set_up_and_torn_down() {
        let pool = SocketPool::bind(4).unwrap();
        let mut d = Driver::bind().unwrap();
        let pbx = d.pbx_addr().unwrap();
        assert!(
            !d.ping(pbx, Duration::from_millis(10)).unwrap(),
            "the stand-in answers only while pumped"
        );
        let plan = Plan {
            calls: 30,
            sut: pbx,
            digit: None,
            window: 8,
            per_side: 2,
            timeout: Duration::from_secs(10),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let setup = d.setup(&plan, &pool, &stop).unwrap();
        assert!(setup.complete(), "{}", setup.detail());
        assert_eq!(setup.streams.len(), 60);
        let callers = setup.streams.iter().filter(|s| s.local < 2).count();
        assert_eq!(callers, 30, "one caller-side stream per call");
        assert!(setup.streams.iter().all(|s| s.remote.ip().is_loopback()));
        assert!(setup.rate() > 0.0);
        let (ended, total) = d.teardown(&plan, &pool, Duration::from_secs(5)).unwrap();
        assert_eq!((ended, total), (30, 30));
    }

    #[test]
    fn a_silent_system_fails_setup_with_no_answer() {
        let pool = SocketPool::bind(2).unwrap();
        let mut d = Driver::bind().unwrap();
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(sut) = silent.local_addr().unwrap() else {
            panic!("v4")
        };
        let plan = Plan {
            calls: 3,
            sut,
            digit: Some(1),
            window: 3,
            per_side: 1,
            timeout: Duration::from_millis(600),
        };
        let setup = d
            .setup(&plan, &pool, &Arc::new(AtomicBool::new(false)))
            .unwrap();
        assert!(!setup.complete());
        assert_eq!((setup.answered, setup.pbx_legs), (0, 0));
        assert!(
            setup.detail().contains("3x no answer"),
            "{}",
            setup.detail()
        );
    }
}
