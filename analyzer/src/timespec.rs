//! `--since` durations: a sequence of `<number><unit>` with units `Y` (365 days), `M` (30
//! days), `w`, `d`, `h`, `m` (minutes) and `s`, e.g. `5d`, `1h30m`, `2w`.

use crate::error::AnalyzerError;

const SECOND: i64 = 1_000_000_000;

/// Parses a duration into nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, AnalyzerError> {
    let bad = |why: &str| {
        AnalyzerError::Invalid(format!(
            "invalid duration {text:?}: {why} (examples: 30s, 15m, 6h, 5d, 2w, 3M, 1Y, 1h30m)"
        ))
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'Y' | 'y' => 365 * 86_400,
            'M' => 30 * 86_400,
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad(&format!("unknown unit {c:?}"))),
        };
        if digits.is_empty() {
            return Err(bad(&format!("unit {c:?} without a number")));
        }
        let n: i64 = digits.parse().map_err(|_| bad("number too large"))?;
        digits.clear();
        total = n
            .checked_mul(unit * SECOND)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too large"))?;
    }
    if !digits.is_empty() {
        return Err(bad("a number needs a unit"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sequences() {
        assert_eq!(parse_duration("5d").unwrap(), 5 * 86_400 * SECOND);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400 * SECOND);
        assert_eq!(parse_duration("1Y").unwrap(), 365 * 86_400 * SECOND);
        assert_eq!(parse_duration("2M").unwrap(), 60 * 86_400 * SECOND);
        assert_eq!(parse_duration("3w").unwrap(), 21 * 86_400 * SECOND);
        assert_eq!(parse_duration("10s").unwrap(), 10 * SECOND);
    }

    #[test]
    fn bad_durations_say_why() {
        for (t, why) in [
            ("", "empty"),
            ("5", "needs a unit"),
            ("d", "without a number"),
            ("5x", "unknown unit"),
            ("99999999999999999999d", "too large"),
            ("9999999999Y", "too large"),
        ] {
            let e = parse_duration(t).unwrap_err().to_string();
            assert!(e.contains(why), "{t}: {e}");
        }
    }
}
