//! The `callseal` binary: the one tool operators at a hospital use for everything — running the
//! gateway and the key escrow (`serve`, `gateway`, `escrow`), creating a deployment (`init`),
//! managing operators, finding, exporting, erasing and holding recordings, retention, the audit
//! log, destruction receipts, and checking a deployment (`doctor`).
//!
//! It is a thin layer: the escrow decides every access (roles, purposes, audit), the recording
//! crate decrypts and writes WAV, the gateway runs calls. What this crate owns is the operator's
//! experience: clear tables or JSON, one mapping from every error to an exit code and a hint,
//! secrets read only from private files, and plaintext audio written only where the operator
//! asked, never over an existing file and never left behind half-written.
//! It is not a library for other crates.

pub mod args;
pub mod error;
pub mod output;
pub mod plainfile;
pub mod retention;
pub mod secrets;
pub mod timefmt;

mod commands;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::error::{CliError, exit};

/// Parses the command line, runs the command and turns the outcome into an exit status.
pub fn main_entry() -> ExitCode {
    // A core dump of this process could hold a released data key or decoded audio.
    let core_dumps_before = harden_process();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let json = cli.global.json;
    match commands::run(cli, core_dumps_before) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            print_error(&e, json);
            ExitCode::from(e.report().exit)
        }
    }
}

/// Prints an error as `error: …` + `hint: …`, or as one JSON object with `--json`.
pub fn print_error(e: &CliError, json: bool) {
    let r = e.report();
    if json {
        let v = serde_json::json!({ "error": r });
        eprintln!("{v}");
    } else {
        eprintln!("error: {}\n  hint: {}", r.message, r.hint);
    }
}

/// Disables core dumps for this process and makes every file it creates private; returns
/// whether the environment had core dumps enabled.
fn harden_process() -> bool {
    use rustix::process::{
        DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit, umask,
    };
    // Files created without an explicit mode (the escrow's SQLite database and its -wal/-shm
    // journals, folders) would otherwise be 0644/0755 under the usual umask.
    umask(rustix::fs::Mode::from_raw_mode(0o077));
    let before = getrlimit(Resource::Core).current != Some(0);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
    before
}
