//! The command tree of `callseal` (clap derive). Parsing only: no I/O happens here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// callseal: a privacy-first telephony gateway. Calls are recorded only with consent, sealed as
/// they arrive, and become unreadable when their retention ends.
#[derive(Debug, Parser)]
#[command(
    name = "callseal",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Data folder (escrow keys, gateway credentials, sealed recordings).
    #[arg(
        long,
        global = true,
        env = "CALLSEAL_DATA",
        default_value = "callseal-data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
    /// Escrow URL, e.g. https://escrow.hospital.example:7443 (default: the one `callseal init` wrote).
    #[arg(long, global = true, env = "CALLSEAL_ESCROW", value_name = "URL")]
    pub escrow: Option<String>,
    /// CA certificate pinned for the escrow (default: DIR/escrow/tls/ca.pem).
    #[arg(long, global = true, env = "CALLSEAL_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// File holding your operator token, mode 0600 (the token itself may come from CALLSEAL_TOKEN).
    #[arg(long, global = true, env = "CALLSEAL_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Your operator key file, mode 0600 (written by `callseal operator keygen`).
    #[arg(long, global = true, env = "CALLSEAL_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data folder: escrow identity, keyring, TLS CA and certificates, first admin, gateway credentials, pepper.
    Init(InitArgs),
    /// Run the gateway and the escrow together in one process.
    Serve(ServeArgs),
    /// Run only the gateway (SIP/RTP), talking to a remote escrow.
    Gateway(ServeArgs),
    /// Run only the key escrow (HTTPS API).
    Escrow(EscrowArgs),
    /// Manage operators and your own operator key.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// List, inspect, export, play, erase and hold recordings.
    #[command(subcommand)]
    Recordings(RecordingsCmd),
    /// Show or set how long recordings are kept.
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Show retention epochs: upcoming, pending shred and shredded.
    Epochs,
    /// Read and verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Show destruction receipts (all, or the one for a recording or epoch).
    Receipts {
        /// Recording id or epoch id.
        id: Option<String>,
    },
    /// Check this deployment and say how to fix each finding.
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the first admin operator.
    #[arg(long, default_value = "admin")]
    pub admin: String,
    /// Host names and addresses the escrow's TLS certificate is valid for.
    #[arg(long = "escrow-host", default_values_t = vec!["localhost".to_owned(), "127.0.0.1".to_owned()])]
    pub escrow_hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The gateway's configuration file, as given to `callseal serve` or `callseal gateway`
    /// (its prompts folder is checked; without it, the built-in prompts play).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (see deploy/callseal.example.toml).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SIP listen address.
    #[arg(long, value_name = "ADDR")]
    pub sip: Option<String>,
    /// Where consenting callers are bridged to, e.g. sip:counselling@pbx.hospital.example.
    #[arg(long, value_name = "URI")]
    pub pbx: Option<String>,
    /// HTTPS listen address of the in-process escrow's API (`serve` only; default: the address
    /// in the data folder's escrow.url, 127.0.0.1:7443 after `init`). Port 0 picks a free port
    /// and writes it to escrow.url, where the other commands find it.
    #[arg(long, value_name = "ADDR")]
    pub escrow_listen: Option<String>,
    #[command(flatten)]
    pub test_clock: TestClock,
}

#[derive(Debug, Args)]
pub struct EscrowArgs {
    /// HTTPS listen address of the escrow API.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub test_clock: TestClock,
}

/// Test-only clock override (documented in docs/cli.md, hidden from --help).
#[derive(Debug, Args)]
pub struct TestClock {
    /// File holding the escrow's wall-clock time as Unix seconds, re-read on every scheduler
    /// tick. Only honoured by the escrow's test clock; never use it in production.
    #[arg(
        long,
        hide = true,
        env = "CALLSEAL_TEST_CLOCK_FILE",
        value_name = "FILE"
    )]
    pub test_clock_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Enrol an operator (admin only). Prints their token once.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The operator's public key (64 hex digits, from `callseal operator keygen`).
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
    },
    /// List operators.
    List,
    /// Disable an operator: their token stops working at once.
    Disable { name: String },
    /// Read the confidentiality agreement and acknowledge it (activates your account).
    Acknowledge {
        /// Acknowledge without the interactive question (the text is still printed).
        #[arg(long)]
        yes: bool,
    },
    /// Create your operator key file (mode 0600) and print its public key for enrolment.
    Keygen {
        /// Where to write the key (default: --key-file or DIR/operator.key).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Listener,
    Auditor,
    Admin,
    Gateway,
}

#[derive(Debug, Subcommand)]
pub enum RecordingsCmd {
    /// List recordings (newest first).
    List(ListFilter),
    /// Show one recording: metadata, consent evidence, retention, hold, status.
    Show { id: String },
    /// Decrypt a recording locally into a new WAV file (mode 0600). Audited.
    Export {
        id: String,
        /// Why you open it (recorded in the audit log).
        #[arg(long)]
        purpose: Option<String>,
        /// The WAV file to create; it must not exist.
        #[arg(long, short, value_name = "FILE.wav")]
        output: PathBuf,
        #[arg(long, value_enum, default_value_t = Leg::Both)]
        leg: Leg,
    },
    /// Decrypt a recording and play it (or stream WAV to stdout with `--player -`). Audited.
    Play {
        id: String,
        #[arg(long)]
        purpose: Option<String>,
        #[arg(long, value_enum, default_value_t = Leg::Both)]
        leg: Leg,
        /// Player command reading WAV on stdin, or `-` for stdout.
        #[arg(long, default_value = "aplay -q", value_name = "CMD")]
        player: String,
    },
    /// Erase a recording now (its key is shredded). Irreversible.
    Erase {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Put a recording under legal hold: it survives its epoch's shred until released.
    Hold {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a legal hold (a recording past its retention is shredded at once).
    Release { id: String },
}

#[derive(Debug, Args, Default)]
pub struct ListFilter {
    /// Pseudonymous caller code, e.g. C-7KQ2-9XMD.
    #[arg(long = "caller", value_name = "CODE")]
    pub caller_code: Option<String>,
    /// Started at or after (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Started before (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Hospital line.
    #[arg(long, value_name = "LINE")]
    pub line: Option<String>,
    #[arg(long, value_enum)]
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Sealed,
    Held,
    PendingShred,
    Shredded,
    Erased,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Leg {
    Caller,
    Consultant,
    Both,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCmd {
    /// Show the retention policy (default and per line).
    Show,
    /// Set the retention in days (admin only), for one line or the default.
    Set {
        /// Days: 30, 30d or 4w. Months and years are refused (no fixed length).
        #[arg(long, value_name = "N")]
        days: String,
        #[arg(long, value_name = "LINE")]
        line: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// List audit entries, oldest first.
    List {
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
    /// Verify the hash chain and every signature.
    Verify,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_flag_is_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "callseal",
            "recordings",
            "list",
            "--json",
            "--status",
            "pending-shred",
        ])
        .unwrap();
        assert!(cli.global.json);
        match cli.command {
            Command::Recordings(RecordingsCmd::List(f)) => {
                assert_eq!(f.status, Some(Status::PendingShred))
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn export_requires_an_output() {
        let err = Cli::try_parse_from(["callseal", "recordings", "export", "ab", "--purpose", "x"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
