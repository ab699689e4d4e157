//! The `filters=` query parameter of the list and prune routes: its JSON decoding, docker's
//! `label` filter (every `k` or `k=v` given must hold: the values are ANDed, unlike most other
//! filters, whose values are alternatives) and the `reference=` glob. Pure functions on
//! client input, fuzzed in `fuzz/fuzz_targets/filters.rs`.

use std::collections::{BTreeMap, HashMap};

/// Parses docker's filter JSON: `{"k":{"v":true}}` (or the older `{"k":["v"]}`). The error
/// is the message for a 400.
pub fn parse(s: &str) -> Result<HashMap<String, Vec<String>>, String> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| format!("invalid filter: {e}"))?;
    let serde_json::Value::Object(m) = v else {
        return Err("invalid filter: not an object".into());
    };
    let mut out = HashMap::new();
    for (k, vals) in m {
        let list = match vals {
            serde_json::Value::Object(o) => o.keys().cloned().collect(),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => return Err(format!("invalid filter value for {k}")),
        };
        out.insert(k, list);
    }
    Ok(out)
}

/// A glob of docker's `reference=` filter: `*` matches within a path component. Linear in
/// the input per component (the recursive matcher it replaces took exponential time and
/// unbounded stack on `*a*a*a…b`: a query string could hang a daemon thread, found by
/// fuzz/fuzz_targets/filters.rs).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // `*` never matches `/`: components pair up one to one
    if p.iter().filter(|b| **b == b'/').count() != t.iter().filter(|b| **b == b'/').count() {
        return false;
    }
    p.split(|b| *b == b'/')
        .zip(t.split(|b| *b == b'/'))
        .all(|(p, t)| star_match(p, t))
}

/// `*`-only wildcard match, greedy with one backtrack point (the last star).
fn star_match(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // let the last star eat one more byte
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// `reference=` globs match `name:tag` or just the name.
pub fn reference_matches(pattern: &str, tag: &str) -> bool {
    let name = tag.rsplit_once(':').map(|(n, _)| n).unwrap_or(tag);
    glob_match(pattern, tag) || glob_match(pattern, name)
}

/// True when every entry of `wanted` (`key` or `key=value`) is satisfied by `labels`.
pub fn labels_match(wanted: &[String], labels: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Percent-decodes a query-string component (`+` is a space), as Go's `url.QueryUnescape`
/// but lenient: a malformed escape stays as it is.
pub fn decode_query(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_labels_must_match() {
        let labels: BTreeMap<String, String> = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(labels_match(&w(&["a=1", "b"]), &labels));
        assert!(labels_match(&w(&[]), &labels));
        assert!(!labels_match(&w(&["a=1", "b=3"]), &labels));
        assert!(!labels_match(&w(&["a=1", "c"]), &labels));
        assert!(!labels_match(&w(&["a"]), &BTreeMap::new()));
    }

    #[test]
    fn reference_globs() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(!glob_match("busy*", "library/busybox"));
        assert!(glob_match("a/*", "a/b"));
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(glob_match("a*b*c", "abbc"));
        assert!(!glob_match("a*b*c", "abXcY"));
        assert!(glob_match("*/*/*", "a/b/c"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("**", "ab"));
        assert!(!glob_match("a", ""));
    }

    /// The fuzzer's hang: a pattern of many stars against a long name. The old recursive
    /// matcher took exponential time (and one stack frame per byte); this returns at once.
    #[test]
    fn many_stars_do_not_hang() {
        let pattern = format!("{}b", "a*".repeat(40));
        let text = "a".repeat(200);
        assert!(!glob_match(&pattern, &text));
        assert!(!reference_matches(&pattern, &format!("{text}:latest")));
        let long = "*".repeat(1 << 20);
        assert!(glob_match(&long, &"x".repeat(1 << 16)));
    }

    #[test]
    fn filter_json() {
        let f = parse(r#"{"status":{"exited":true},"label":["a=1"]}"#).unwrap();
        assert_eq!(f["status"], vec!["exited".to_string()]);
        assert_eq!(f["label"], vec!["a=1".to_string()]);
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"a":1}"#).is_err());
        assert!(parse("{").is_err());
    }
}
