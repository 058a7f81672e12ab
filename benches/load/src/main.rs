//! Load benchmark harness: how many consenting, recorded calls one core carries,
//! measured against rtpengine behind Kamailio on the same machine in the same run.
//! It sets up calls over SIP through each system (its own caller and PBX stand-in),
//! streams G.711 both ways from its own generator pinned to another core, and reads
//! loss and one-way delay from kernel receive timestamps and the system's CPU and
//! memory from /proc. Not a functional test of the gateway: it only checks that
//! calls are carried. Usage, exact commands and results: docs/PERFORMANCE.md.

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
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
            if matches!(e, BenchError::Interrupted) {
                ExitCode::from(130)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

fn real_main(opts: Opts) -> Result<ExitCode, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    install_interrupt(&stop)?;
    // Counted before the harness pins itself (afterwards only one core is visible).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || opts.sut_core == opts.gen_core {
        eprintln!(
            "warning: the system under test and the generator share a core; CPU figures include the generator"
        );
    }
    // Everything of the harness (SIP driver included) runs on the generator's core.
    run::pin(opts.gen_core);

    let mut kinds = Vec::new();
    for s in &opts.systems {
        let k = Kind::parse(s).ok_or(BenchError::Internal {
            what: "unknown system in --systems (direct, reference, callseal, callseal-norec)",
        })?;
        kinds.push(k);
    }
    if kinds.contains(&Kind::Reference) {
        for (program, package) in [("kamailio", "kamailio"), ("rtpengine", "rtpengine-daemon")] {
            if !system::have(program) {
                return Err(BenchError::MissingProgram { program, package });
            }
        }
    }
    if kinds.iter().any(|k| *k != Kind::Direct) && !system::have("taskset") {
        return Err(BenchError::MissingProgram {
            program: "taskset",
            package: "util-linux",
        });
    }
    let callseal_bin = opts
        .callseal_bin
        .clone()
        .unwrap_or_else(default_callseal_bin);
    // The systems run in their own run folders: a relative path must not depend on the cwd.
    let callseal_bin = std::fs::canonicalize(&callseal_bin).unwrap_or(callseal_bin);
    if kinds.iter().any(|k| matches!(k, Kind::Callseal { .. })) && !callseal_bin.exists() {
        let why = BenchError::CallsealMissing {
            path: callseal_bin.clone(),
        };
        if opts.require_callseal {
            return Err(why);
        }
        println!("callseal: SKIPPED: {why}");
        kinds.retain(|k| !matches!(k, Kind::Callseal { .. }));
    }
    let sip = run::parse_loopback(&opts.sip).ok_or(BenchError::Internal {
        what: "--sip must be an IPv4 loopback address with a port",
    })?;
    let rtp_ports = parse_range(&opts.rtp_ports).ok_or(BenchError::Internal {
        what: "--rtp-ports must look like 22000-31999",
    })?;
    check_ports(sip.port(), opts.ng_port, rtp_ports)?;
    let work = std::env::temp_dir().join(format!("callseal-loadbench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| BenchError::io("create the run folder", e))?;

    let ctx = Ctx {
        sys: system::Setup {
            sut_core: opts.sut_core,
            nice: opts.nice,
            sip,
            ng_port: opts.ng_port,
            rtp_ports,
            callseal_bin,
            callseal_args: opts.callseal_args.clone(),
            callseal_init: opts.callseal_init.clone(),
            prompt_ms: opts.prompt_ms,
            callseal_media: opts.callseal_media.clone(),
            work: work.clone(),
        },
        min_warmup: Duration::from_secs_f64(opts.warmup.max(0.0)),
        max_warmup: Duration::from_secs_f64(opts.max_warmup.max(opts.warmup).max(1.0)),
        measure: Duration::from_secs_f64(opts.measure.max(0.2)),
        setup_window: opts.setup_window,
        per_side: opts.sockets_per_side.max(1),
        gen_core: opts.gen_core,
        silence_fails: opts.quick,
        stop: stop.clone(),
    };

    print_header(&opts, &kinds, &work, cores);
    let mut rows = Vec::new();
    let mut run_no = 0;
    for &calls in &opts.calls {
        for rep in 0..opts.reps.max(1) {
            for kind in &kinds {
                if stop.load(Ordering::Relaxed) {
                    return Err(BenchError::Interrupted);
                }
                let outcome = run::run_one(&ctx, kind, calls, run_no);
                run_no += 1;
                if stop.load(Ordering::Relaxed) {
                    return Err(BenchError::Interrupted);
                }
                match &outcome {
                    Ok(m) => println!(
                        "  {:<15} {calls:>5} calls  rep {}  {}",
                        kind.name(),
                        rep + 1,
                        report::run_line(m)
                    ),
                    Err(e) => println!(
                        "  {:<15} {calls:>5} calls  rep {}  FAILED: {e}",
                        kind.name(),
                        rep + 1
                    ),
                }
                rows.push(Row {
                    system: kind.name().into(),
                    calls,
                    outcome: outcome.map_err(|e| e.to_string()),
                });
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    let steps = report::steps(&rows);
    let text = report::render(&steps, opts.reps.max(1), false);
    print!("\n{text}");
    if let Some(path) = &opts.markdown {
        std::fs::write(path, report::render(&steps, opts.reps.max(1), true))
            .map_err(|e| BenchError::io("write the Markdown report", e))?;
    }

    let failures: Vec<&report::Step> = steps.iter().filter(|s| s.failed > 0).collect();
    if opts.keep || !failures.is_empty() {
        println!("\nLogs and generated configurations: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    for s in &failures {
        eprintln!(
            "FAIL {} at {} calls ({} of {} runs): {}",
            s.system,
            s.calls,
            s.failed,
            s.runs,
            s.first_error.as_deref().unwrap_or("unknown error")
        );
    }
    // A full run goes past the reference's capacity on purpose: a system that fails at
    // a large step but was measured at smaller ones has shown its limit. A system that
    // was never measured, or any failure in a quick run, is a failure of the harness.
    let never: Vec<&str> = kinds
        .iter()
        .map(Kind::name)
        .filter(|k| !steps.iter().any(|s| s.system == *k && s.failed < s.runs))
        .collect();
    if (opts.quick && !failures.is_empty()) || !never.is_empty() {
        eprintln!(
            "the harness could not measure {}: fix the failure above (a missed target is never the reason)",
            if never.is_empty() {
                "every step".to_string()
            } else {
                never.join(", ")
            }
        );
        return Ok(ExitCode::from(1));
    }
    if failures.is_empty() {
        println!(
            "\nEvery system set up its calls and carried media; the figures above are the measurement."
        );
    } else {
        println!(
            "\nEvery system was measured; the steps marked FAIL were beyond what that system carried here."
        );
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
    if release.exists() {
        release
    } else {
        target.join("debug/callseal")
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a < b).then_some((a, b))
}

/// The SIP and ng ports must lie outside the media port range. rtpengine binds its media
/// ports with SO_REUSEADDR, and on Linux two UDP sockets that both set it may share a port:
/// once a call's media port equals Kamailio's SIP port, SIP for the proxy lands in
/// rtpengine's media socket and the reference stalls on 408s (seen as "most calls of a
/// 1000-call run never set up", depending on which ports rtpengine happened to pick).
fn check_ports(sip: u16, ng: u16, (min, max): (u16, u16)) -> Result<(), BenchError> {
    for (name, port) in [("--sip", sip), ("--ng-port", ng)] {
        if (min..=max).contains(&port) {
            return Err(BenchError::Options {
                what: format!(
                    "{name} port {port} lies inside --rtp-ports {min}-{max}: a media port could take \
                     it over; choose a port outside the range"
                ),
            });
        }
    }
    if sip == ng {
        return Err(BenchError::Options {
            what: format!("--sip and --ng-port are both {sip}; give them different ports"),
        });
    }
    Ok(())
}

fn print_header(opts: &Opts, kinds: &[Kind], work: &Path, cores: usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let names: Vec<&str> = kinds.iter().map(Kind::name).collect();
    println!(
        "callseal-loadbench{}: systems {} | calls {:?} | {} rep(s) | warm-up {}-{} s, window {} s | system on core {}, generator on core {} | {cores} cores, {cpu}",
        if opts.quick { " --quick" } else { "" },
        names.join(","),
        opts.calls,
        opts.reps.max(1),
        opts.warmup,
        opts.max_warmup,
        opts.measure,
        opts.sut_core,
        opts.gen_core,
    );
    println!("run folder: {}", work.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ports_inside_the_media_range_are_refused_with_the_fix() {
        assert!(check_ports(21060, 21223, (22000, 31999)).is_ok());
        let err = check_ports(23060, 21223, (22000, 31999))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--sip port 23060 lies inside --rtp-ports 22000-31999"),
            "{err}"
        );
        assert!(err.contains("choose a port outside"), "{err}");
        let err = check_ports(21060, 31999, (22000, 31999))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--ng-port"), "{err}");
        assert!(check_ports(21060, 21060, (22000, 31999)).is_err());
    }

    #[test]
    fn the_default_ports_do_not_collide() {
        let opts = Opts::parse_from(["callseal-loadbench"]);
        let sip = run::parse_loopback(&opts.sip).unwrap();
        let range = parse_range(&opts.rtp_ports).unwrap();
        check_ports(sip.port(), opts.ng_port, range).unwrap();
    }
}
