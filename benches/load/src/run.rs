//! One measured run: start a system, set up N calls, stream media through them
//! while sampling the system's CPU and memory, hang up, stop the system.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

use crate::calls::{Driver, Plan};
use crate::error::BenchError;
use crate::generator::{self, MediaResult, Schedule, SocketPool, Stream, Window};
use crate::procfs;
use crate::system::{self, Kind, Running};

/// Settings shared by every run.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub sys: system::Setup,
    pub min_warmup: Duration,
    pub max_warmup: Duration,
    pub measure: Duration,
    pub setup_window: usize,
    pub per_side: usize,
    pub gen_core: usize,
    /// Fail a run in which most streams never deliver (set for --quick).
    pub silence_fails: bool,
    pub stop: Arc<AtomicBool>,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub streams: usize,
    pub media: MediaResult,
    /// System CPU in the window, as % of one core per 1000 streams; None for `direct`.
    pub cpu_per_1000: Option<f64>,
    /// The same CPU per process name, as % of one core (not per 1000 streams).
    pub cpu_by_name: Vec<(String, f64)>,
    /// The same CPU per thread kind, (user, kernel) as % of one core, busiest first.
    pub cpu_by_thread: Vec<(String, f64, f64)>,
    /// Busy % of the system's core in the window (everything on it, noise included).
    pub core_busy_pct: Option<f64>,
    /// Memory growth (PSS) from the idle system to the loaded one, per call.
    pub mem_kib_per_call: Option<f64>,
    pub setup_rate: Option<f64>,
    /// System CPU per call setup, in milliseconds.
    pub setup_cpu_ms: Option<f64>,
    pub teardown_failed: usize,
    /// Sealed recordings the gateway wrote in this run (callseal only).
    pub recordings: Option<usize>,
}

/// Runs one step of one system and measures it.
pub fn run_one(
    ctx: &Ctx,
    kind: &Kind,
    calls: usize,
    run_no: usize,
) -> Result<Measured, BenchError> {
    let pool = SocketPool::bind(2 * ctx.per_side)?;
    let mut driver = Driver::bind()?;
    let mut sut = Running::start(kind, &ctx.sys, driver.pbx_addr()?, run_no, calls)?;
    let sip = ctx.sys.sip;
    if *kind != Kind::Direct {
        let log = sut.sip_log();
        let what = kind.name();
        sut.wait_until(what, &log, || {
            driver
                .ping(sip, Duration::from_millis(200))
                .unwrap_or(false)
        })?;
        std::thread::sleep(Duration::from_millis(300));
    }
    let tck = procfs::ticks_per_sec() as f64;
    let idle = procfs::sample(&sut.pids());

    let plan = Plan {
        calls,
        sut: sip,
        digit: match kind {
            Kind::Callseal { record } => Some(if *record { 1 } else { 2 }),
            _ => None,
        },
        window: ctx.setup_window.max(1),
        per_side: ctx.per_side,
        timeout: Duration::from_secs(15) + Duration::from_millis(calls as u64 * 20),
    };
    let (streams, setup_rate) = if *kind == Kind::Direct {
        (direct_streams(&pool, calls, ctx.per_side)?, None)
    } else {
        let setup = driver.setup(&plan, &pool, &ctx.stop)?;
        sut.check_alive()?;
        if !setup.complete() {
            return Err(BenchError::CallSetup {
                system: kind.name().into(),
                wanted: calls,
                established: setup.answered.min(setup.pbx_legs),
                secs: plan.timeout.as_secs(),
                detail: setup.detail(),
                log: sut.sip_log(),
            });
        }
        let rate = setup.rate();
        (setup.streams, Some(rate))
    };
    let after_setup = procfs::sample(&sut.pids());

    let sched = Schedule {
        start: Instant::now() + Duration::from_millis(50),
        min_warmup: ctx.min_warmup,
        max_warmup: ctx.max_warmup.max(ctx.min_warmup),
        measure: ctx.measure,
        drain: Duration::from_millis(300),
    };
    let gen_core = ctx.gen_core;
    let (tx, rx) = mpsc::channel::<Window>();
    let (pool_ref, streams_ref) = (&pool, &streams);
    let (media, window) = std::thread::scope(|scope| {
        let h = scope.spawn(move || {
            pin(gen_core);
            generator::run(pool_ref, streams_ref, sched, &ctx.stop, |w| {
                let _ = tx.send(w);
            })
        });
        // The window is known once every stream flows; sample at its edges.
        let window = rx.recv().ok().map(|w| {
            sleep_until(w.start);
            let first = (
                procfs::sample(&sut.pids()),
                procfs::core_ticks(ctx.sys.sut_core),
            );
            sleep_until(w.end);
            let second = (
                procfs::sample(&sut.pids()),
                procfs::core_ticks(ctx.sys.sut_core),
            );
            (first, second)
        });
        let media = h.join().map_err(|_| BenchError::Internal {
            what: "generator thread panicked",
        });
        (media, window)
    });
    let media = media??;
    let (Some(((s0, c0), (s1, c1))), true) = (window, media.measured) else {
        return Err(BenchError::Interrupted);
    };
    sut.check_alive()?;
    let streams_n = media.streams;
    // In a quick run (light load by design) silence means the system does not relay
    // media at all; in a full run it may be the system collapsing under the step's
    // load, which is a measurement (the loss shows it).
    if ctx.silence_fails && media.silent_streams * 2 > streams_n.max(1) {
        return Err(BenchError::NoMedia {
            system: kind.name().into(),
            silent: media.silent_streams,
            streams: streams_n,
            secs: sched.max_warmup.as_secs(),
            log: sut.sip_log(),
        });
    }
    let teardown_failed = if *kind == Kind::Direct {
        0
    } else {
        let (ended, total) = driver.teardown(
            &plan,
            &pool,
            Duration::from_secs(5) + Duration::from_millis(calls as u64 * 5),
        )?;
        total - ended
    };
    sut.check_alive()?;
    // Every consenting call must have been sealed, and no declining one: otherwise the
    // run did not measure what it claims (recording on or off).
    let recordings = match kind {
        Kind::Callseal { record } => {
            let wanted = if *record { calls } else { 0 };
            let found = sut.await_recordings(
                wanted,
                Duration::from_secs(10) + Duration::from_millis(calls as u64 * 10),
            );
            if found != wanted {
                return Err(BenchError::Recordings {
                    system: kind.name().into(),
                    found,
                    wanted,
                    log: sut.sip_log(),
                });
            }
            Some(found)
        }
        _ => None,
    };
    drop(sut);

    let is_sut = *kind != Kind::Direct;
    let window = media.window.as_secs_f64();
    let cpu = (s1.cpu_ticks.saturating_sub(s0.cpu_ticks)) as f64 / tck;
    let core_busy = match (c0, c1) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64)
        }
        _ => None,
    };
    let mem = s0.mem_kib.max(s1.mem_kib).saturating_sub(idle.mem_kib) as f64;
    Ok(Measured {
        streams: streams_n,
        cpu_per_1000: is_sut.then(|| 100.0 * cpu / window / (streams_n.max(1) as f64 / 1000.0)),
        cpu_by_name: s1
            .by_name_since(&s0)
            .into_iter()
            .map(|(n, t)| (n, 100.0 * t as f64 / tck / window))
            .collect(),
        cpu_by_thread: {
            let pct = |t: u64| 100.0 * t as f64 / tck / window;
            let mut v: Vec<(String, f64, f64)> = s1
                .by_thread_since(&s0)
                .into_iter()
                .map(|(n, u, k)| (n, pct(u), pct(k)))
                .collect();
            v.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
            v
        },
        core_busy_pct: if is_sut { core_busy } else { None },
        mem_kib_per_call: is_sut.then(|| mem / calls.max(1) as f64),
        setup_rate,
        setup_cpu_ms: is_sut.then(|| {
            1000.0 * after_setup.cpu_ticks.saturating_sub(idle.cpu_ticks) as f64
                / tck
                / calls.max(1) as f64
        }),
        teardown_failed,
        recordings,
        media,
    })
}

/// Without a system: every caller socket streams straight to a PBX-side socket and back.
fn direct_streams(
    pool: &SocketPool,
    calls: usize,
    per_side: usize,
) -> Result<Vec<Stream>, BenchError> {
    let mut out = Vec::with_capacity(2 * calls);
    for i in 0..calls {
        let (c, p) = (i % per_side, per_side + i % per_side);
        out.push(Stream {
            local: c,
            remote: pool.addr(p)?,
        });
        out.push(Stream {
            local: p,
            remote: pool.addr(c)?,
        });
    }
    Ok(out)
}

/// Pins the calling thread (and threads it spawns later) to `core`; best effort.
pub fn pin(core: usize) {
    let mut set = CpuSet::new();
    if set.set(core).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

fn sleep_until(t: Instant) {
    let d = t.saturating_duration_since(Instant::now());
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// The SIP address option parsed, loopback only.
pub fn parse_loopback(addr: &str) -> Option<SocketAddrV4> {
    addr.parse::<SocketAddrV4>()
        .ok()
        .filter(|a| a.ip().is_loopback())
}
