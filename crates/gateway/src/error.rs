//! The gateway's error type: each message says what happened and what to do.

use std::path::PathBuf;

/// Everything that can stop the gateway or one of its jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("cannot read config file {path}: {source}; check the path given with --config")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("config{}: {message}", path.as_ref().map(|p| format!(" file {}", p.display())).unwrap_or_default())]
    ConfigParse {
        path: Option<PathBuf>,
        message: String,
    },

    #[error("config setting {setting}: {reason}")]
    ConfigInvalid {
        setting: &'static str,
        reason: String,
    },

    #[error(
        "prompt {name}: {reason}; regenerate it with scripts/make-prompts or remove it to use the built-in one"
    )]
    Prompt { name: String, reason: String },

    #[error(
        "cannot {action} {path}: {source}; check that the folder exists and is writable by this user"
    )]
    Storage {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} has mode {mode:o}; secrets must be 0600 (run: chmod 600 {path})", path = path.display())]
    InsecureMode { path: PathBuf, mode: u32 },

    #[error("{path} is damaged: {reason}; restore it from backup (deleting it loses its secret)", path = path.display())]
    SecretFileDamaged { path: PathBuf, reason: String },

    #[error(
        "cannot bind {what} on {addr}: {source}; is another process using it? change it in the config"
    )]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },

    #[error(
        "RTP port range {min}-{max} is exhausted ({in_use} pairs in use); widen media.port_min/port_max"
    )]
    PortsExhausted { min: u16, max: u16, in_use: usize },

    #[error("system call {call} failed: {source}")]
    System {
        call: &'static str,
        source: std::io::Error,
    },

    #[error("random number generator failed: {0}")]
    Random(String),

    #[error("escrow: {0}")]
    Escrow(String),

    #[error("recording {id}: {reason}")]
    Recording { id: String, reason: String },

    #[error("the gateway task stopped unexpectedly: {0}")]
    TaskFailed(String),
}

impl GatewayError {
    pub(crate) fn storage(
        action: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        Self::Storage {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
