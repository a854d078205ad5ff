//! rtl_433's `time` field.
//!
//! What rtl_433 writes depends on its `-M time` option (rtl_433 `-M help`): local
//! `2026-01-05 14:03:07` by default, `…T…` with `time:iso`, an offset `+0100` with `time:tz`,
//! UTC with `time:utc`, seconds since the epoch with `time:unix`, and `@0.032084s` (a position in
//! the sample file) when it reads a file. Only a time that says its zone places the reception on
//! the time line: a zone-less time is ignored (meterd's own reception time is used, as for an
//! rtlamr line without `Time`), anything else unreadable is refused.

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::fields::Fields;
use crate::error::Result;

/// The longest `time` text read.
const MAX_LEN: usize = 64;

/// The reception time of a line: `Some` when `time` carries a zone or is epoch seconds.
pub fn of_line(f: &Fields<'_>) -> Result<Option<Timestamp>> {
    if !f.has("time") {
        return Ok(None);
    }
    if let Some(n) = f.map.get("time").and_then(serde_json::Value::as_i64) {
        return Timestamp::from_second(n)
            .map(Some)
            .map_err(|e| f.error("time", format_args!("{n} is not a time: {e}")));
    }
    let text = f.text("time", MAX_LEN)?;
    parse_time(text).map_err(|e| f.error("time", e))
}

/// Parses the text of rtl_433's `time`: `Ok(None)` for a time without a zone or a file
/// position, `Err` with the reason for anything unreadable.
pub fn parse_time(text: &str) -> std::result::Result<Option<Timestamp>, String> {
    if text.starts_with('@') {
        return Ok(None); // a position in a sample file, not a time
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return epoch(text).map(Some);
    }
    let normal = normalise(text);
    if let Ok(t) = normal.parse::<Timestamp>() {
        return Ok(Some(t));
    }
    if normal.parse::<DateTime>().is_ok() {
        return Ok(None); // local time without a zone: cannot be placed
    }
    Err(format!("{text:?} is not a time rtl_433 writes"))
}

/// `2026-01-05 14:03:07+0100` → `2026-01-05T14:03:07+01:00` (strftime's `%z` has no colon).
fn normalise(text: &str) -> String {
    let mut s = text.replacen(' ', "T", 1);
    let b = s.as_bytes();
    let n = b.len();
    if n > 5
        && matches!(b[n - 5], b'+' | b'-')
        && b[n - 4..].iter().all(u8::is_ascii_digit)
        && b[n - 6].is_ascii_digit()
    {
        s.insert(n - 2, ':');
    }
    s
}

/// `time:unix` (with `time:usec`: a fraction).
fn epoch(text: &str) -> std::result::Result<Timestamp, String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = whole.parse().map_err(|_| format!("{text:?} is not epoch seconds"))?;
    if frac.len() > 9 || frac.contains('.') {
        return Err(format!("{text:?} is not epoch seconds"));
    }
    let nanos: i32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| format!("{text:?} is not epoch seconds"))?
    };
    Timestamp::new(secs, nanos).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_rtl_433_writes() {
        let t = |s: &str| parse_time(s).unwrap().map(|t| t.to_string());
        assert_eq!(t("@0.032084s"), None);
        assert_eq!(t("2026-01-05 14:03:07"), None, "default: local, zone unknown");
        assert_eq!(t("2026-01-05T14:03:07"), None);
        assert_eq!(t("2026-01-05 14:03:07.123456"), None);
        assert_eq!(t("2026-01-05T14:03:07+0100").as_deref(), Some("2026-01-05T13:03:07Z"));
        assert_eq!(t("2026-01-05 14:03:07-0500").as_deref(), Some("2026-01-05T19:03:07Z"));
        assert_eq!(
            t("2026-01-05T14:03:07.5+00:00").as_deref(),
            Some("2026-01-05T14:03:07.5Z")
        );
        assert_eq!(t("2026-01-05T14:03:07Z").as_deref(), Some("2026-01-05T14:03:07Z"));
        assert_eq!(t("1767621787").as_deref(), Some("2026-01-05T14:03:07Z"));
        assert_eq!(t("1767621787.25").as_deref(), Some("2026-01-05T14:03:07.25Z"));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("1.2.3").is_err());
        assert!(parse_time("99999999999999999999").is_err());
    }
}
