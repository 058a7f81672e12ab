//! Errors of the load benchmark. Each message says what failed and what to do.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("could not {what}: {source}")]
    Io { what: &'static str, source: io::Error },

    #[error("`{program}` was not found on PATH; install it (Debian: apt-get install -y {package})")]
    MissingProgram { program: &'static str, package: &'static str },

    #[error("could not start {system} (`{command}`): {source}")]
    Spawn { system: String, command: String, source: io::Error },

    #[error("{system} exited during the run (status {status}); its log is {}", log.display())]
    Exited { system: String, status: String, log: PathBuf },

    #[error("{system} did not become ready within {secs} s ({detail}); its log is {}", log.display())]
    NotReady { system: String, secs: u64, detail: String, log: PathBuf },

    #[error(
        "{system} set up {established} of {wanted} calls within {secs} s ({detail}); \
         the system under test is not carrying calls, see its log {}",
        log.display()
    )]
    CallSetup { system: String, wanted: usize, established: usize, secs: u64, detail: String, log: PathBuf },

    #[error("{system} lost {loss_pct:.2} % of the media at {calls} calls (limit {limit_pct} %): the system is not carrying media")]
    MediaLoss { system: String, calls: usize, loss_pct: f64, limit_pct: f64 },

    #[error("the callseal binary {} has no `{subcommand}` subcommand yet; build it with `cargo build --release -p callseal-cli`", path.display())]
    CallsealNotReady { path: PathBuf, subcommand: String },

    #[error("interrupted")]
    Interrupted,

    #[error("internal harness error: {what}")]
    Internal { what: &'static str },
}

impl BenchError {
    pub fn io(what: &'static str, source: io::Error) -> Self {
        Self::Io { what, source }
    }
}
