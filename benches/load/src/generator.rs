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
            let s = UdpSocket::bind("127.0.0.1:0")
                .map_err(|e| BenchError::io("bind a generator socket on 127.0.0.1", e))?;
            s.set_nonblocking(true)
                .map_err(|e| BenchError::io("set a generator socket non-blocking", e))?;
            // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the kernel caps at rmem_max.
            if setsockopt(&s, sockopt::RcvBufForce, &RCVBUF).is_err() {
                let _ = setsockopt(&s, sockopt::RcvBuf, &RCVBUF);
            }
            setsockopt(&s, sockopt::ReceiveTimestampns, &true)
                .map_err(|e| BenchError::io("enable SO_TIMESTAMPNS", e.into()))?;
            setsockopt(&s, sockopt::RxqOvfl, &1)
                .map_err(|e| BenchError::io("enable SO_RXQ_OVFL", e.into()))?;
            sockets.push(s);
        }
        Ok(Self { sockets })
    }

    pub fn addr(&self, index: usize) -> Result<SocketAddrV4, BenchError> {
        let s = self.sockets.get(index).ok_or(BenchError::Internal {
            what: "socket index out of range",
        })?;
        match s
            .local_addr()
            .map_err(|e| BenchError::io("read a generator socket address", e))?
        {
            SocketAddr::V4(a) => Ok(a),
            SocketAddr::V6(_) => Err(BenchError::Internal {
                what: "generator socket is not IPv4",
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Sends one datagram from pool socket `index` (used for the consent digit).
    pub fn send_from(
        &self,
        index: usize,
        to: SocketAddrV4,
        bytes: &[u8],
    ) -> Result<(), BenchError> {
        let s = self.sockets.get(index).ok_or(BenchError::Internal {
            what: "socket index out of range",
        })?;
        s.send_to(bytes, to)
            .map(|_| ())
            .map_err(|e| BenchError::io("send a telephone-event packet", e))
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
    /// Streams that had delivered no recent probe when the window was placed.
    pub silent_streams: usize,
    /// Media time before the window (until every stream flowed).
    pub warmup: Duration,
    /// False when the run stopped before the window was placed.
    pub measured: bool,
}

impl MediaResult {
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent as f64
    }
}

/// Timing of one media run. The measurement window is not fixed in advance: it
/// starts once every stream delivers probes (a gateway plays its prompts first, and
/// a relay latches each leg when its first packet comes), but never before
/// `min_warmup` and at the latest at `max_warmup`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    pub min_warmup: Duration,
    pub max_warmup: Duration,
    pub measure: Duration,
    pub drain: Duration,
}

/// Where the measurement window was placed, told to the CPU sampler once known.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

/// A stream counts as flowing when it delivered a probe sent this recently.
const FLOWING: Duration = Duration::from_millis(500);

fn rounds(d: Duration) -> u32 {
    u32::try_from(d.as_micros() / PERIOD.as_micros()).unwrap_or(u32::MAX)
}

/// The window once placed: probe rounds `warm..total` are measured.
struct Placed {
    warm: u32,
    total: u32,
    words: usize,
    seen: Vec<u64>,
}

/// Runs the streams on the calling thread until the window has been measured or
/// `stop` is set. Stream `i` carries probe stream id `i`. `on_window` is called
/// once, as soon as the window is placed.
pub fn run(
    pool: &SocketPool,
    streams: &[Stream],
    sched: Schedule,
    stop: &Arc<AtomicBool>,
    mut on_window: impl FnMut(Window),
) -> Result<MediaResult, BenchError> {
    let n = streams.len();
    let measure_rounds = rounds(sched.measure).max(1);
    let mut placed: Option<Placed> = None;
    // Send time of the newest probe received on each stream (0 = none yet).
    let mut last_sent_seen = vec![0u64; n];
    let mut res = MediaResult {
        streams: n,
        window: sched.measure,
        ..Default::default()
    };
    let mut drops = vec![0u32; pool.len()];

    // Sorting by socket lets consecutive due packets share one sendmmsg.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| streams[i].local);
    let phase = |j: usize| PERIOD.mul_f64(j as f64 / n.max(1) as f64);
    let mut cursor = (0u32, 0usize); // (round, position in `order`)
    let mut total = u32::MAX;
    let mut hard_stop = sched.start + sched.max_warmup + sched.measure + sched.drain + PERIOD * 4;
    let mut next_check = sched.start + sched.min_warmup;
    let mut all_sent = false;

    let mut tx = vec![[0u8; PACKET_LEN]; SEND_BATCH];
    let mut tx_to: Vec<Option<SockaddrIn>> = Vec::with_capacity(SEND_BATCH);
    let mut tx_hdr = MultiHeaders::<SockaddrIn>::preallocate(SEND_BATCH, None);
    let mut rx = vec![[0u8; 2048]; RECV_BATCH];
    let mut rx_hdr =
        MultiHeaders::<SockaddrIn>::preallocate(RECV_BATCH, Some(nix::cmsg_space!(TimeSpec, u32)));

    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= hard_stop {
            break;
        }
        // --- place the window once every stream flows (or the warm-up is over) ---
        if placed.is_none() && now >= next_check {
            next_check = now + PERIOD;
            let floor = realtime_ns().saturating_sub(FLOWING.as_nanos() as u64);
            let silent = last_sent_seen.iter().filter(|&&t| t < floor).count();
            if silent == 0 || now >= sched.start + sched.max_warmup {
                // Two rounds ahead: no probe of the window has been sent yet.
                let warm = cursor.0 + 2;
                total = warm.saturating_add(measure_rounds);
                let words = (measure_rounds as usize).div_ceil(64);
                placed = Some(Placed {
                    warm,
                    total,
                    words,
                    seen: vec![0u64; words * n],
                });
                res.silent_streams = silent;
                res.warmup = PERIOD * warm;
                let window = Window {
                    start: sched.start + PERIOD * warm,
                    end: sched.start + PERIOD * total,
                };
                hard_stop = window.end + sched.drain;
                on_window(window);
            }
        }
        // --- send what is due, one socket per batch ---
        let mut batch = 0usize;
        let mut batch_sock = None;
        let mut first_due = now;
        tx_to.clear();
        if cursor.0 >= total && !all_sent {
            // A generator that fell behind sends the window late; its packets still
            // get their drain time instead of being counted as lost.
            all_sent = true;
            hard_stop = hard_stop.max(now + sched.drain);
        }
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
            probe::write_probe(
                &mut tx[batch],
                0x4000_0000 | id as u32,
                Probe {
                    stream: id as u32,
                    seq: round,
                    sent_ns: 0,
                },
            );
            tx_to.push(Some(SockaddrIn::from(st.remote)));
            batch += 1;
            cursor = if pos + 1 == n {
                (round + 1, 0)
            } else {
                (round, pos + 1)
            };
        }
        if let (Some(sock), true) = (batch_sock, batch > 0) {
            let stamp = realtime_ns();
            for b in tx.iter_mut().take(batch) {
                probe::restamp(b, stamp);
            }
            res.lateness.record_ns(
                i64::try_from(now.saturating_duration_since(first_due).as_nanos())
                    .unwrap_or(i64::MAX),
            );
            let iovs: Vec<[IoSlice<'_>; 1]> =
                tx.iter().take(batch).map(|b| [IoSlice::new(b)]).collect();
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
            if let Some(w) = &placed {
                res.sent += tx
                    .iter()
                    .take(sent)
                    .filter_map(|b| probe::read_probe(b))
                    .filter(|p| p.seq >= w.warm)
                    .count() as u64;
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
                    let (Some(stamp), Some(last)) =
                        (stamp, last_sent_seen.get_mut(p.stream as usize))
                    else {
                        res.foreign += 1;
                        return;
                    };
                    *last = (*last).max(p.sent_ns);
                    let Some(w) = placed.as_mut() else { return };
                    if p.seq < w.warm || p.seq >= w.total {
                        return;
                    }
                    let bit = (p.seq - w.warm) as usize;
                    let i = p.stream as usize * w.words + bit / 64;
                    if w.seen[i] & (1 << (bit % 64)) != 0 {
                        res.duplicates += 1;
                        return;
                    }
                    w.seen[i] |= 1 << (bit % 64);
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
        let next_due = if cursor.0 < total {
            sched.start + PERIOD * cursor.0 + phase(cursor.1)
        } else {
            hard_stop
        };
        let wait = next_due
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(2));
        if wait.is_zero() {
            continue;
        }
        let mut fds: Vec<PollFd<'_>> = pool
            .sockets
            .iter()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(BenchError::io("wait on generator sockets", e.into())),
        }
    }
    res.own_drops = drops.iter().map(|&d| u64::from(d)).sum();
    res.measured = placed.is_some();
    Ok(res)
}

/// One non-blocking `recvmmsg`; calls `each(datagram, kernel_stamp_ns, drop_counter)`.
fn recv_batch(
    fd: i32,
    hdr: &mut MultiHeaders<SockaddrIn>,
    bufs: &mut [[u8; 2048]],
    mut each: impl FnMut(&[u8], Option<u64>, Option<u32>),
) -> usize {
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
        .iter_mut()
        .map(|b| [IoSliceMut::new(&mut b[..])])
        .collect();
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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(min: u64, max: u64, measure: u64) -> Schedule {
        Schedule {
            start: Instant::now() + Duration::from_millis(20),
            min_warmup: Duration::from_millis(min),
            max_warmup: Duration::from_millis(max),
            measure: Duration::from_millis(measure),
            drain: Duration::from_millis(100),
        }
    }

    #[test]
    fn streams_between_own_sockets_lose_nothing_and_place_the_window_early() {
        let pool = SocketPool::bind(2).unwrap();
        let streams: Vec<Stream> = (0..20)
            .map(|i| Stream {
                local: i % 2,
                remote: pool.addr(1 - i % 2).unwrap(),
            })
            .collect();
        let mut windows = Vec::new();
        let stop = Arc::new(AtomicBool::new(false));
        let res = run(&pool, &streams, sched(100, 2000, 400), &stop, |w| {
            windows.push(w)
        })
        .unwrap();
        assert_eq!(windows.len(), 1);
        assert!(res.measured);
        assert_eq!(res.silent_streams, 0);
        assert!(
            res.warmup < Duration::from_millis(1000),
            "window placed late: {:?}",
            res.warmup
        );
        assert_eq!(res.sent, 20 * 20, "20 streams x 20 rounds of 20 ms");
        assert_eq!(res.received, res.sent);
        assert_eq!(res.duplicates, 0);
        assert!(res.loss_pct() == 0.0);
        let p99 = res.delay.quantile_us(0.99).unwrap();
        assert!(p99 < 50_000, "loopback p99 {p99} us");
    }

    #[test]
    fn a_stream_nobody_relays_is_silent_and_counts_as_lost() {
        let pool = SocketPool::bind(2).unwrap();
        // A socket outside the pool: its datagrams are never read back.
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(sink_addr) = sink.local_addr().unwrap() else {
            panic!("v4")
        };
        let streams = vec![
            Stream {
                local: 0,
                remote: pool.addr(1).unwrap(),
            },
            Stream {
                local: 1,
                remote: pool.addr(0).unwrap(),
            },
            Stream {
                local: 0,
                remote: sink_addr,
            },
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let res = run(&pool, &streams, sched(100, 300, 200), &stop, |_| {}).unwrap();
        assert_eq!(res.silent_streams, 1);
        assert!(
            res.warmup >= Duration::from_millis(300),
            "waited for the silent stream until max_warmup"
        );
        assert_eq!(res.sent, 3 * 10);
        assert_eq!(res.received, 2 * 10);
        assert!((res.loss_pct() - 100.0 / 3.0).abs() < 0.01);
    }

    #[test]
    fn stop_ends_the_run_without_a_window() {
        let pool = SocketPool::bind(1).unwrap();
        let SocketAddr::V4(nowhere) = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
        else {
            panic!("v4")
        };
        let stop = Arc::new(AtomicBool::new(true));
        let res = run(
            &pool,
            &[Stream {
                local: 0,
                remote: nowhere,
            }],
            sched(0, 100, 100),
            &stop,
            |_| {},
        )
        .unwrap();
        assert!(!res.measured);
    }
}
