//! `GET /images/search`: the registry's v1 search, or its v2 catalog when it has none.

use crate::{Engine, Error, Result};
use berth_registry::{Credentials, Endpoint, SearchResult};
use std::collections::HashMap;

/// Splits `127.0.0.1:5000/word` into the registry and the word (`docker.io` without one).
fn split_term(term: &str) -> (String, String) {
    if let Some((first, rest)) = term.split_once('/') {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            return (first.to_string(), rest.to_string());
        }
    }
    ("docker.io".to_string(), term.to_string())
}

impl Engine {
    pub async fn image_search(
        &self,
        term: &str,
        limit: Option<&str>,
        filters: &HashMap<String, Vec<String>>,
        creds: &Credentials,
    ) -> Result<Vec<SearchResult>> {
        let limit = match limit.filter(|l| !l.is_empty()) {
            None => 25,
            Some(l) => {
                let n: i64 = l
                    .parse()
                    .map_err(|_| Error::InvalidParameter(format!("invalid limit {l:?}")))?;
                if !(1..=100).contains(&n) {
                    return Err(Error::InvalidParameter(format!(
                        "limit {n} is outside the range of [1, 100]"
                    )));
                }
                n as usize
            }
        };
        let mut min_stars = 0u64;
        let mut official: Option<bool> = None;
        let mut automated: Option<bool> = None;
        for (k, vals) in filters {
            for v in vals {
                let b = || match v.as_str() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(Error::InvalidParameter(format!("Invalid filter '{k}={v}'"))),
                };
                match k.as_str() {
                    "stars" => {
                        min_stars = v.parse().map_err(|_| {
                            Error::InvalidParameter(format!("Invalid filter 'stars={v}'"))
                        })?
                    }
                    "is-official" => official = Some(b()?),
                    "is-automated" => automated = Some(b()?),
                    _ => return Err(Error::InvalidParameter(format!("invalid filter '{k}'"))),
                }
            }
        }
        let (domain, word) = split_term(term);
        let (ep, prefix) = if domain == "docker.io" {
            (
                Endpoint {
                    base: "https://index.docker.io".into(),
                    host: "index.docker.io".into(),
                    mirror: false,
                },
                String::new(),
            )
        } else {
            let ep = self
                .registry()
                .endpoints(&domain)
                .into_iter()
                .rfind(|e| !e.mirror)
                .ok_or_else(|| Error::Internal("no registry endpoint".into()))?;
            (ep, format!("{domain}/"))
        };
        // filters apply before the limit: ask for more when filtering
        let ask = if filters.is_empty() { limit } else { 100 };
        let found = self
            .registry()
            .search(&ep, &word, ask, creds, &prefix)
            .await
            .map_err(|e| match e {
                berth_registry::Error::Unauthorized(m) => Error::Unauthorized(m),
                e => Error::Internal(e.to_string()),
            })?;
        Ok(found
            .into_iter()
            .filter(|r| r.star_count >= min_stars)
            .filter(|r| official.is_none_or(|o| r.is_official == o))
            .filter(|r| automated.is_none_or(|a| r.is_automated == a))
            .take(limit)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn terms() {
        use super::split_term;
        assert_eq!(
            split_term("127.0.0.1:5000/busy"),
            ("127.0.0.1:5000".into(), "busy".into())
        );
        assert_eq!(
            split_term("busybox"),
            ("docker.io".into(), "busybox".into())
        );
        assert_eq!(
            split_term("foo/bar"),
            ("docker.io".into(), "foo/bar".into())
        );
    }
}
