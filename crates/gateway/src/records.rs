//! Call records and survey answers as JSON lines.
//!
//! A call record names the caller by pseudonymous code only. Survey answers go to a separate
//! file with the date and line label only: no call id, no code, no time of day, so an answer
//! cannot be joined back to a call or a recording.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::GatewayError;

/// How the consent question ended, as written to the call record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentDecision {
    /// Pressed the consent digit.
    Consented,
    /// Pressed the decline digit.
    Declined,
    /// No digit after every repeat: treated as declined.
    Timeout,
    /// Hung up before deciding.
    HungUp,
    /// Consented, then withdrew during the call.
    Withdrawn,
}

/// One line of `calls.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// UTC, RFC 3339, second resolution.
    pub started: String,
    /// UTC, RFC 3339, second resolution.
    pub ended: String,
    /// The pseudonymous caller code (e.g. C-7KQ2-9XMD); never the number.
    pub caller: String,
    /// The hospital line called.
    pub line: String,
    /// The consent decision.
    pub consent: ConsentDecision,
    /// How the call ended (e.g. "completed", "abandoned-during-prompt", "pbx-rejected-486").
    pub outcome: String,
    /// Whether the PBX leg was set up (the consultant's side answered).
    pub pbx_reached: bool,
    /// The id of the call's recording, if one was started (withdrawn ones too: the escrow
    /// tells whether it is sealed, erased or shredded).
    pub recording: Option<String>,
}

/// Appends JSON lines to a file (0600, O_APPEND so concurrent writers never interleave a line).
pub struct JsonLines {
    path: PathBuf,
    file: File,
}

impl JsonLines {
    pub fn open(path: &Path) -> Result<Self, GatewayError> {
        if let Some(dir) = path.parent() {
            crate::secrets::create_private_dir(dir)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| GatewayError::storage("open", path, e))?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    pub fn append<T: Serialize>(&mut self, value: &T) -> Result<(), GatewayError> {
        let mut line = serde_json::to_vec(value).map_err(|e| {
            GatewayError::storage("encode record for", &self.path, std::io::Error::other(e))
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| GatewayError::storage("append to", &self.path, e))
    }
}

/// One line of `survey.jsonl`: deliberately nothing that identifies the call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyAnswer {
    /// UTC date only (YYYY-MM-DD).
    pub date: String,
    pub line: String,
    pub answer: char,
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a system time (UTC, proleptic Gregorian).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `YYYY-MM-DD` (UTC).
pub fn utc_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day); the well-known era-based conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_civil() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)),
            "2000-02-29T01:01:01Z"
        );
        assert_eq!(
            utc_date(UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "2026-12-31"
        );
    }

    #[test]
    fn records_append_one_json_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g/calls.jsonl");
        let mut log = JsonLines::open(&path).unwrap();
        let rec = CallRecord {
            started: "2026-01-01T00:00:00Z".into(),
            ended: "2026-01-01T00:01:00Z".into(),
            caller: "C-7KQ2-9XMD".into(),
            line: "counselling".into(),
            consent: ConsentDecision::Declined,
            outcome: "completed".into(),
            pbx_reached: true,
            recording: None,
        };
        log.append(&rec).unwrap();
        log.append(&SurveyAnswer {
            date: "2026-01-01".into(),
            line: "l".into(),
            answer: '4',
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["consent"], "declined");
        assert_eq!(v["recording"], serde_json::Value::Null);
        assert_eq!(crate::secrets::file_mode(&path), Some(0o600));
    }
}
