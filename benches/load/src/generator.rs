//! The RTP generator and receiver: one thread, pinned to its own core, that paces
//! every stream at 50 packets/s with evenly spread phases, sends in `sendmmsg`
//! batches and receives with `recvmmsg`, reading the kernel's receive timestamp
//! (SO_TIMESTAMPNS) of every datagram and the socket's drop counter (SO_RXQ_OVFL).
//!
//! One-way delay = kernel receive stamp − send stamp written into the payload just
//! before the `sendmmsg` call; both are CLOCK_REALTIME on the same host. Because the
//! receive stamp is taken by the kernel when the datagram is queued, a late
//! generator thread does not inflate the delay it measures.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use nix::sys::time::TimeSpec;

use crate::error::BenchError;
use crate::probe::{self, PACKET_LEN, Probe};
use crate::stats::Histogram;

/// RTP packetisation interval of the G.711 streams (ptime 20).
pub const PERIOD: Duration = Duration::from_millis(20);
const SEND_BATCH: usize = 16;
const RECV_BATCH: usize = 64;
/// Per-socket receive buffer; large enough for a 20 ms burst of thousands of streams.
const RCVBUF: usize = 8 << 20;

/// The generator's UDP sockets, all on 127.0.0.1, created before call setup so
/// their addresses can go into SDP.
pub struct SocketPool {
    sockets: Vec<UdpSocket>,
}

impl SocketPool {
    pub fn bind(count: usize) -> Result<Self, BenchError> {
        let mut sockets = Vec::with_capacity(count);
        for _ in 0..count {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| BenchError::io("bind a generator socket on 127.0.0.1", e))?;
            s.set_nonblocking(true).map_err(|e| BenchError::io("set a generator socket non-blocking", e))?;
            // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the kernel caps at rmem_max.
            if setsockopt(&s, sockopt::RcvBufForce, &RCVBUF).is_err() {
                let _ = setsockopt(&s, sockopt::RcvBuf, &RCVBUF);
            }
            setsockopt(&s, sockopt::ReceiveTimestampns, &true)
                .map_err(|e| BenchError::io("enable SO_TIMESTAMPNS", e.into()))?;
            setsockopt(&s, sockopt::RxqOvfl, &1).map_err(|e| BenchError::io("enable SO_RXQ_OVFL", e.into()))?;
            sockets.push(s);
        }
        Ok(Self { sockets })
    }

    pub fn addr(&self, index: usize) -> Result<SocketAddrV4, BenchError> {
        let s = self.sockets.get(index).ok_or(BenchError::Internal { what: "socket index out of range" })?;
        match s.local_addr().map_err(|e| BenchError::io("read a generator socket address", e))? {
            SocketAddr::V4(a) => Ok(a),
            SocketAddr::V6(_) => Err(BenchError::Internal { what: "generator socket is not IPv4" }),
        }
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Sends one datagram from pool socket `index` (used for the consent digit).
    pub fn send_from(&self, index: usize, to: SocketAddrV4, bytes: &[u8]) -> Result<(), BenchError> {
        let s = self.sockets.get(index).ok_or(BenchError::Internal { what: "socket index out of range" })?;
        s.send_to(bytes, to).map(|_| ()).map_err(|e| BenchError::io("send a telephone-event packet", e))
    }
}

/// One unidirectional stream: sent from pool socket `local` to `remote`.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub local: usize,
    pub remote: SocketAddrV4,
}

/// What one media run measured inside its measurement window.
#[derive(Debug, Clone, Default)]
pub struct MediaResult {
    pub streams: usize,
    pub window: Duration,
    /// Probe packets sent with a sequence number inside the window.
    pub sent: u64,
    /// Distinct window packets received.
    pub received: u64,
    pub duplicates: u64,
    /// Datagrams that carried no probe (prompts, RTCP, events from the system).
    pub foreign: u64,
    /// Datagrams the kernel dropped on the generator's own sockets (SO_RXQ_OVFL).
    pub own_drops: u64,
    pub send_errors: u64,
    pub delay: Histogram,
    /// How late sends left relative to their schedule: shows a saturated generator.
    pub lateness: Histogram,
}

impl MediaResult {
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent as f64
    }
}

/// Timing of one media run, shared with the thread that samples CPU and memory.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    pub warmup: Duration,
    pub measure: Duration,
    pub drain: Duration,
}

impl Schedule {
    pub fn window_start(&self) -> Instant {
        self.start + self.warmup
    }
    pub fn window_end(&self) -> Instant {
        self.start + self.warmup + self.measure
    }
    fn rounds(d: Duration) -> u32 {
        u32::try_from(d.as_micros() / PERIOD.as_micros()).unwrap_or(u32::MAX)
    }
}

/// Runs the streams on the calling thread until the schedule ends or `stop` is set.
/// Stream `i` carries probe stream id `i`.
pub fn run(pool: &SocketPool, streams: &[Stream], sched: Schedule, stop: &Arc<AtomicBool>) -> Result<MediaResult, BenchError> {
    let n = streams.len();
    let warm = Schedule::rounds(sched.warmup);
    let total = warm + Schedule::rounds(sched.measure).max(1);
    let window_len = (total - warm) as usize;
    let words = window_len.div_ceil(64);
    let mut seen = vec![0u64; words * n];
    let mut res = MediaResult { streams: n, window: sched.measure, ..Default::default() };
    let mut drops = vec![0u32; pool.len()];

    // Sorting by socket lets consecutive due packets share one sendmmsg.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| streams[i].local);
    let phase = |j: usize| PERIOD.mul_f64(j as f64 / n.max(1) as f64);
    let mut cursor = (0u32, 0usize); // (round, position in `order`)
    let end = sched.start + PERIOD * total;
    let hard_stop = end + sched.drain;

    let mut tx = vec![[0u8; PACKET_LEN]; SEND_BATCH];
    let mut tx_to: Vec<Option<SockaddrIn>> = Vec::with_capacity(SEND_BATCH);
    let mut tx_hdr = MultiHeaders::<SockaddrIn>::preallocate(SEND_BATCH, None);
    let mut rx = vec![[0u8; 2048]; RECV_BATCH];
    let mut rx_hdr = MultiHeaders::<SockaddrIn>::preallocate(RECV_BATCH, Some(nix::cmsg_space!(TimeSpec, u32)));

    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= hard_stop {
            break;
        }
        // --- send what is due, one socket per batch ---
        let mut batch = 0usize;
        let mut batch_sock = None;
        let mut first_due = now;
        tx_to.clear();
        while cursor.0 < total && batch < SEND_BATCH && n > 0 {
            let (round, pos) = cursor;
            let due = sched.start + PERIOD * round + phase(pos);
            if due > now {
                break;
            }
            let id = order[pos];
            let st = streams[id];
            if batch_sock.is_some_and(|s| s != st.local) {
                break;
            }
            if batch == 0 {
                first_due = due;
            }
            batch_sock = Some(st.local);
            probe::write_probe(&mut tx[batch], 0x4000_0000 | id as u32, Probe { stream: id as u32, seq: round, sent_ns: 0 });
            tx_to.push(Some(SockaddrIn::from(st.remote)));
            batch += 1;
            cursor = if pos + 1 == n { (round + 1, 0) } else { (round, pos + 1) };
        }
        if let (Some(sock), true) = (batch_sock, batch > 0) {
            let stamp = realtime_ns();
            for b in tx.iter_mut().take(batch) {
                probe::restamp(b, stamp);
            }
            res.lateness.record_ns(i64::try_from(now.saturating_duration_since(first_due).as_nanos()).unwrap_or(i64::MAX));
            let iovs: Vec<[IoSlice<'_>; 1]> = tx.iter().take(batch).map(|b| [IoSlice::new(b)]).collect();
            let fd = pool.sockets[sock].as_raw_fd();
            // The per-message results are not read: nix's iterator would read address
            // slots a send never fills. On loopback a UDP send either fails as a whole
            // (the error is returned) or delivers every message, because loopback
            // orphans each skb at once and the send buffer never fills.
            let sent = match sendmmsg(fd, &mut tx_hdr, &iovs, &tx_to, [], MsgFlags::MSG_DONTWAIT) {
                Ok(_) => batch,
                Err(_) => 0,
            };
            res.send_errors += (batch - sent) as u64;
            for b in tx.iter().take(sent) {
                if let Some(p) = probe::read_probe(b) {
                    if p.seq >= warm {
                        res.sent += 1;
                    }
                }
            }
        }

        // --- receive everything queued ---
        let mut got = 0usize;
        for (si, s) in pool.sockets.iter().enumerate() {
            for _ in 0..8 {
                let k = recv_batch(s.as_raw_fd(), &mut rx_hdr, &mut rx, |bytes, stamp, ovfl| {
                    if let Some(o) = ovfl {
                        drops[si] = drops[si].max(o);
                    }
                    let Some(p) = probe::read_probe(bytes) else {
                        res.foreign += 1;
                        return;
                    };
                    let (Some(stamp), true) = (stamp, (p.stream as usize) < n) else {
                        res.foreign += 1;
                        return;
                    };
                    if p.seq < warm || p.seq >= total {
                        return;
                    }
                    let bit = (p.seq - warm) as usize;
                    let w = p.stream as usize * words + bit / 64;
                    if seen[w] & (1 << (bit % 64)) != 0 {
                        res.duplicates += 1;
                        return;
                    }
                    seen[w] |= 1 << (bit % 64);
                    res.received += 1;
                    res.delay.record_ns(stamp as i64 - p.sent_ns as i64);
                });
                got += k;
                if k < RECV_BATCH {
                    break;
                }
            }
        }
        if got > 0 || batch > 0 {
            continue;
        }
        // --- idle: wait for input or the next due send ---
        let next_due = if cursor.0 < total { sched.start + PERIOD * cursor.0 + phase(cursor.1) } else { hard_stop };
        let wait = next_due.saturating_duration_since(Instant::now()).min(Duration::from_millis(2));
        if wait.is_zero() {
            continue;
        }
        let mut fds: Vec<PollFd<'_>> = pool.sockets.iter().map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN)).collect();
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(BenchError::io("wait on generator sockets", e.into())),
        }
    }
    res.own_drops = drops.iter().map(|&d| u64::from(d)).sum();
    Ok(res)
}

/// One non-blocking `recvmmsg`; calls `each(datagram, kernel_stamp_ns, drop_counter)`.
fn recv_batch(
    fd: i32,
    hdr: &mut MultiHeaders<SockaddrIn>,
    bufs: &mut [[u8; 2048]],
    mut each: impl FnMut(&[u8], Option<u64>, Option<u32>),
) -> usize {
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(&mut b[..])]).collect();
    let Ok(msgs) = recvmmsg(fd, hdr, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None) else {
        return 0;
    };
    let mut k = 0;
    for m in msgs {
        k += 1;
        let (mut stamp, mut ovfl) = (None, None);
        if let Ok(cmsgs) = m.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        stamp = Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64);
                    }
                    ControlMessageOwned::RxqOvfl(d) => ovfl = Some(d),
                    _ => {}
                }
            }
        }
        let data = m.iovs().next().unwrap_or(&[]);
        each(&data[..m.bytes.min(data.len())], stamp, ovfl);
    }
    k
}

pub fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
