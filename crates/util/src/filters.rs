//! docker's `label` filter: every `k` or `k=v` given must hold (the values are ANDed, unlike
//! most other filters, whose values are alternatives).

use std::collections::BTreeMap;

/// True when every entry of `wanted` (`key` or `key=value`) is satisfied by `labels`.
pub fn labels_match(wanted: &[String], labels: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
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
}
