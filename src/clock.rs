//! Wall-clock access, kept in one place so the core builds without an OS clock.

/// Milliseconds since the Unix epoch from the OS clock.
#[cfg(feature = "os")]
pub fn system_now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The default clock of a table: the OS clock with feature `os`, none without it.
pub(crate) fn default_clock() -> Option<fn() -> i64> {
    #[cfg(feature = "os")]
    {
        Some(system_now_ms)
    }
    #[cfg(not(feature = "os"))]
    {
        None
    }
}

/// Parses an RFC 3339 UTC timestamp (`2026-12-01T00:00:00Z`, fractional seconds allowed) or an
/// integer of Unix seconds into Unix milliseconds.
pub(crate) fn parse_instant(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| format!("`{s}` is out of range"));
    }
    let t = humantime::parse_rfc3339(s).map_err(|e| {
        format!("`{s}` is not an RFC 3339 UTC time like 2026-12-01T00:00:00Z or Unix seconds ({e})")
    })?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{s}` is before 1970"))?;
    Ok(d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn instants() {
        assert_eq!(
            super::parse_instant("1700000000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            super::parse_instant("1970-01-01T00:00:01.5Z").unwrap(),
            1500
        );
        assert!(super::parse_instant("yesterday").is_err());
        assert!(super::parse_instant("2026-12-01T00:00:00+01:00").is_err());
    }
}
