//! Timestamps as servers send them, turned into epoch milliseconds.
//!
//! Tensorlake servers send epoch milliseconds, older ones seconds, some proxies microseconds or RFC
//! 3339 strings, and `Retry-After` may be an HTTP date. All of it is parsed here, by hand.
//! Measured (wasm `--profile wasm`, wasm-opt -Oz, gzip -9): `chrono`'s `parse_from_rfc3339` and
//! `parse_from_rfc2822` cost 10,176 bytes gzipped (78,130 → 88,306), over the 80 KB budget. The
//! JS engine's `Date.parse` is free in size, but this crate also runs natively (no engine), and
//! `Date.parse` of anything but ISO 8601 is implementation-defined, so engines would disagree.
//! `chrono` is the property tests' oracle instead (`proptests.rs`).

/// The largest time a JavaScript `Date` can hold, in epoch milliseconds (ECMA-262 §21.4.1.1).
/// A timestamp beyond it would become `Invalid Date`, so it is treated as absent instead.
pub const MAX_DATE_MS: f64 = 8.64e15;

/// Converts an epoch timestamp of unknown unit to milliseconds, by magnitude: below 1e11 it is
/// seconds (1e11 s is the year 5138), below 1e14 milliseconds, otherwise microseconds. `None`
/// for negative, non-finite or out-of-`Date`-range values.
pub fn epoch_number_to_ms(value: f64) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let ms = if value < 1e11 {
        value * 1000.0
    } else if value < 1e14 {
        value
    } else {
        value / 1000.0
    };
    in_date_range(ms)
}

/// `ms` when a JavaScript `Date` can represent it.
fn in_date_range(ms: f64) -> Option<f64> {
    (ms.is_finite() && ms.abs() <= MAX_DATE_MS).then_some(ms)
}

/// Parses a timestamp string: a number in any of the units above, or RFC 3339
/// (`2026-11-30T10:00:00Z`, `2026-11-30 10:00:00.123+02:00`).
pub fn epoch_text_to_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return epoch_number_to_ms(parse_plain_decimal(text)?);
    }
    in_date_range(parse_rfc3339(text)?)
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date compared with `now_ms`.
/// Returns the delay in milliseconds, never negative; `None` when the value is unusable.
pub fn retry_after_ms(value: &str, now_ms: f64) -> Option<f64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(parse_plain_decimal(value)? * 1000.0);
    }
    let at = parse_http_date(value)?;
    Some((at - now_ms).max(0.0))
}

fn parse_plain_decimal(text: &str) -> Option<f64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || whole.len() > 17 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value = whole.parse::<u64>().ok()? as f64;
    let mut scale = 0.1;
    for b in frac.bytes().take(9) {
        if !b.is_ascii_digit() {
            return None;
        }
        value += f64::from(b - b'0') * scale;
        scale /= 10.0;
    }
    Some(value)
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian), after Howard Hinnant's
/// well-known algorithm.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn epoch_ms(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<f64> {
    // Years a `Date` can hold (±275,760); beyond them the arithmetic below could overflow.
    if !(-275_760..=275_760).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(secs as f64 * 1000.0)
}

fn digits(text: &str, start: usize, len: usize) -> Option<u32> {
    let part = text.get(start..start + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse_rfc3339(text: &str) -> Option<f64> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM); the separator may be 't' or a space too.
    let b = text.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let base = epoch_ms(
        i64::from(digits(text, 0, 4)?),
        digits(text, 5, 2)?,
        digits(text, 8, 2)?,
        digits(text, 11, 2)?,
        digits(text, 14, 2)?,
        digits(text, 17, 2)?,
    )?;
    let mut rest = text.get(19..)?;
    let mut frac_ms = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let mut scale = 100.0;
        for b in after_dot.bytes().take(len.min(9)) {
            frac_ms += f64::from(b - b'0') * scale;
            scale /= 10.0;
        }
        rest = after_dot.get(len..)?;
    }
    let offset_ms = match rest {
        "Z" | "z" => 0.0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1.0,
                b'-' => -1.0,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let hours = f64::from(digits(rest, 1, 2)?);
            let minutes = f64::from(digits(rest, 4, 2)?);
            sign * (hours * 3600.0 + minutes * 60.0) * 1000.0
        }
    };
    Some(base + frac_ms - offset_ms)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// IMF-fixdate, the only HTTP date form servers may send: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as u32
        + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let clock = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() || clock.len() != 8 {
        return None;
    }
    epoch_ms(
        year,
        month,
        day,
        digits(clock, 0, 2)?,
        digits(clock, 3, 2)?,
        digits(clock, 6, 2)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_30_2026_MS: f64 = 1_796_032_800_000.0; // 2026-11-30T10:00:00Z

    #[test]
    fn numbers_are_read_by_magnitude() {
        assert_eq!(epoch_number_to_ms(1_796_032_800.0), Some(NOV_30_2026_MS));
        assert_eq!(epoch_number_to_ms(NOV_30_2026_MS), Some(NOV_30_2026_MS));
        assert_eq!(
            epoch_number_to_ms(NOV_30_2026_MS * 1000.0),
            Some(NOV_30_2026_MS)
        );
        assert_eq!(epoch_number_to_ms(-1.0), None);
        assert_eq!(epoch_number_to_ms(f64::NAN), None);
    }

    #[test]
    fn rfc3339_in_its_usual_spellings() {
        assert_eq!(
            epoch_text_to_ms("2026-11-30T10:00:00Z"),
            Some(NOV_30_2026_MS)
        );
        assert_eq!(
            epoch_text_to_ms("2026-11-30t10:00:00.250z"),
            Some(NOV_30_2026_MS + 250.0)
        );
        assert_eq!(
            epoch_text_to_ms("2026-11-30 12:00:00+02:00"),
            Some(NOV_30_2026_MS)
        );
        assert_eq!(
            epoch_text_to_ms("2026-11-30T09:30:00-00:30"),
            Some(NOV_30_2026_MS)
        );
        assert_eq!(epoch_text_to_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(epoch_text_to_ms("1796032800"), Some(NOV_30_2026_MS));
        assert_eq!(epoch_text_to_ms("1796032800000"), Some(NOV_30_2026_MS));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-30T10:00:00",
            "2026-11-30T10:00:00+2",
        ] {
            assert_eq!(epoch_text_to_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        assert_eq!(retry_after_ms("2", 0.0), Some(2000.0));
        assert_eq!(retry_after_ms(" 0 ", 0.0), Some(0.0));
        assert_eq!(
            retry_after_ms("Mon, 30 Nov 2026 10:00:03 GMT", NOV_30_2026_MS),
            Some(3000.0)
        );
        assert_eq!(
            retry_after_ms("Mon, 30 Nov 2026 09:00:00 GMT", NOV_30_2026_MS),
            Some(0.0)
        );
        for bad in ["-1", "1.5s", "soon", "Mon, 30 Nov 2026 10:00:03 PST"] {
            assert_eq!(retry_after_ms(bad, 0.0), None, "{bad}");
        }
    }
}
