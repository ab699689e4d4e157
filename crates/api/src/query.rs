//! Query strings: percent-decoding and docker's boolean spellings.

pub struct Query(Vec<(String, String)>);

fn decode(s: &str) -> String {
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
