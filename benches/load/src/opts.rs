//! Command-line options of the load benchmark.

use std::path::PathBuf;

use clap::Parser;

/// Recorded calls per core: callseal against rtpengine behind Kamailio, measured
/// side by side on loopback. See benches/README.md.
#[derive(Debug, Parser)]
#[command(name = "callseal-loadbench", max_term_width = 100)]
pub struct Opts {
    /// CI mode: about 100 calls, a few seconds, exit non-zero if a system fails to carry calls.
    #[arg(long)]
    pub quick: bool,

    /// Systems, run in this order in every repetition (A B A B):
    /// direct, reference, callseal, callseal-norec.
    #[arg(long, value_delimiter = ',', default_value = "reference,callseal,callseal-norec")]
    pub systems: Vec<String>,

    /// Calls per step (each call = 2 RTP streams of 50 packets/s).
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,1500")]
    pub calls: Vec<usize>,

    /// Repetitions of every step; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,

    /// Seconds of media before the measurement window (latching, prompt end).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Seconds of the measurement window.
    #[arg(long, default_value_t = 10.0)]
    pub measure: f64,

    /// Calls in setup at once.
    #[arg(long, default_value_t = 200)]
    pub setup_window: usize,

    /// Core the system under test is pinned to (taskset).
    #[arg(long, default_value_t = 0)]
    pub sut_core: usize,

    /// Core the generator is pinned to (sched_setaffinity).
    #[arg(long, default_value_t = 1)]
    pub gen_core: usize,

    /// Generator sockets per side (caller side, PBX side); calls share them round-robin.
    #[arg(long, default_value_t = 16)]
    pub sockets_per_side: usize,

    /// SIP address of the system under test.
    #[arg(long, default_value = "127.0.0.1:25060")]
    pub sip: String,

    /// rtpengine ng control port (loopback).
    #[arg(long, default_value_t = 25223)]
    pub ng_port: u16,

    /// RTP port range of the system under test.
    #[arg(long, default_value = "30000-39999")]
    pub rtp_ports: String,

    /// The callseal binary (default: target/release/callseal, then target/debug/callseal).
    #[arg(long)]
    pub callseal_bin: Option<PathBuf>,

    /// callseal arguments; {sip} {pbx} {data} {rtp_min} {rtp_max} are filled in.
    #[arg(long, default_value = "--data {data} serve --sip {sip} --pbx {pbx}")]
    pub callseal_args: String,

    /// Fail (instead of skipping callseal) when the callseal binary is missing or not ready.
    #[arg(long)]
    pub require_callseal: bool,

    /// Loss above this percentage fails a --quick run.
    #[arg(long, default_value_t = 1.0)]
    pub max_loss_pct: f64,

    /// Also write the result tables as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,

    /// Keep the run folder (logs, generated configs) even when every run passed.
    #[arg(long)]
    pub keep: bool,
}

impl Opts {
    /// Applies --quick: one short repetition of 100 calls, unless set explicitly.
    pub fn effective(mut self) -> Self {
        if self.quick {
            self.calls = vec![100];
            self.reps = 1;
            self.warmup = 0.5;
            self.measure = 2.0;
            if self.systems == ["reference", "callseal", "callseal-norec"] {
                self.systems = vec!["direct".into(), "reference".into(), "callseal".into()];
            }
        }
        self
    }
}
