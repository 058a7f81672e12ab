//! `callseal recordings …`: list, show, export, play, erase, hold, release.

use std::path::{Path, PathBuf};

use super::Ctx;
use super::api::{Escrow, RecordingFilter, RecordingView};
use crate::args::{Leg, ListFilter, Status};
use crate::error::CliError;
use crate::output::{Table, fields, print_json};
use crate::timefmt::{format_day, format_utc, parse_utc};

/// Longest purpose or reason the CLI sends (the escrow enforces its own bound too).
pub const MAX_PURPOSE_CHARS: usize = 500;

/// A purpose or reason: present, not blank, bounded, one line.
pub fn check_purpose(p: Option<&str>, missing: CliError) -> Result<String, CliError> {
    let p = p.map(str::trim).unwrap_or_default();
    if p.is_empty() {
        return Err(missing);
    }
    let len = p.chars().count();
    if len > MAX_PURPOSE_CHARS || p.chars().any(char::is_control) {
        return Err(CliError::PurposeTooLong {
            len,
            max: MAX_PURPOSE_CHARS,
        });
    }
    Ok(p.to_owned())
}

/// A recording id: 32 lowercase hex digits (also accepted in upper case, then lowered).
pub fn check_id(id: &str) -> Result<String, CliError> {
    let lower = id.trim().to_ascii_lowercase();
    if lower.len() == 32 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(CliError::MalformedRecordingId {
            id: id.chars().take(64).collect(),
        })
    }
}

pub fn filter(f: &ListFilter) -> Result<RecordingFilter, CliError> {
    Ok(RecordingFilter {
        caller_code: f.caller_code.clone(),
        since_ms: f
            .since
            .as_deref()
            .map(|s| parse_utc("--since", s))
            .transpose()?
            .map(|s| s * 1000),
        until_ms: f
            .until
            .as_deref()
            .map(|s| parse_utc("--until", s))
            .transpose()?
            .map(|s| s * 1000),
        line: f.line.clone(),
        status: f.status,
    })
}

pub async fn list(ctx: &Ctx, escrow: &impl Escrow, f: &RecordingFilter) -> Result<(), CliError> {
    let rows = escrow.recordings(f).await?;
    if ctx.global.json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("No recordings match.");
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID",
        "STARTED (UTC)",
        "DURATION",
        "CALLER",
        "LINE",
        "STATUS",
        "SHRED ON",
    ]);
    for r in &rows {
        t.row(vec![
            r.id.clone(),
            format_utc(r.started_at_ms.div_euclid(1000)),
            duration(r),
            r.caller_code.clone(),
            r.line.clone().unwrap_or_else(|| "-".into()),
            status_text(r),
            shred_text(r),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub async fn show(ctx: &Ctx, escrow: &impl Escrow, id: &str) -> Result<(), CliError> {
    let r = escrow.recording(&check_id(id)?).await?;
    if ctx.global.json {
        return print_json(&r);
    }
    let mut pairs = vec![
        ("Recording", r.id.clone()),
        ("Status", status_text(&r)),
        ("Caller code", r.caller_code.clone()),
        ("Line", r.line.clone().unwrap_or_else(|| "-".into())),
        ("Started", format_utc(r.started_at_ms.div_euclid(1000))),
        ("Duration", duration(&r)),
        (
            "Epoch",
            format!(
                "{} (retention ends {})",
                r.epoch,
                format_day(i64::from(r.epoch))
            ),
        ),
        ("Shred on", shred_text(&r)),
        (
            "Legal hold",
            if r.held { "yes".into() } else { "no".into() },
        ),
    ];
    if let Some(at) = r.destroyed_at_ms {
        pairs.push(("Destroyed", format_utc(at.div_euclid(1000))));
    }
    if let Some(g) = &r.gateway {
        pairs.push(("Gateway", g.clone()));
    }
    match &r.consent {
        Some(c) => {
            pairs.push(("Consent", c.decision.clone()));
            if let Some(d) = &c.digit {
                pairs.push(("  digit", d.clone()));
            }
            if let Some(at) = c.decided_at_ms {
                pairs.push(("  at", format_utc(at.div_euclid(1000))));
            }
            if let Some(h) = &c.prompt_sha256 {
                pairs.push(("  prompt sha256", h.clone()));
            }
            if let Some(s) = &c.signed_by {
                pairs.push(("  signed by", s.clone()));
            }
        }
        None => pairs.push(("Consent", "no evidence deposited".into())),
    }
    print!("{}", fields(&pairs));
    Ok(())
}

/// Where the sealed file of a recording lives (`<data>/recordings/<id>.csrec`).
pub fn sealed_path(data: &Path, id: &str) -> PathBuf {
    data.join("recordings").join(format!("{id}.csrec"))
}

pub fn status_text(r: &RecordingView) -> String {
    match r.status {
        Status::Sealed => "sealed",
        Status::Held => "held",
        Status::PendingShred => "pending shred",
        Status::Shredded => "shredded",
        Status::Erased => "erased",
    }
    .into()
}

fn shred_text(r: &RecordingView) -> String {
    match (r.status, r.held, r.shred_at_ms) {
        (Status::Shredded | Status::Erased, _, _) => "-".into(),
        (_, true, _) => "held".into(),
        (_, _, Some(ms)) => format_day(ms.div_euclid(86_400_000)),
        (_, _, None) => format_day(i64::from(r.epoch) + 1),
    }
}

fn duration(r: &RecordingView) -> String {
    match r.ended_at_ms {
        Some(end) if end >= r.started_at_ms => {
            let s = (end - r.started_at_ms) / 1000;
            format!("{}:{:02}", s / 60, s % 60)
        }
        _ => "-".into(),
    }
}

pub fn leg_name(leg: Leg) -> &'static str {
    match leg {
        Leg::Caller => "caller",
        Leg::Consultant => "consultant",
        Leg::Both => "both",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_rules() {
        assert_eq!(
            check_purpose(Some("  review "), CliError::PurposeMissing).unwrap(),
            "review"
        );
        assert!(matches!(
            check_purpose(None, CliError::PurposeMissing),
            Err(CliError::PurposeMissing)
        ));
        assert!(matches!(
            check_purpose(Some(" "), CliError::ReasonMissing),
            Err(CliError::ReasonMissing)
        ));
        let long = "é".repeat(MAX_PURPOSE_CHARS + 1);
        assert!(matches!(
            check_purpose(Some(&long), CliError::PurposeMissing),
            Err(CliError::PurposeTooLong { len: 501, .. })
        ));
        assert!(matches!(
            check_purpose(Some("a\nb"), CliError::PurposeMissing),
            Err(CliError::PurposeTooLong { .. })
        ));
    }

    #[test]
    fn ids_are_strict() {
        assert_eq!(
            check_id("00112233445566778899AABBCCDDEEFF").unwrap(),
            "00112233445566778899aabbccddeeff"
        );
        for bad in [
            "",
            "../../etc/passwd",
            "0011",
            "00112233445566778899aabbccddeefg",
        ] {
            assert!(
                matches!(check_id(bad), Err(CliError::MalformedRecordingId { .. })),
                "{bad}"
            );
        }
    }
}
