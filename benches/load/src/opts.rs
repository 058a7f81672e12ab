//! Command-line options of the load benchmark.

use std::path::PathBuf;

use clap::Parser;

const DEFAULT_SYSTEMS: [&str; 4] = ["direct", "reference", "callseal", "callseal-norec"];

/// Recorded calls per core: callseal against rtpengine behind Kamailio, measured
/// side by side on loopback. See docs/PERFORMANCE.md.
#[derive(Debug, Parser)]
#[command(name = "callseal-loadbench", max_term_width = 100)]
pub struct Opts {
    /// CI mode: 100 calls, one repetition, a few seconds per system. Like every run it exits
    /// non-zero only when the harness failed (a system did not come up, calls were not set
    /// up, media did not flow), never because a target was missed.
    #[arg(long)]
    pub quick: bool,

    /// Systems, run in this order in every repetition (A B A B):
    /// direct, reference, callseal, callseal-norec.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,reference,callseal,callseal-norec"
    )]
    pub systems: Vec<String>,

    /// Calls per step (each call = 2 RTP streams of 50 packets/s).
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,1500")]
    pub calls: Vec<usize>,

    /// Repetitions of every step; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,

    /// Least seconds of media before the measurement window. The window starts once
    /// every stream delivers (relays latch, prompts end), but not before this.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Most seconds of media before the window; streams still silent then count as lost.
    #[arg(long, default_value_t = 30.0)]
    pub max_warmup: f64,

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

    /// Niceness of the systems under test (start the harness itself with the same,
    /// as scripts/bench-load does); 0 leaves the priority alone.
    #[arg(long, default_value_t = -20, allow_hyphen_values = true)]
    pub nice: i32,

    /// Generator sockets per side (caller side, PBX side); calls share them round-robin.
    #[arg(long, default_value_t = 16)]
    pub sockets_per_side: usize,

    /// SIP address of the system under test (outside --rtp-ports).
    #[arg(long, default_value = "127.0.0.1:21060")]
    pub sip: String,

    /// rtpengine ng control port (loopback; outside --rtp-ports).
    #[arg(long, default_value_t = 21223)]
    pub ng_port: u16,

    /// RTP port range of the system under test (below the kernel's ephemeral range,
    /// 32768 and up, so the generator's own sockets never take one). It must not hold the
    /// SIP or ng port: rtpengine binds its media ports with SO_REUSEADDR, so a media port
    /// equal to the SIP port silently takes the SIP traffic.
    #[arg(long, default_value = "22000-31999")]
    pub rtp_ports: String,

    /// The callseal binary (default: target/release/callseal, then target/debug/callseal).
    #[arg(long)]
    pub callseal_bin: Option<PathBuf>,

    /// Arguments that start the gateway. {config} is the configuration the harness
    /// writes per run (SIP address, PBX stand-in, RTP ports, recording folder);
    /// {data}, {sip} and {pbx} are filled in too.
    #[arg(
        long,
        default_value = "--data {data} serve --config {config} --escrow-listen 127.0.0.1:0"
    )]
    pub callseal_args: String,

    /// Arguments run once before the gateway starts, to create its data folder
    /// ("" to skip).
    #[arg(long, default_value = "--data {data} init")]
    pub callseal_init: String,

    /// Length of each of the gateway's prompts in ms (the harness writes them). The spoken
    /// prompts last 3-33 s of the caller's time, which would make setups/s measure the
    /// prompts, not the gateway; 0 keeps the built-in spoken prompts.
    #[arg(long, default_value_t = 200)]
    pub prompt_ms: u32,

    /// Extra settings of the gateway's `[media]` section, as TOML lines (repeatable), e.g.
    /// `--callseal-media "coalesce_us = 300"`: to compare settings in otherwise equal runs.
    #[arg(long)]
    pub callseal_media: Vec<String>,

    /// Fail (instead of skipping callseal) when the callseal binary is missing or not ready.
    #[arg(long)]
    pub require_callseal: bool,

    /// Also write the result tables as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,

    /// Keep the run folder (logs, generated configs) even when every run passed.
    #[arg(long)]
    pub keep: bool,
}

impl Opts {
    /// Applies --quick: one short repetition of 100 calls through every system.
    pub fn effective(mut self) -> Self {
        if self.quick {
            self.calls = vec![100];
            self.reps = 1;
            self.warmup = 0.5;
            self.measure = 2.0;
            if self.systems == DEFAULT_SYSTEMS {
                self.systems = ["direct", "reference", "callseal", "callseal-norec"]
                    .map(String::from)
                    .to_vec();
            }
        }
        self
    }
}
