//! What recording costs a call in memory and CPU, in-process (no network): `N` real recorders
//! (`Recorder::create` into a temporary folder on the same disk as the build, with a real epoch
//! key) fed 20 ms G.711 frames on both legs at call rate, with the timed seal check when the
//! writer's deadline comes (as the media thread does), for a few seconds of real time.
//!
//! Systems, alternated A B C A B C in the same run:
//! - `none`: the same frame loop into a tap that drops every frame (the floor: what the loop
//!   itself costs);
//! - `reference`: the scheme before group commit, rebuilt here: 1 s segments, a fresh `Vec`
//!   per sealed segment handed to two disk threads, each segment written and `fdatasync`ed on
//!   its own;
//! - `recorder`: the gateway's `Recorder` as it is.
//!
//! Printed per system: heap bytes per recording (after set-up, live in steady state, peak:
//! counted by a global allocator), CPU µs per call-second above `none` (process CPU time, all
//! threads), and the recorder/reference ratios. Targets (docs/PERFORMANCE.md): memory < 64 KiB
//! per recorded call all told (47 KiB of it is the call without recording), recording ≤ 5 %
//! more CPU than not recording.
//!
//!     cargo bench -p callseal-gateway --bench recorder -- [--calls N] [--seconds S] [--reps R]
//!         [--only none|reference|recorder]
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::expect_used)]
// a benchmark
// The only unsafe code: a counting wrapper around the system allocator, to measure the heap.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callseal_gateway::metrics::Metrics;
use callseal_gateway::recorder::Recorder;
use callseal_media::{Codec, FrameKind, Leg, RecordingSink, TapFrame};
use callseal_recording::keys::{DataKey, EpochId, RecordingId, SecretKey};
use callseal_recording::{Leg as RecLeg, Writer, WriterConfig};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const FRAME: Duration = Duration::from_millis(20);
/// How often the frame loop looks at a recording's deadline (the media thread does so through
/// its timer heap, and ticks only when the writer's deadline has come).
const SEAL_CHECK_EVERY: u32 = 12;
const PAYLOAD: usize = 160;
/// Arrival deviation in ms, repeating: mostly on time, sometimes a frame late (so that a
/// 1 s window now and then holds 51 frames of a leg, as on a real network).
const JITTER: [u64; 16] = [0, 1, 0, 2, 0, 0, 1, 0, 9, 0, 1, 0, 3, 0, 0, 14];

#[derive(Clone, Copy, PartialEq, Eq)]
enum System_ {
    None,
    Reference,
    Recorder,
}

impl System_ {
    fn name(self) -> &'static str {
        match self {
            System_::None => "none",
            System_::Reference => "reference",
            System_::Recorder => "recorder",
        }
    }
}

/// One call's recording as the frame loop drives it.
trait Call {
    fn push(&mut self, leg: Leg, ts: u32, since: Duration, payload: &[u8]);
    fn tick(&mut self, since: Duration);
    fn finish(self: Box<Self>);
}

struct Dropping;

impl Call for Dropping {
    fn push(&mut self, _: Leg, _: u32, _: Duration, payload: &[u8]) {
        std::hint::black_box(payload);
    }
    fn tick(&mut self, _: Duration) {}
    fn finish(self: Box<Self>) {}
}

struct Real {
    rec: Recorder,
    tap: Box<dyn RecordingSink>,
}

impl Call for Real {
    fn push(&mut self, leg: Leg, ts: u32, since: Duration, payload: &[u8]) {
        self.tap
            .push_frame(&TapFrame {
                leg,
                ssrc: 7,
                rtp_timestamp: ts,
                sequence: 0,
                arrival: Instant::now(),
                since_start: since,
                payload_type: 0,
                kind: FrameKind::Audio(Codec::Pcmu),
                payload,
            })
            .unwrap();
    }
    fn tick(&mut self, since: Duration) {
        // As the media thread does: only when the writer's deadline has come.
        if self.tap.next_tick().is_some_and(|due| due <= since) {
            self.tap.tick(since).unwrap();
        }
    }
    fn finish(mut self: Box<Self>) {
        self.tap.close().unwrap();
        self.rec.finish().unwrap();
    }
}

/// The scheme before group commit: a fresh Vec per 1 s segment, written and fdatasynced on
/// its own by one of two disk threads.
struct Reference {
    writer: Mutex<Writer<Vec<u8>>>,
    file: Arc<File>,
    lane: SyncSender<RefJob>,
}

enum RefJob {
    Append(Arc<File>, Vec<u8>),
    Barrier(mpsc::Sender<()>),
}

fn reference_lanes() -> Vec<SyncSender<RefJob>> {
    (0..2)
        .map(|_| {
            let (tx, rx): (SyncSender<RefJob>, Receiver<RefJob>) = mpsc::sync_channel(8192);
            std::thread::spawn(move || {
                while let Ok(job) = rx.recv() {
                    match job {
                        RefJob::Append(file, bytes) => {
                            (&*file).write_all(&bytes).unwrap();
                            file.sync_data().unwrap();
                        }
                        RefJob::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
            tx
        })
        .collect()
}

impl Reference {
    fn create(dir: &Path, n: usize, lanes: &[SyncSender<RefJob>]) -> Self {
        let id = RecordingId::generate().unwrap();
        let key = DataKey::generate().unwrap();
        let path = dir.join(format!("{id}.ref"));
        let file = Arc::new(File::create_new(&path).unwrap());
        let config = WriterConfig {
            segment_duration: Duration::from_secs(1),
            ..WriterConfig::default()
        };
        let mut writer = Writer::new(Vec::new(), &key, id, EpochId(20_800), config).unwrap();
        let lane = lanes[n % lanes.len()].clone();
        let header = std::mem::take(writer.get_mut());
        (&*file).write_all(&header).unwrap();
        file.sync_data().unwrap();
        Self {
            writer: Mutex::new(writer),
            file,
            lane,
        }
    }

    fn hand_over(&self, w: &mut Writer<Vec<u8>>, before: u64) {
        if w.stats().segments != before {
            let bytes = std::mem::take(w.get_mut());
            self.lane
                .send(RefJob::Append(self.file.clone(), bytes))
                .unwrap();
        }
    }
}

impl Call for Reference {
    fn push(&mut self, leg: Leg, ts: u32, since: Duration, payload: &[u8]) {
        let mut w = self.writer.lock().unwrap();
        let before = w.stats().segments;
        let leg = match leg {
            Leg::Caller => RecLeg::Caller,
            Leg::Pbx => RecLeg::Consultant,
        };
        w.push_frame(leg, ts, since, 0, payload).unwrap();
        self.hand_over(&mut w, before);
    }
    fn tick(&mut self, since: Duration) {
        let mut w = self.writer.lock().unwrap();
        let before = w.stats().segments;
        w.tick(since).unwrap();
        self.hand_over(&mut w, before);
    }
    fn finish(self: Box<Self>) {
        let w = self.writer.into_inner().unwrap();
        let rest = w.finish().unwrap();
        self.lane
            .send(RefJob::Append(self.file.clone(), rest))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        self.lane.send(RefJob::Barrier(tx)).unwrap();
        rx.recv().unwrap();
    }
}

struct Outcome {
    setup: f64,
    live: f64,
    peak: f64,
    /// Growth of the process's proportional set size over the run (allocator overhead and
    /// retained free memory included; later runs reuse what earlier ones left).
    pss: f64,
    cpu_us_per_call_second: f64,
}

/// User + system CPU time of every thread of the process (`/proc/self/stat`, in USER_HZ ticks,
/// which Linux fixes at 100 per second).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command (which may hold spaces) start at the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = rest
        .split(' ')
        .skip(11) // state ... cmajflt: utime is field 14 of the line, 12th after ')'
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

/// Proportional set size of the process in bytes.
fn pss() -> usize {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn run(
    system: System_,
    calls: usize,
    seconds: u32,
    dir: &Path,
    lanes: &[SyncSender<RefJob>],
) -> Outcome {
    let secret = SecretKey::generate().unwrap();
    let public = secret.public_key();
    let metrics = Arc::new(Metrics::default());
    let pool: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let base = LIVE.load(Ordering::Relaxed);
    let pss_base = pss();
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let mut recs: Vec<Box<dyn Call>> = (0..calls)
        .map(|n| -> Box<dyn Call> {
            match system {
                System_::None => Box::new(Dropping),
                System_::Reference => Box::new(Reference::create(dir, n, lanes)),
                System_::Recorder => {
                    let started = Recorder::create(
                        dir,
                        EpochId(20_800),
                        &public,
                        Duration::from_secs(1),
                        &[101],
                        metrics.clone(),
                    )
                    .unwrap();
                    Box::new(Real {
                        rec: started.recorder,
                        tap: started.tap,
                    })
                }
            }
        })
        .collect();
    let setup = LIVE.load(Ordering::Relaxed).saturating_sub(base);
    // Calls are set up over time (the load harness sets up ~350 a second): call n's audio
    // starts at frame start[n], spread over the first second, so that their segment boundaries
    // are spread as in a real gateway. Memory is measured from the second after.
    let start: Vec<u32> = (0..calls).map(|n| (n * 50 / calls.max(1)) as u32).collect();
    let warm_up = 100;

    let frames = seconds * 50 + warm_up;
    let mut live_sum = 0usize;
    let mut cpu0 = cpu_time();
    let t0 = Instant::now();
    for f in 0..frames {
        let at = t0 + FRAME * f;
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if f == warm_up {
            PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
            cpu0 = cpu_time();
        }
        for (n, rec) in recs.iter_mut().enumerate() {
            let Some(f) = f.checked_sub(start[n]) else {
                continue;
            };
            let since = FRAME * f;
            let j = |leg: usize| {
                Duration::from_millis(JITTER[(f as usize + n * 5 + leg * 7) % JITTER.len()])
            };
            let o = (n * 31 + f as usize * 53) % (pool.len() - PAYLOAD);
            let ts = 160 * f;
            rec.push(Leg::Caller, ts, since + j(0), &pool[o..o + PAYLOAD]);
            rec.push(
                Leg::Pbx,
                ts.wrapping_add(9000),
                since + Duration::from_millis(3) + j(1),
                &pool[o + 1..o + 1 + PAYLOAD],
            );
            if f % SEAL_CHECK_EVERY == 0 {
                rec.tick(since);
            }
        }
        if f >= warm_up {
            live_sum += LIVE.load(Ordering::Relaxed).saturating_sub(base);
        }
    }
    let behind = Instant::now().saturating_duration_since(t0 + FRAME * frames);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let pss_grew = pss().saturating_sub(pss_base);
    // What the disk threads still have queued is part of the cost; the ends of the recordings
    // (one fsync per file in both schemes) are not: a real call lasts minutes, not seconds.
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = cpu_time() - cpu0;
    for rec in recs.drain(..) {
        rec.finish();
    }
    let frames = frames - warm_up;
    if behind > Duration::from_millis(100) {
        println!(
            "  ({}: the frame loop fell {} ms behind real time)",
            system.name(),
            behind.as_millis()
        );
    }
    let per = |b: usize| b as f64 / calls as f64;
    Outcome {
        setup: per(setup),
        live: live_sum as f64 / f64::from(frames) / calls as f64,
        peak: per(peak),
        pss: per(pss_grew),
        cpu_us_per_call_second: cpu.as_secs_f64() * 1e6 / (calls as f64 * f64::from(seconds)),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test --benches` runs one tiny round.
    let quick = !args.iter().any(|a| a == "--bench");
    let calls = arg(&args, "--calls", if quick { 10 } else { 500 });
    let seconds = arg(&args, "--seconds", if quick { 2 } else { 6 });
    let reps = arg(&args, "--reps", if quick { 1 } else { 3 });
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let systems: Vec<System_> = [System_::None, System_::Reference, System_::Recorder]
        .into_iter()
        .filter(|s| only.as_deref().is_none_or(|o| o == s.name()))
        .collect();

    // Beside the build, not in the temporary folder (often tmpfs, where fsync costs nothing).
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let lanes = reference_lanes();
    println!("recording cost: {calls} calls, {seconds} s each run, {reps} runs per system");
    let mut results: Vec<(System_, Vec<Outcome>)> =
        systems.iter().map(|&s| (s, Vec::new())).collect();
    for _ in 0..reps {
        for (system, outcomes) in &mut results {
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            outcomes.push(run(*system, calls, seconds, sub.path(), &lanes));
        }
    }
    let floor = results
        .iter()
        .find(|(s, _)| *s == System_::None)
        .map_or(0.0, |(_, o)| {
            median(o.iter().map(|o| o.cpu_us_per_call_second).collect())
        });
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>12} {:>24}",
        "system",
        "setup B/rec",
        "live B/rec",
        "peak B/rec",
        "PSS+ B/rec",
        "CPU µs/call-s over none"
    );
    let mut summary = Vec::new();
    for (system, outcomes) in &results {
        let m = |f: fn(&Outcome) -> f64| median(outcomes.iter().map(f).collect());
        let cpu = m(|o| o.cpu_us_per_call_second) - floor;
        let (setup, live, peak) = (m(|o| o.setup), m(|o| o.live), m(|o| o.peak));
        println!(
            "{:<10} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>24.1}",
            system.name(),
            setup,
            live,
            peak,
            m(|o| o.pss),
            cpu
        );
        summary.push((*system, live, peak, cpu));
    }
    let get = |s: System_| summary.iter().find(|r| r.0 == s).copied();
    if let (Some(r), Some(n)) = (get(System_::Reference), get(System_::Recorder)) {
        println!(
            "recorder / reference: live heap {:.2}, peak heap {:.2}, CPU over none {:.2}",
            n.1 / r.1,
            n.2 / r.2,
            n.3 / r.3
        );
    }
}
