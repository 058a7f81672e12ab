//! Load benchmark harness: how many consenting, recorded calls one core carries,
//! measured against rtpengine behind Kamailio on the same machine in the same run.
//! It sets up calls over SIP through each system (its own caller and PBX stand-in),
//! streams G.711 both ways from its own generator pinned to another core, and reads
//! loss and one-way delay from kernel receive timestamps and the system's CPU and
//! memory from /proc. Not a functional test of the gateway: it only checks that
//! calls are carried. Usage and exact commands: benches/README.md.

mod calls;
mod error;
mod generator;
mod opts;
mod probe;
mod procfs;
mod report;
mod run;
mod sip;
mod stats;
mod system;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;

use crate::error::BenchError;
use crate::opts::Opts;
use crate::report::Row;
use crate::run::Ctx;
use crate::system::Kind;

fn main() -> ExitCode {
    let opts = Opts::parse().effective();
    match real_main(opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("callseal-loadbench: {e}");
            if matches!(e, BenchError::Interrupted) { ExitCode::from(130) } else { ExitCode::from(2) }
        }
    }
}

fn real_main(opts: Opts) -> Result<ExitCode, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    install_interrupt(&stop)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || opts.sut_core == opts.gen_core {
        eprintln!("warning: the system under test and the generator share a core; CPU figures include the generator");
    }
    // Everything of the harness (SIP driver included) runs on the generator's core.
    run::pin(opts.gen_core);

    let mut kinds = Vec::new();
    for s in &opts.systems {
        let k = Kind::parse(s).ok_or(BenchError::Internal { what: "unknown system in --systems (direct, reference, callseal, callseal-norec)" })?;
        kinds.push(k);
    }
    if kinds.contains(&Kind::Reference) {
        for (program, package) in [("kamailio", "kamailio"), ("rtpengine", "rtpengine-daemon"), ("taskset", "util-linux")] {
            if !system::have(program) {
                return Err(BenchError::MissingProgram { program, package });
            }
        }
    }
    let callseal_bin = opts.callseal_bin.clone().unwrap_or_else(default_callseal_bin);
    if kinds.iter().any(|k| matches!(k, Kind::Callseal { .. })) {
        if let Err(why) = callseal_ready(&callseal_bin, &opts.callseal_args) {
            if opts.require_callseal {
                return Err(why);
            }
            println!("callseal: SKIPPED: {why}");
            kinds.retain(|k| !matches!(k, Kind::Callseal { .. }));
        }
    }
    let sip = run::parse_loopback(&opts.sip).ok_or(BenchError::Internal { what: "--sip must be an IPv4 loopback address with a port" })?;
    let rtp_ports = parse_range(&opts.rtp_ports).ok_or(BenchError::Internal { what: "--rtp-ports must look like 30000-39999" })?;
    let work = std::env::temp_dir().join(format!("callseal-loadbench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| BenchError::io("create the run folder", e))?;

    let ctx = Ctx {
        sys: system::Setup {
            sut_core: opts.sut_core,
            sip,
            ng_port: opts.ng_port,
            rtp_ports,
            callseal_bin,
            callseal_args: opts.callseal_args.clone(),
            work: work.clone(),
        },
        warmup: Duration::from_secs_f64(opts.warmup.max(0.0)),
        measure: Duration::from_secs_f64(opts.measure.max(0.2)),
        setup_window: opts.setup_window,
        per_side: opts.sockets_per_side.max(1),
        gen_core: opts.gen_core,
        stop: stop.clone(),
    };

    print_header(&opts, &kinds, &work);
    let mut rows = Vec::new();
    let run_no = AtomicUsize::new(0);
    for &calls in &opts.calls {
        for rep in 0..opts.reps.max(1) {
            for kind in &kinds {
                if stop.load(Ordering::Relaxed) {
                    return Err(BenchError::Interrupted);
                }
                let n = run_no.fetch_add(1, Ordering::Relaxed);
                let outcome = run::run_one(&ctx, kind, calls, n);
                if stop.load(Ordering::Relaxed) {
                    return Err(BenchError::Interrupted);
                }
                match &outcome {
                    Ok(m) => println!(
                        "  {:<15} {calls:>5} calls  rep {}  loss {:.3} %  p99 {} ms  CPU/1000 str {} %",
                        kind.name(),
                        rep + 1,
                        m.media.loss_pct(),
                        m.media.delay.quantile_us(0.99).map_or("-".into(), |u| format!("{:.3}", u as f64 / 1000.0)),
                        m.cpu_per_1000.map_or("-".into(), |c| format!("{c:.1}")),
                    ),
                    Err(e) => println!("  {:<15} {calls:>5} calls  rep {}  FAILED: {e}", kind.name(), rep + 1),
                }
                rows.push(Row { system: kind.name().into(), calls, outcome: outcome.map_err(|e| e.to_string()) });
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    let steps = report::steps(&rows);
    println!("\nMedians over {} repetition(s); streams = RTP directions of 50 packets/s:\n", opts.reps.max(1));
    print!("{}", report::table_text(&steps));
    println!("\n{}", report::NOISE);
    let targets = report::targets(&steps);
    if !targets.is_empty() {
        println!("\nTargets:");
        for t in &targets {
            println!("  {t}");
        }
    }
    for s in &steps {
        if s.own_drops > 0 {
            println!("warning: {}: the generator's own sockets dropped {} datagrams; loss figures are overstated", s.system, s.own_drops);
        }
        if s.gen_late_p99_ms.is_some_and(|l| l > 5.0) {
            println!("warning: {} at {} calls: the generator ran late (p99 {:.1} ms): it may be saturated", s.system, s.calls, s.gen_late_p99_ms.unwrap_or(0.0));
        }
    }
    if let Some(path) = &opts.markdown {
        let mut md = report::table_markdown(&steps);
        md.push_str(&format!("\n{}\n\n", report::NOISE));
        for t in &targets {
            md.push_str(&format!("- {t}\n"));
        }
        std::fs::write(path, md).map_err(|e| BenchError::io("write the Markdown report", e))?;
    }

    let failures: Vec<&report::Step> = steps.iter().filter(|s| s.failed > 0 || s.loss_pct.is_some_and(|l| l > opts.max_loss_pct)).collect();
    if opts.keep || !failures.is_empty() {
        println!("\nLogs and generated configurations: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    if opts.quick && !failures.is_empty() {
        for s in failures {
            match &s.first_error {
                Some(e) => eprintln!("FAIL {} at {} calls: {e}", s.system, s.calls),
                None => eprintln!(
                    "FAIL {} at {} calls: {:.2} % of the media was lost (limit {} %): the system is not carrying media",
                    s.system,
                    s.calls,
                    s.loss_pct.unwrap_or(100.0),
                    opts.max_loss_pct
                ),
            }
        }
        return Ok(ExitCode::from(1));
    }
    if opts.quick {
        println!("\nquick: every system carried its calls");
    }
    Ok(ExitCode::SUCCESS)
}

/// First Ctrl-C/SIGTERM: stop every loop and let the runs clean up. Second: kill the
/// children and exit at once.
fn install_interrupt(stop: &Arc<AtomicBool>) -> Result<(), BenchError> {
    let stop = stop.clone();
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            system::kill_all_children();
            std::process::exit(130);
        }
        eprintln!("interrupted: stopping the systems under test (press again to kill them)");
    })
    .map_err(|e| BenchError::io("install the interrupt handler", std::io::Error::other(e)))
}

fn default_callseal_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let release = target.join("release/callseal");
    if release.exists() { release } else { target.join("debug/callseal") }
}

/// The binary exists and its help lists the subcommand the argument template uses.
fn callseal_ready(bin: &Path, args: &str) -> Result<(), BenchError> {
    let sub = args.split_whitespace().scan(false, |after_opt, a| {
        let bare = !a.starts_with('-') && !a.contains('{') && !*after_opt;
        *after_opt = a.starts_with("--") && !a.contains('=');
        Some(bare.then_some(a))
    });
    let sub = sub.flatten().next().unwrap_or("serve").to_string();
    let out = Command::new(bin).arg("--help").stdin(Stdio::null()).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim_start().starts_with(&sub)) => Ok(()),
        _ => Err(BenchError::CallsealNotReady { path: bin.to_path_buf(), subcommand: sub }),
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a < b).then_some((a, b))
}

fn print_header(opts: &Opts, kinds: &[Kind], work: &Path) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    let names: Vec<&str> = kinds.iter().map(Kind::name).collect();
    println!(
        "callseal-loadbench{}: systems {} | calls {:?} | {} rep(s) | warm-up {} s, window {} s | system on core {}, generator on core {} | {} cores, {cpu}",
        if opts.quick { " --quick" } else { "" },
        names.join(","),
        opts.calls,
        opts.reps.max(1),
        opts.warmup,
        opts.measure,
        opts.sut_core,
        opts.gen_core,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!("run folder: {}", work.display());
}
