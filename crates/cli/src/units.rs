//! docker's human-readable units (go-units) and its tabwriter table layout.

/// go-units `HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
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
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// "N units ago" for a unix timestamp, as docker's CREATED columns.
pub fn ago(created_unix: i64, now_unix: f64) -> String {
    format!("{} ago", human_duration(now_unix - created_unix as f64))
}

/// Go's `%.{prec}g`.
pub fn go_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", prec.saturating_sub(1), x); // d.ddde±X
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// go-units `HumanSizeWithPrecision(size, 3)` (powers of 1000).
pub fn human_size(size: f64) -> String {
    go_g_size(size, 3)
}

/// go-units `HumanSizeWithPrecision(size, prec)`; `HumanSize` is prec 4.
pub fn go_g_size(size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(s, prec), UNITS[i])
}

/// Go's `%v` of a float64 from decoded JSON: shortest digits, `%e` form when
/// the exponent is < -4 or >= 6 (so a pid of 1234567 prints `1.234567e+06`, as docker does).
pub fn go_float(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let e = format!("{:e}", x); // shortest: 1.795343404e9
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{x}")
    }
}

/// Lays out rows like docker's tabwriter (minwidth 10, padding 3, no
/// padding after the last column).
pub fn table(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max((c.chars().count() + 3).max(10));
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// docker's `Ellipsis`: cut to `max` characters, the last one being `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Go's `strconv.Quote` (enough for command lines).
pub fn go_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// go-units `RAMInBytes`: `64m`, `1g`, `512k`, `1.5GiB`, `100` (bytes);
/// binary multipliers.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.trim_end_matches(['i', 'I']);
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m: i64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => {
                    let n = s
                        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .unwrap_or(0);
                    return Err(if n > 0 {
                        format!("invalid suffix: '{}'", &s[n..])
                    } else {
                        bad()
                    });
                }
            };
            (&t[..t.len() - 1], m)
        }
        _ => {
            // only a bare "b"/"B" suffix may follow a number without unit
            if t.len() != s.len() && (s.len() - t.len() > 1 || s.ends_with(['i', 'I'])) {
                return Err(bad());
            }
            (t, 1)
        }
    };
    let num = num.trim_end_matches(' ');
    if num.is_empty()
        || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || num.starts_with('.')
    {
        return Err(bad());
    }
    let x: f64 = num.parse().map_err(|_| bad())?;
    Ok((x * mult as f64) as i64)
}

/// Go's `time.ParseDuration` → nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return Err(bad());
        }
        let x: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            o => return Err(format!("time: unknown unit \"{o}\" in duration \"{s}\"")),
        };
        total += x * mult;
        rest = &rest[u..];
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// Unix nanoseconds → `2006-01-02T15:04:05.000000000Z` (UTC).
pub fn rfc3339_nano_fixed(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let ns = nanos.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let t = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ns:09}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Unix seconds → Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let t = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// docker's `GetTimestamp` for `--since`/`--until`: a duration is taken
/// back from `now` (whole seconds), dates/RFC 3339 times become
/// `secs.nanos`, unix timestamps pass through. Local time is UTC here.
pub fn get_timestamp(v: &str, now: f64) -> Result<String, String> {
    if v != "0" {
        if let Ok(d) = parse_go_duration(v) {
            return Ok(format!("{}", (now - d as f64 / 1e9).floor() as i64));
        }
    }
    let parsed = (|| -> Option<(i64, i64)> {
        let (date, rest) = match v.split_once('T') {
            Some((a, b)) => (a, Some(b)),
            None => (v, None),
        };
        let mut dp = date.splitn(3, '-');
        let y: i64 = dp.next()?.parse().ok()?;
        let m: i64 = dp.next()?.parse().ok()?;
        let dd_s = dp.next()?;
        // date with zone is e.g. 2006-01-02Z07:00: ignore zone here
        let dd: i64 = dd_s.get(..2)?.parse().ok()?;
        let mut secs = days_from_civil(y, m, dd) * 86400;
        let mut nanos = 0i64;
        if let Some(r) = rest {
            // split off zone
            let zi = r.find(['Z', 'z', '+', '-']).unwrap_or(r.len());
            let (clock, zone) = r.split_at(zi);
            let (hms, frac) = match clock.split_once('.') {
                Some((a, b)) => (a, Some(b)),
                None => (clock, None),
            };
            let mut it = hms.split(':');
            let h: i64 = it.next()?.parse().ok()?;
            let mi: i64 = it.next().map(|x| x.parse().ok()).unwrap_or(Some(0))?;
            let s: i64 = it.next().map(|x| x.parse().ok()).unwrap_or(Some(0))?;
            secs += h * 3600 + mi * 60 + s;
            if let Some(f) = frac {
                let f: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
                nanos = f.parse().ok()?;
            }
            if let Some(z) = zone.strip_prefix(['+', '-']) {
                let (zh, zm) = z.split_once(':').unwrap_or((z, "0"));
                let off = zh.parse::<i64>().ok()? * 3600 + zm.parse::<i64>().ok()? * 60;
                secs += if zone.starts_with('+') { -off } else { off };
            }
        }
        Some((secs, nanos))
    })();
    match parsed {
        Some((s, n)) => Ok(format!("{s}.{n:09}")),
        None if v.contains('-') => Err(format!("parsing time \"{v}\": cannot parse")),
        None => {
            let (a, b) = v.split_once('.').unwrap_or((v, "0"));
            if a.parse::<i64>().is_ok() && b.parse::<i64>().is_ok() {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "failed to parse value as time or duration: \"{v}\""
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.3), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(13.0), "13 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(119.0), "About a minute");
        assert_eq!(human_duration(120.0), "2 minutes");
        assert_eq!(human_duration(59.0 * 60.0), "59 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5400.0), "2 hours");
        assert_eq!(human_duration(47.0 * 3600.0), "47 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(15.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(3.0 * 365.0 * 86400.0), "3 years");
        assert_eq!(ago(100, 113.5), "13 seconds ago");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(4_261_234.0), "4.26MB");
        assert_eq!(human_size(2_129_920.0), "2.13MB");
        assert_eq!(human_size(4_000_000.0), "4MB");
        assert_eq!(human_size(12_345.0), "12.3kB");
        assert_eq!(human_size(123_456_789.0), "123MB");
        assert_eq!(human_size(1_500_000_000.0), "1.5GB");
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_g(999.5, 3), "1e+03");
        assert_eq!(go_float(1234.0), "1234");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1795343404.0), "1.795343404e+09");
        assert_eq!(go_float(123456.0), "123456");
    }

    #[test]
    fn table_layout() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into(), "IMAGE ID".into()],
            vec!["busybox".into(), "latest".into(), "d72df08b3844".into()],
        ];
        assert_eq!(
            table(&rows),
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    d72df08b3844\n"
        );
    }

    #[test]
    fn quoting_and_ellipsis() {
        assert_eq!(go_quote("sleep 1000"), "\"sleep 1000\"");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("100b").unwrap(), 100);
        assert_eq!(ram_in_bytes("10x").unwrap_err(), "invalid suffix: 'x'");
        assert!(ram_in_bytes("m").is_err());
        assert!(ram_in_bytes("-1").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s").unwrap(), 10_000_000_000);
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_go_duration("300ms").unwrap(), 300_000_000);
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("abc").is_err());
    }

    #[test]
    fn timestamps() {
        let now = 1_795_343_677.4;
        assert_eq!(get_timestamp("10s", now).unwrap(), "1795343667");
        assert_eq!(get_timestamp("1m", now).unwrap(), "1795343617");
        assert_eq!(get_timestamp("1795343617", now).unwrap(), "1795343617");
        assert_eq!(get_timestamp("1795343617.5", now).unwrap(), "1795343617.5");
        assert_eq!(
            get_timestamp("2026-11-22T10:34:39Z", now).unwrap(),
            "1795343679.000000000"
        );
        assert_eq!(
            get_timestamp("2026-11-22T10:34:39.5Z", now).unwrap(),
            "1795343679.500000000"
        );
        assert_eq!(
            get_timestamp("2026-11-22T11:34:39+01:00", now).unwrap(),
            "1795343679.000000000"
        );
        assert_eq!(
            get_timestamp("2026-11-22", now).unwrap(),
            "1795305600.000000000"
        );
        assert!(get_timestamp("yesterday", now).is_err());
    }

    #[test]
    fn time_formats() {
        assert_eq!(
            rfc3339_nano_fixed(1_795_343_679_884_013_345),
            "2026-11-22T10:34:39.884013345Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(1_000_000_000),
            "1970-01-01T00:00:01.000000000Z"
        );
        assert_eq!(
            go_time_string(1_795_343_679),
            "2026-11-22 10:34:39 +0000 UTC"
        );
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }
}
