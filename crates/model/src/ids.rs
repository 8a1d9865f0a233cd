//! Resource ids and instants as the specification defines them.

use chrono::{DateTime, SecondsFormat, Utc};

/// Maximum length of a resource id (FHIR R4 `id` datatype: `[A-Za-z0-9\-\.]{1,64}`).
pub const MAX_ID_LEN: usize = 64;

/// True when `id` is a valid FHIR logical id.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Formats microseconds since the Unix epoch as a FHIR `instant` (UTC, millisecond precision
/// is what clients expect; we keep microseconds so versions written in the same millisecond
/// still order by time).
pub fn format_instant(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Formats microseconds since the Unix epoch as an HTTP date (RFC 7231 IMF-fixdate).
pub fn format_http_date(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// A parsed FHIR `instant`/`dateTime`/`date` search bound, as the half-open range of
/// microseconds `[start, end)` it covers at its stated precision (`2024` covers the whole
/// year). Returns `None` when the text is not a FHIR date, dateTime or instant.
pub fn parse_date_range(text: &str) -> Option<(i64, i64)> {
    use chrono::{Datelike, NaiveDate, NaiveDateTime};
    let to_micros = |d: NaiveDateTime| d.and_utc().timestamp_micros();
    let date = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d);
    match text.len() {
        4 => {
            let y: i32 = text.parse().ok()?;
            let s = date(y, 1, 1)?.and_hms_opt(0, 0, 0)?;
            let e = date(y + 1, 1, 1)?.and_hms_opt(0, 0, 0)?;
            Some((to_micros(s), to_micros(e)))
        }
        7 => {
            let y: i32 = text.get(0..4)?.parse().ok()?;
            let m: u32 = text.get(5..7)?.parse().ok()?;
            if text.as_bytes()[4] != b'-' {
                return None;
            }
            let s = date(y, m, 1)?;
            let e = if m == 12 {
                date(y + 1, 1, 1)?
            } else {
                date(y, m + 1, 1)?
            };
            Some((
                to_micros(s.and_hms_opt(0, 0, 0)?),
                to_micros(e.and_hms_opt(0, 0, 0)?),
            ))
        }
        10 => {
            let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            let s = d.and_hms_opt(0, 0, 0)?;
            let e = d.succ_opt()?.and_hms_opt(0, 0, 0)?;
            let _ = d.year();
            Some((to_micros(s), to_micros(e)))
        }
        _ => {
            let t = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
            let micros = t.timestamp_micros();
            // Precision of the stated fraction decides the width of the range.
            let frac_digits = text
                .split_once('.')
                .map(|(_, rest)| rest.bytes().take_while(u8::is_ascii_digit).count())
                .unwrap_or(0)
                .min(6);
            let width = 10i64.pow(6 - frac_digits as u32);
            Some((micros, micros + width))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_specification() {
        assert!(is_valid_id("example-1.a"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("has space"));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(is_valid_id(&"a".repeat(64)));
    }

    #[test]
    fn date_ranges_follow_precision() {
        let (s, e) = parse_date_range("2024").unwrap();
        assert_eq!(e - s, 366 * 86_400_000_000);
        let (s, e) = parse_date_range("2024-02").unwrap();
        assert_eq!(e - s, 29 * 86_400_000_000);
        let (s, e) = parse_date_range("2024-02-03T04:05:06Z").unwrap();
        assert_eq!(e - s, 1_000_000);
        let (s, e) = parse_date_range("2024-02-03T04:05:06.250+01:00").unwrap();
        assert_eq!(e - s, 1_000);
        assert_eq!(format_instant(s), "2024-02-03T03:05:06.250000Z");
        assert!(parse_date_range("2024-13").is_none());
        assert!(parse_date_range("yesterday").is_none());
    }
}
