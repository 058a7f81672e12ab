//! Errors of the load benchmark. Each message says what failed and what to do.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("could not {what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },

    #[error("`{program}` was not found on PATH; install it (Debian: apt-get install -y {package})")]
    MissingProgram {
        program: &'static str,
        package: &'static str,
    },

    #[error("could not start {system} (`{command}`): {source}")]
    Spawn {
        system: String,
        command: String,
        source: io::Error,
    },

    #[error("{system} exited (status {status}); its log is {}, ending:{tail}", log.display())]
    Exited {
        system: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{system} did not become ready within {secs} s ({detail}); its log is {}, ending:{tail}", log.display())]
    NotReady {
        system: String,
        secs: u64,
        detail: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "{system} set up {established} of {wanted} calls within {secs} s ({detail}); \
         the system under test is not carrying calls, see its log {}",
        log.display()
    )]
    CallSetup {
        system: String,
        wanted: usize,
        established: usize,
        secs: u64,
        detail: String,
        log: PathBuf,
    },

    #[error(
        "{system}: {silent} of {streams} RTP streams delivered no media within {secs} s of the first packet; \
         the system under test is not relaying media, see its log {}",
        log.display()
    )]
    NoMedia {
        system: String,
        silent: usize,
        streams: usize,
        secs: u64,
        log: PathBuf,
    },

    #[error(
        "{system} wrote {found} sealed recordings for {wanted} consenting calls; the consent digit was not \
         honoured, see its log {}",
        log.display()
    )]
    Recordings {
        system: String,
        found: usize,
        wanted: usize,
        log: PathBuf,
    },

    #[error("the callseal binary {} does not exist; build it with `cargo build --release -p callseal-cli` or name it with --callseal-bin", path.display())]
    CallsealMissing { path: PathBuf },

    #[error("interrupted")]
    Interrupted,

    #[error("internal harness error: {what}")]
    Internal { what: &'static str },

    #[error("{what}")]
    Options { what: String },
}

impl BenchError {
    pub fn io(what: &'static str, source: io::Error) -> Self {
        Self::Io { what, source }
    }
}
