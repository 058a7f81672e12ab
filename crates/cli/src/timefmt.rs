//! UTC dates without a calendar dependency: parsing `--since`/`--until` and printing times.
//! Days are converted with the proleptic Gregorian algorithms of H. Hinnant ("chrono-compatible
//! low-level date algorithms").

use crate::error::CliError;

/// Unix seconds of `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_utc(flag: &str, s: &str) -> Result<i64, CliError> {
    let bad = || CliError::Usage {
        message: format!(
            "{flag} \"{s}\" is not a UTC date: write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        ),
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut it = date.split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y: i64 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let d: u32 = d.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let t = t.strip_suffix('Z').ok_or_else(bad)?;
        let mut it = t.split(':');
        let (Some(h), Some(mi), Some(se), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad());
        };
        let h: i64 = h.parse().map_err(|_| bad())?;
        let mi: i64 = mi.parse().map_err(|_| bad())?;
        let se: i64 = se.parse().map_err(|_| bad())?;
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..60).contains(&se) {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + se;
    }
    Ok(secs)
}

/// `YYYY-MM-DD HH:MM:SSZ` for Unix seconds.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DD` for a day number since 1970-01-01 (an `EpochId`).
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(parse_utc("--since", "1970-01-01").unwrap(), 0);
        assert_eq!(
            parse_utc("--since", "2000-03-01T00:00:01Z").unwrap(),
            951_868_801
        );
        assert_eq!(format_utc(951_868_801), "2000-03-01 00:00:01Z");
        assert_eq!(format_day(20_454), "2026-01-01");
    }

    #[test]
    fn round_trip_over_four_centuries() {
        for day in (-200_000..200_000).step_by(97) {
            let s = format_day(day);
            assert_eq!(parse_utc("--since", &s).unwrap(), day * 86_400, "{s}");
        }
    }

    #[test]
    fn rejects_non_dates() {
        for s in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:00:00",
            "yesterday",
        ] {
            assert!(parse_utc("--since", s).is_err(), "{s}");
        }
        assert!(parse_utc("--since", "2024-02-29").is_ok());
    }
}
