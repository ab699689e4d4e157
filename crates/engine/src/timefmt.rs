//! Time formatting as docker prints it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 with nanoseconds, UTC (`2026-11-22T10:30:04.446903056Z`), trailing zeros trimmed
/// like Go's `RFC3339Nano`. The zero time is `0001-01-01T00:00:00Z`.
pub fn format_rfc3339_nanos(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    let s = humantime::format_rfc3339_nanos(t).to_string();
    // humantime prints exactly 9 fraction digits; Go trims trailing zeros.
    match s.find('.') {
        Some(dot) => {
            let frac = s[dot + 1..s.len() - 1].trim_end_matches('0');
            if frac.is_empty() {
                format!("{}Z", &s[..dot])
            } else {
                format!("{}.{}Z", &s[..dot], frac)
            }
        }
        None => s,
    }
}

pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    if s.starts_with("0001-") {
        return None;
    }
    humantime::parse_rfc3339_weak(s).ok()
}

pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn from_unix_nanos(n: u128) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n as u64)
}

/// docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = secs / 60;
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = (secs as f64 / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_trims_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_795_343_404, 446_903_000);
        assert_eq!(format_rfc3339_nanos(Some(t)), "2026-11-22T10:30:04.446903Z");
        let t = UNIX_EPOCH + Duration::new(1_795_343_404, 0);
        assert_eq!(format_rfc3339_nanos(Some(t)), "2026-11-22T10:30:04Z");
        assert_eq!(format_rfc3339_nanos(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn human_durations() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(13)), "13 seconds");
        assert_eq!(human_duration(Duration::from_secs(70)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }
}
