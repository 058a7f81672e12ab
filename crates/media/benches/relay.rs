//! Relay decisions per second on one core, with no syscalls: the media core alone, with and
//! without the recording tap (a copying sink, and the real sealing writer), against a reference
//! measured in the same run — a plain copy of the same packets into a send queue (what any relay
//! must do at least).
//!
//! `cargo bench -p callseal-media --bench relay` prints criterion's timings and then a summary
//! with packets/s and the ratios to the reference. Target: the core ≥ 5 million packets/s.

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callseal_media::{
    Codec, Leg, LegConfig, MediaSession, PayloadMap, RecordingSink, SessionConfig, StreamInit,
    TapFrame, TapSinkError,
};
use criterion::{Criterion, Throughput};

const PTIME: Duration = Duration::from_millis(20);

/// The PBX's next RTP packet: a template whose sequence number and timestamp are advanced in
/// place, the same work for every contender.
struct Source {
    packet: Vec<u8>,
    seq: u16,
    ts: u32,
    now: Instant,
}

impl Source {
    fn new(t0: Instant) -> Self {
        let mut packet = vec![0x80, 8, 0, 0, 0, 0, 0, 0, 0x0B, 0xAD, 0xCA, 0xFE];
        packet.extend_from_slice(&[0xd5; 160]);
        Self {
            packet,
            seq: 1,
            ts: 160,
            now: t0,
        }
    }

    fn next(&mut self) -> (Instant, &[u8]) {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        self.now += PTIME;
        self.packet[2..4].copy_from_slice(&self.seq.to_be_bytes());
        self.packet[4..8].copy_from_slice(&self.ts.to_be_bytes());
        (self.now, &self.packet)
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9)))
}

fn session(t0: Instant) -> MediaSession {
    let mut s = MediaSession::new(SessionConfig {
        latching_window: Duration::from_secs(2),
        media_timeout: Some(Duration::from_secs(30)),
        caller_stream: StreamInit {
            ssrc: 1,
            sequence: 100,
            timestamp: 1000,
        },
        pbx_stream: StreamInit {
            ssrc: 2,
            sequence: 200,
            timestamp: 2000,
        },
    });
    let map = PayloadMap::g711(Codec::Pcma).with_telephone_event(101);
    for (leg, peer) in [
        (Leg::Caller, "127.0.2.10:40000"),
        (Leg::Pbx, "127.0.113.10:30000"),
    ] {
        if s.configure_leg(t0, leg, LegConfig::new(Some(addr(peer)), map))
            .is_err()
        {
            panic!("bench session setup failed");
        }
    }
    s.set_bridge(true);
    s
}

/// A sink that does what a recorder's first step does: copy the frame into its buffer.
struct CopySink {
    buffer: Vec<u8>,
    frames: u64,
}

impl RecordingSink for CopySink {
    fn push_frame(&mut self, frame: &TapFrame<'_>) -> Result<(), TapSinkError> {
        if self.buffer.len() > 1 << 20 {
            self.buffer.clear();
        }
        self.buffer
            .extend_from_slice(&frame.rtp_timestamp.to_be_bytes());
        self.buffer.extend_from_slice(frame.payload);
        self.frames += 1;
        Ok(())
    }
}

/// The gateway's real tap: every frame into the sealed recording writer (ChaCha20-Poly1305
/// segments of 1 s), whose ciphertext goes nowhere (the disk threads' work is not on this path).
struct SealSink {
    writer: callseal_recording::Writer<std::io::Sink>,
}

impl SealSink {
    fn new() -> Self {
        use callseal_recording::keys::{DataKey, EpochId, RecordingId};
        let key = DataKey::generate().expect("OS randomness");
        let id = RecordingId::generate().expect("OS randomness");
        let writer = callseal_recording::Writer::new(
            std::io::sink(),
            &key,
            id,
            EpochId(20_454),
            callseal_recording::WriterConfig::default(),
        )
        .expect("writer");
        Self { writer }
    }
}

impl RecordingSink for SealSink {
    fn push_frame(&mut self, frame: &TapFrame<'_>) -> Result<(), TapSinkError> {
        let leg = match frame.leg {
            callseal_media::Leg::Caller => callseal_recording::Leg::Caller,
            callseal_media::Leg::Pbx => callseal_recording::Leg::Consultant,
        };
        self.writer
            .push_frame(
                leg,
                frame.rtp_timestamp,
                frame.since_start,
                frame.payload_type,
                frame.payload,
            )
            .map_err(|e| TapSinkError {
                reason: e.to_string(),
            })
    }
}

/// Which sink the core's tap feeds.
#[derive(Clone, Copy)]
enum Tap {
    Off,
    Copy,
    Seal,
}

/// What the contenders do with one packet.
enum Contender {
    Copy {
        queue: VecDeque<(SocketAddr, Vec<u8>)>,
        pool: Vec<Vec<u8>>,
        to: SocketAddr,
    },
    Core(Box<MediaSession>),
}

impl Contender {
    fn copy() -> Self {
        Contender::Copy {
            queue: VecDeque::new(),
            pool: Vec::new(),
            to: addr("127.0.2.10:40000"),
        }
    }

    fn core(t0: Instant, tap: Tap) -> Self {
        let mut s = session(t0);
        match tap {
            Tap::Off => {}
            Tap::Copy => s.start_recording(
                t0,
                Box::new(CopySink {
                    buffer: Vec::with_capacity(1 << 21),
                    frames: 0,
                }),
            ),
            Tap::Seal => s.start_recording(t0, Box::new(SealSink::new())),
        }
        Contender::Core(Box::new(s))
    }

    #[inline]
    fn packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> usize {
        match self {
            Contender::Copy { queue, pool, to } => {
                let mut buf = pool.pop().unwrap_or_default();
                buf.extend_from_slice(bytes);
                queue.push_back((*to, buf));
                let mut sent = 0;
                while let Some((dest, mut b)) = queue.pop_front() {
                    black_box((dest, &b));
                    sent += b.len();
                    b.clear();
                    pool.push(b);
                }
                sent
            }
            Contender::Core(s) => {
                s.handle_packet(now, Leg::Pbx, from, bytes);
                let mut sent = 0;
                while let Some(t) = s.poll_transmit() {
                    black_box((t.destination, &t.payload));
                    sent += t.payload.len();
                    s.recycle(t.payload);
                }
                sent
            }
        }
    }
}

fn run(contender: &mut Contender, source: &mut Source, from: SocketAddr, n: u64) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        let (now, p) = source.next();
        bytes += contender.packet(now, from, p);
    }
    bytes
}

/// Packets per second of the best of `rounds` runs of `n` packets.
fn rate(make: &dyn Fn(Instant) -> Contender, n: u64, rounds: u32) -> f64 {
    let from = addr("127.0.113.10:30000");
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t0 = Instant::now();
        let mut contender = make(t0);
        let mut source = Source::new(t0);
        let start = Instant::now();
        let bytes = run(&mut contender, &mut source, from, n);
        let secs = start.elapsed().as_secs_f64();
        assert!(
            bytes == 172 * n as usize,
            "every packet must be relayed ({bytes} bytes)"
        );
        best = best.min(secs);
    }
    n as f64 / best
}

fn criterion_benches(c: &mut Criterion) {
    let from = addr("127.0.113.10:30000");
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(1));
    for (name, tap) in [
        ("copy_reference", None),
        ("core", Some(Tap::Off)),
        ("core_with_tap", Some(Tap::Copy)),
        ("core_with_sealing_tap", Some(Tap::Seal)),
    ] {
        group.bench_function(name, |b| {
            let t0 = Instant::now();
            let mut contender = match tap {
                None => Contender::copy(),
                Some(tap) => Contender::core(t0, tap),
            };
            let mut source = Source::new(t0);
            b.iter(|| {
                let (now, p) = source.next();
                black_box(contender.packet(now, from, p))
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();

    const N: u64 = 2_000_000;
    let copy = rate(&|_| Contender::copy(), N, 5);
    let core = rate(&|t0| Contender::core(t0, Tap::Off), N, 5);
    let tapped = rate(&|t0| Contender::core(t0, Tap::Copy), N, 5);
    let sealed = rate(&|t0| Contender::core(t0, Tap::Seal), N, 5);
    println!();
    println!("relay summary (one core, no syscalls, {N} packets of 172 bytes, best of 5)");
    println!("  reference  plain copy into a send queue    {copy:>12.0} packets/s");
    println!(
        "  core       latch, parse, SSRC state, rewrite {core:>12.0} packets/s  {:.2}x the copy's time",
        copy / core
    );
    println!(
        "  core + tap the same, every frame to a sink    {tapped:>12.0} packets/s  {:.2}x the copy's time; the tap adds {:.0} ns/packet",
        copy / tapped,
        (1.0 / tapped - 1.0 / core) * 1e9
    );
    println!(
        "  core + seal the same, sealed by the recording writer {sealed:>6.0} packets/s  {:.2}x the copy's time; recording adds {:.0} ns/packet",
        copy / sealed,
        (1.0 / sealed - 1.0 / core) * 1e9
    );
    let target = 5_000_000.0;
    let verdict = |r: f64| if r >= target { "MET" } else { "NOT MET" };
    println!(
        "  target >= {target:.0} packets/s: core {}, core + tap {}, core + sealing tap {}",
        verdict(core),
        verdict(tapped),
        verdict(sealed)
    );
}
