//! Every failure the `callseal` binary can report, and the one function that turns it into an
//! exit code, a stable machine-readable code and a hint saying what to do next.
//!
//! Messages never contain secrets (tokens, keys) nor caller numbers: only recording ids, paths
//! the operator typed, dates and counts.

use std::path::PathBuf;

/// An error of the `callseal` binary. `Display` says what happened; [`CliError::report`] adds
/// what to do and the exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{message}")]
    Usage { message: String },
    #[error("no recording with id {id} is known to the escrow")]
    UnknownRecording { id: String },
    #[error("{id:?} is not a recording id: ids are 32 hex digits")]
    MalformedRecordingId { id: String },
    #[error(
        "the key of recording {id} was shredded on {shredded_on}: the recording can never be opened again"
    )]
    KeyShredded { id: String, shredded_on: String },
    #[error("recording {id} was erased{}: it can never be opened again", on_date(.erased_on))]
    RecordingErased {
        id: String,
        erased_on: Option<String>,
    },
    #[error("recording {id} is under legal hold")]
    LegalHold { id: String },
    #[error("a purpose is required to open a recording")]
    PurposeMissing,
    #[error("the purpose is {len} characters long; at most {max} are accepted")]
    PurposeTooLong { len: usize, max: usize },
    #[error("a reason is required to erase a recording")]
    ReasonMissing,
    #[error("your role does not allow this: {action} needs the {needed} role")]
    WrongRole { action: String, needed: String },
    #[error("your token has expired{}", on_date(.expired_at))]
    TokenExpired { expired_at: Option<String> },
    #[error("the escrow does not accept this token")]
    TokenRejected,
    #[error("no operator token: CALLSEAL_TOKEN is not set and {path} does not exist")]
    TokenMissing { path: PathBuf },
    #[error("{what} {path} is readable or writable by other users (mode {mode:04o})")]
    InsecureFileMode {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error(
        "your operator account is not active yet: the confidentiality agreement has not been acknowledged"
    )]
    AgreementPending,
    #[error(
        "not acknowledged: the answer was not \"yes\"; nothing was recorded and your account is as it was"
    )]
    AgreementDeclined,
    #[error("operator {name} is disabled")]
    OperatorDisabled { name: String },
    #[error("no operator named {name}")]
    UnknownOperator { name: String },
    #[error("an operator named {name} already exists")]
    OperatorExists { name: String },
    #[error("the escrow at {url} cannot be reached: {reason}")]
    EscrowUnreachable { url: String, reason: String },
    #[error("the escrow at {url} presented a certificate that does not chain to the pinned CA")]
    TlsPinMismatch { url: String },
    #[error("the escrow refused the request ({code}): {message}")]
    EscrowRefused { code: String, message: String },
    #[error("{path} already exists; callseal never overwrites a file")]
    OutputExists { path: PathBuf },
    #[error("cannot write {path}: {reason}")]
    OutputNotWritable { path: PathBuf, reason: String },
    #[error(
        "recording {id} is truncated: {verified_segments} segments ({verified_seconds:.1} s of audio) verified, the final segment is missing"
    )]
    RecordingTruncated {
        id: String,
        verified_segments: u64,
        verified_seconds: f64,
    },
    #[error(
        "recording {id} has been tampered with or is corrupt: {detail}; {verified_segments} segments ({verified_seconds:.1} s of audio) verified before it"
    )]
    RecordingTampered {
        id: String,
        detail: String,
        verified_segments: u64,
        verified_seconds: f64,
    },
    #[error("the sealed file of recording {id} is not at {path}")]
    RecordingFileMissing { id: String, path: PathBuf },
    #[error("retention of {days} days is out of range: allowed {min}..={max} days")]
    RetentionOutOfRange { days: i128, min: u64, max: u64 },
    #[error("retention \"{input}\" has an ambiguous or unknown unit")]
    RetentionAmbiguousUnit { input: String },
    #[error("operator key file {path} is missing")]
    OperatorKeyMissing { path: PathBuf },
    #[error("operator key file {path} is not a callseal operator key: {reason}")]
    OperatorKeyInvalid { path: PathBuf, reason: String },
    #[error("the released key does not open with your operator key ({path})")]
    OperatorKeyMismatch { path: PathBuf },
    #[error("the escrow refused the operator key you offered: {reason}")]
    OperatorKeyNotEnrolled { reason: String },
    #[error("{path} is not a callseal data folder (no {missing})")]
    NotInitialised {
        path: PathBuf,
        missing: &'static str,
    },
    #[error("{path} already holds a callseal data folder")]
    AlreadyInitialised { path: PathBuf },
    #[error("another callseal process{holder} is already using {path}")]
    DataFolderBusy { path: PathBuf, holder: String },
    #[error("{what} {path}: {reason}")]
    Io {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("doctor found {failures} problem(s) and {warnings} warning(s)")]
    DoctorFindings { failures: usize, warnings: usize },
    #[error("{component} failed: {reason}")]
    Component {
        component: &'static str,
        reason: String,
    },
    #[error("{message}")]
    Config { message: String },
    #[error("{what}: {reason}")]
    Listen { what: String, reason: String },
    #[error("interrupted")]
    Interrupted,
}

fn on_date(d: &Option<String>) -> String {
    match d {
        Some(d) => format!(" on {d}"),
        None => String::new(),
    }
}

/// The exit codes of `callseal`, one per error class (documented in docs/cli.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DOCTOR_FAILURES: u8 = 3;
    pub const DOCTOR_WARNINGS: u8 = 4;
    pub const UNKNOWN_RECORDING: u8 = 10;
    pub const KEY_SHREDDED: u8 = 11;
    pub const RECORDING_ERASED: u8 = 12;
    pub const LEGAL_HOLD: u8 = 13;
    pub const PURPOSE: u8 = 14;
    pub const RETENTION: u8 = 15;
    pub const WRONG_ROLE: u8 = 20;
    pub const TOKEN_EXPIRED: u8 = 21;
    pub const TOKEN: u8 = 22;
    pub const INSECURE_FILE: u8 = 23;
    pub const OPERATOR: u8 = 24;
    pub const ESCROW_UNREACHABLE: u8 = 30;
    pub const TLS_PIN: u8 = 31;
    pub const ESCROW_REFUSED: u8 = 32;
    pub const OUTPUT_EXISTS: u8 = 40;
    pub const OUTPUT_NOT_WRITABLE: u8 = 41;
    pub const RECORDING_DAMAGED: u8 = 42;
    pub const RECORDING_MISSING: u8 = 43;
    pub const OPERATOR_KEY: u8 = 44;
    pub const DATA_FOLDER: u8 = 50;
    pub const INTERRUPTED: u8 = 130;
}

/// What the binary prints and returns for an error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Stable machine-readable name (`key_shredded`, `output_exists`, …).
    pub code: &'static str,
    /// Process exit status.
    pub exit: u8,
    /// What happened.
    pub message: String,
    /// What to do next.
    pub hint: String,
}

impl CliError {
    /// The one mapping from an error to its exit code, stable code and hint.
    pub fn report(&self) -> Report {
        use CliError as E;
        let (code, exit, hint): (&'static str, u8, String) = match self {
            E::Usage { .. } => ("usage", exit::USAGE, "run `callseal help` or add --help to the command".into()),
            E::UnknownRecording { .. } | E::MalformedRecordingId { .. } => (
                "unknown_recording",
                exit::UNKNOWN_RECORDING,
                "copy the whole id from `callseal recordings list`".into(),
            ),
            E::KeyShredded { .. } => (
                "key_shredded",
                exit::KEY_SHREDDED,
                "retention ended and the key was destroyed as intended; `callseal receipts` shows the destruction receipt".into(),
            ),
            E::RecordingErased { .. } => (
                "recording_erased",
                exit::RECORDING_ERASED,
                "the recording was erased on request; `callseal audit list` shows who erased it and why".into(),
            ),
            E::LegalHold { id } => (
                "legal_hold",
                exit::LEGAL_HOLD,
                format!("an admin must lift the hold first: `callseal recordings release {id}`"),
            ),
            E::PurposeMissing => (
                "purpose_required",
                exit::PURPOSE,
                "state why you open it: --purpose \"quality review of case 2291\"".into(),
            ),
            E::PurposeTooLong { .. } => (
                "purpose_too_long",
                exit::PURPOSE,
                "shorten the purpose to one sentence; refer to a case number for details".into(),
            ),
            E::ReasonMissing => (
                "reason_required",
                exit::PURPOSE,
                "state why: --reason \"caller withdrew consent by letter\"".into(),
            ),
            E::WrongRole { .. } => (
                "wrong_role",
                exit::WRONG_ROLE,
                "ask an admin for an operator with that role (`callseal operator add NAME --role ROLE`)".into(),
            ),
            E::TokenExpired { .. } => (
                "token_expired",
                exit::TOKEN_EXPIRED,
                "ask an admin for a new token and put it in CALLSEAL_TOKEN or your token file".into(),
            ),
            E::TokenRejected => (
                "token_rejected",
                exit::TOKEN,
                "check CALLSEAL_TOKEN / --token-file; the operator may have been disabled".into(),
            ),
            E::TokenMissing { path } => (
                "token_missing",
                exit::TOKEN,
                format!("set CALLSEAL_TOKEN, pass --token-file, or write the token to {} with mode 0600", path.display()),
            ),
            E::InsecureFileMode { path, .. } => (
                "insecure_file_mode",
                exit::INSECURE_FILE,
                format!("run `chmod 600 {}` and try again", path.display()),
            ),
            E::AgreementDeclined => (
                "agreement_declined",
                exit::OPERATOR,
                "run `callseal operator acknowledge` again and type yes once you accept the agreement".into(),
            ),
            E::AgreementPending => (
                "agreement_pending",
                exit::OPERATOR,
                "read and acknowledge it with `callseal operator acknowledge`".into(),
            ),
            E::OperatorDisabled { .. } => ("operator_disabled", exit::OPERATOR, "ask an admin to enrol you again".into()),
            E::UnknownOperator { .. } => ("unknown_operator", exit::OPERATOR, "see `callseal operator list`".into()),
            E::OperatorExists { .. } => ("operator_exists", exit::OPERATOR, "choose another name or disable the old operator".into()),
            E::EscrowUnreachable { .. } => (
                "escrow_unreachable",
                exit::ESCROW_UNREACHABLE,
                "start it (`callseal serve` or `callseal escrow`) or check --escrow URL / CALLSEAL_ESCROW and the network".into(),
            ),
            E::TlsPinMismatch { .. } => (
                "tls_pin_mismatch",
                exit::TLS_PIN,
                "you may be talking to the wrong server; compare the CA with the escrow's data folder (escrow/tls/ca.pem) and pass the right one with --ca".into(),
            ),
            E::EscrowRefused { .. } => ("escrow_refused", exit::ESCROW_REFUSED, "see the escrow's log and `callseal doctor`".into()),
            E::OutputExists { .. } => (
                "output_exists",
                exit::OUTPUT_EXISTS,
                "choose another -o path, or remove the old file yourself first".into(),
            ),
            E::OutputNotWritable { .. } => (
                "output_not_writable",
                exit::OUTPUT_NOT_WRITABLE,
                "choose a folder you can write to, e.g. -o ~/review.wav".into(),
            ),
            E::RecordingTruncated { .. } => (
                "recording_truncated",
                exit::RECORDING_DAMAGED,
                "the gateway stopped before finishing the file; nothing was written; restore the file from a copy if one exists".into(),
            ),
            E::RecordingTampered { .. } => (
                "recording_tampered",
                exit::RECORDING_DAMAGED,
                "nothing was written; restore the sealed file from a backup and report the incident to the privacy officer".into(),
            ),
            E::RecordingFileMissing { .. } => (
                "recording_file_missing",
                exit::RECORDING_MISSING,
                "point --data (or --recordings) at the folder holding the sealed .csrec files".into(),
            ),
            E::RetentionOutOfRange { .. } => (
                "retention_out_of_range",
                exit::RETENTION,
                "give a whole number of days within the range, e.g. --days 30".into(),
            ),
            E::RetentionAmbiguousUnit { .. } => (
                "retention_ambiguous_unit",
                exit::RETENTION,
                "give days, e.g. --days 30, 30d or 4w (months and years have no fixed length)".into(),
            ),
            E::OperatorKeyMissing { .. } => (
                "operator_key_missing",
                exit::OPERATOR_KEY,
                "create one with `callseal operator keygen` and have an admin enrol its public key, or pass --key-file".into(),
            ),
            E::OperatorKeyInvalid { .. } => (
                "operator_key_invalid",
                exit::OPERATOR_KEY,
                "pass the file written by `callseal operator keygen` with --key-file".into(),
            ),
            E::OperatorKeyNotEnrolled { .. } => (
                "operator_key_not_enrolled",
                exit::OPERATOR_KEY,
                "pass the key file whose public key was enrolled for you with --key-file, or have an admin enrol this one (`callseal operator add … --public-key`)".into(),
            ),
            E::OperatorKeyMismatch { .. } => (
                "operator_key_mismatch",
                exit::OPERATOR_KEY,
                "use the key file whose public key was enrolled for your operator (--key-file)".into(),
            ),
            E::NotInitialised { path, .. } => (
                "not_initialised",
                exit::DATA_FOLDER,
                format!("run `callseal --data {} init` first, or point --data at the right folder", path.display()),
            ),
            E::AlreadyInitialised { .. } => (
                "already_initialised",
                exit::DATA_FOLDER,
                "nothing to do; `callseal doctor` checks it; to start over, choose another --data folder".into(),
            ),
            E::DataFolderBusy { .. } => (
                "data_folder_busy",
                exit::DATA_FOLDER,
                "stop that process first (Ctrl-C or `kill -TERM PID`), or give this one its own --data folder".into(),
            ),
            E::Io { .. } => ("io", exit::DATA_FOLDER, "check that the path exists and that you may read and write it".into()),
            E::DoctorFindings { failures, .. } => (
                "doctor_findings",
                if *failures > 0 { exit::DOCTOR_FAILURES } else { exit::DOCTOR_WARNINGS },
                "fix each finding as described above and run `callseal doctor` again".into(),
            ),
            E::Component { .. } => ("internal", exit::INTERNAL, "see the message; run `callseal doctor`".into()),
            E::Config { .. } => (
                "config",
                exit::USAGE,
                "every setting is explained in deploy/callseal.example.toml; `callseal doctor --config FILE` checks the prompts too".into(),
            ),
            E::Listen { .. } => (
                "address_in_use",
                exit::INTERNAL,
                "another program (perhaps another callseal) listens there: stop it, or choose other addresses with --sip and --escrow-listen".into(),
            ),
            E::Interrupted => ("interrupted", exit::INTERRUPTED, "nothing was left behind; run the command again".into()),
        };
        Report {
            code,
            exit,
            message: self.to_string(),
            hint,
        }
    }

    /// A local I/O error on a path the operator named or the data folder.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        CliError::Io {
            what,
            path: path.into(),
            reason: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_per_class() {
        let samples = [
            CliError::UnknownRecording { id: "x".into() }.report().exit,
            CliError::KeyShredded {
                id: "x".into(),
                shredded_on: "2026-01-01".into(),
            }
            .report()
            .exit,
            CliError::RecordingErased {
                id: "x".into(),
                erased_on: None,
            }
            .report()
            .exit,
            CliError::LegalHold { id: "x".into() }.report().exit,
            CliError::PurposeMissing.report().exit,
            CliError::WrongRole {
                action: "a".into(),
                needed: "admin".into(),
            }
            .report()
            .exit,
            CliError::TokenExpired { expired_at: None }.report().exit,
            CliError::EscrowUnreachable {
                url: "u".into(),
                reason: "r".into(),
            }
            .report()
            .exit,
            CliError::TlsPinMismatch { url: "u".into() }.report().exit,
            CliError::OutputExists { path: "p".into() }.report().exit,
            CliError::OutputNotWritable {
                path: "p".into(),
                reason: "r".into(),
            }
            .report()
            .exit,
            CliError::RecordingTruncated {
                id: "x".into(),
                verified_segments: 1,
                verified_seconds: 1.0,
            }
            .report()
            .exit,
            CliError::RetentionAmbiguousUnit { input: "1m".into() }
                .report()
                .exit,
        ];
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), samples.len(), "{samples:?}");
    }

    #[test]
    fn shredded_message_names_the_date_and_the_receipt() {
        let r = CliError::KeyShredded {
            id: "ab".into(),
            shredded_on: "2026-03-04".into(),
        }
        .report();
        assert_eq!(r.code, "key_shredded");
        assert!(r.message.contains("2026-03-04"), "{}", r.message);
        assert!(r.hint.contains("callseal receipts"));
    }

    #[test]
    fn insecure_mode_hint_gives_the_chmod() {
        let r = CliError::InsecureFileMode {
            what: "token file",
            path: "/x/t".into(),
            mode: 0o644,
        }
        .report();
        assert!(r.message.contains("0644"), "{}", r.message);
        assert_eq!(r.hint, "run `chmod 600 /x/t` and try again");
    }
}
