//! Parsing `--days`: whole days only, with units that have a fixed length.

use crate::error::CliError;

/// Shortest retention the CLI accepts (a recording must outlive the call that made it).
pub const MIN_DAYS: u64 = 1;
/// Longest retention the CLI accepts (ten years).
pub const MAX_DAYS: u64 = 3650;

/// `30`, `30d`, `30 days`, `4w`, `4 weeks` → days. Months, years, hours, minutes and anything
/// else are refused as ambiguous: a month or a year has no fixed number of days, and `m` could
/// mean minutes or months.
pub fn parse_days(input: &str) -> Result<u64, CliError> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let ambiguous = || CliError::RetentionAmbiguousUnit {
        input: input.to_owned(),
    };
    if num.is_empty() {
        if let Some(neg) = s.strip_prefix('-') {
            let digits: String = neg.chars().take_while(char::is_ascii_digit).collect();
            return Err(CliError::RetentionOutOfRange {
                days: -digits.parse::<i128>().unwrap_or(0),
                min: MIN_DAYS,
                max: MAX_DAYS,
            });
        }
        return Err(ambiguous());
    }
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "d" | "day" | "days" => 1,
        "w" | "week" | "weeks" => 7,
        _ => return Err(ambiguous()),
    };
    let out_of_range = |days: u64| CliError::RetentionOutOfRange {
        days: days.into(),
        min: MIN_DAYS,
        max: MAX_DAYS,
    };
    let n: u64 = num.parse().map_err(|_| out_of_range(u64::MAX))?;
    let days = n
        .checked_mul(factor)
        .ok_or_else(|| out_of_range(u64::MAX))?;
    if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
        return Err(out_of_range(days));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_days("30").unwrap(), 30);
        assert_eq!(parse_days("30d").unwrap(), 30);
        assert_eq!(parse_days("30 days").unwrap(), 30);
        assert_eq!(parse_days("4w").unwrap(), 28);
        assert_eq!(parse_days("3650").unwrap(), 3650);
    }

    #[test]
    fn ambiguous_units_are_refused() {
        for s in ["1m", "6mo", "1y", "12h", "30min", "1.5", "thirty", "P30D"] {
            assert!(
                matches!(parse_days(s), Err(CliError::RetentionAmbiguousUnit { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn out_of_range_is_refused() {
        for s in ["0", "3651", "-5", "99999999999999999999", "600w"] {
            assert!(
                matches!(parse_days(s), Err(CliError::RetentionOutOfRange { .. })),
                "{s}"
            );
        }
        // The message names what was given, a negative number included.
        assert!(matches!(
            parse_days("-5"),
            Err(CliError::RetentionOutOfRange { days: -5, .. })
        ));
    }
}
