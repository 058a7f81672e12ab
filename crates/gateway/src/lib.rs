//! callseal-gateway: the tokio shell around callseal's sans-IO cores.
//!
//! It owns every socket, timer, file and task: SIP over UDP and TCP feeding the `sip`
//! endpoint, an RTP port pool and one task per call driving the `media` session, the sealed
//! recording files written through the `recording` writer, the escrow client behind a durable
//! outbox, the caller-number pepper, call records, Prometheus metrics and graceful shutdown.
//! It holds no protocol logic: SIP, SDP, consent and media decisions are made by the cores
//! (`sip`, `call`, `media`) and executed here. Not for: parsing, policy, or cryptography
//! beyond calling the `recording` and `escrow` crates.

pub mod config;
pub mod error;
pub mod escrow;
pub mod media_engine;
pub mod metrics;
pub mod outbox;
pub mod ports;
pub mod prompts;
pub mod recorder;
pub mod records;
pub mod secrets;
pub mod shell;
mod start;
pub mod transport;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::Config;
pub use error::GatewayError;
pub use start::{Gateway, start};

/// What `callseal serve` / `callseal gateway` pass in: a config file and command-line
/// overrides (which win over the file).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// TOML config file; None = all defaults.
    pub config_file: Option<PathBuf>,
    /// Overrides `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Overrides `sip.pbx` (`--pbx sip:...`).
    pub pbx: Option<String>,
    /// Overrides `sip.udp` and `sip.tcp` with one address.
    pub sip_listen: Option<SocketAddr>,
    /// Overrides `metrics.listen`.
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeOptions {
    /// No file, no overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the file (if any) and applies the overrides.
    pub fn resolve(&self) -> Result<Config, GatewayError> {
        let mut config = match &self.config_file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(pbx) = &self.pbx {
            config.sip.pbx = Some(pbx.clone());
        }
        if let Some(addr) = self.sip_listen {
            config.sip.udp = vec![addr];
            config.sip.tcp = vec![addr];
        }
        if let Some(addr) = self.metrics_listen {
            config.metrics.listen = Some(addr);
        }
        config.validate()?;
        Ok(config)
    }
}
