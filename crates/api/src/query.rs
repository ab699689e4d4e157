//! Query strings: percent-decoding and docker's boolean spellings.

use berth_util::filters::decode_query as decode;

pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }
    /// Every decoded pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a repeated parameter (`changes=…&changes=…`).
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// docker's `BoolValue`: absent, "", "0", "no", "false", "none" are false.
    pub fn flag(&self, k: &str) -> bool {
        match self.get(k) {
            None => false,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }
}

/// The `filters` parameter of list and prune routes (`{"name":{"x":true}}` or arrays).
pub(crate) fn filters(
    q: &Query,
) -> Result<std::collections::HashMap<String, Vec<String>>, berth_engine::Error> {
    match q.get("filters").filter(|f| !f.is_empty()) {
        Some(f) => berth_engine::ListOptions::parse_filters(f),
        None => Ok(Default::default()),
    }
}

/// Refuses filter keys a list does not know, with dockerd's text (400 `Invalid filter 'x'`).
pub(crate) fn known_filters(
    f: &std::collections::HashMap<String, Vec<String>>,
    allowed: &[&str],
) -> Result<(), berth_engine::Error> {
    match f.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(berth_engine::Error::InvalidParameter(format!(
            "Invalid filter '{k}'"
        ))),
        None => Ok(()),
    }
}

/// dockerd's accepted filters per list.
pub(crate) const CONTAINER_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
pub(crate) const IMAGE_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since"];
pub(crate) const VOLUME_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reads_flags() {
        let q = Query::parse("path=%2Ftmp%2Fx&force=1&a=b+c&f=false&t=ac-b4&t=ac-b4%3Atwo");
        assert_eq!(q.get("path"), Some("/tmp/x"));
        assert!(q.flag("force"));
        assert!(!q.flag("f"));
        assert!(!q.flag("missing"));
        assert_eq!(q.get("a"), Some("b c"));
        assert_eq!(q.get("t"), Some("ac-b4"));
    }
}
