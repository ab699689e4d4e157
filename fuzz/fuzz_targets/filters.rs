//! The `filters=` query parameter as the list routes see it: the query string is
//! percent-decoded (`berth_util::filters::decode_query`, as the API does), the JSON is decoded into filter
//! name → values, and the values are evaluated by the pure matchers (labels, `reference=`
//! globs) against fixed data. Never panics, never hangs (libFuzzer's -timeout).
#![no_main]

use berth_util::filters;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

use berth_util::filters::decode_query as decode;

const TAGS: &[&str] = &[
    "busybox:latest",
    "docker.io/library/busybox:1.36",
    "localhost:5000/a/b/c:v1",
    "registry.example.com:443/team/app:2024-01-01",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:latest",
];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // raw JSON and the query-string form
    let decoded = decode(s);
    for text in [s, decoded.as_str()] {
        let Ok(f) = filters::parse(text) else {
            continue;
        };
        let labels: BTreeMap<String, String> = [("a", "1"), ("com.example.x", ""), ("b", "x=y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, vals) in &f {
            if k == "label" {
                let _ = filters::labels_match(vals, &labels);
            }
            for v in vals {
                for t in TAGS {
                    let _ = filters::reference_matches(v, t);
                }
                // the value against itself: every literal pattern (no `*`) matches itself
                if !v.contains('*') {
                    assert!(filters::glob_match(v, v), "{v:?} does not match itself");
                }
            }
        }
    }
});
