//! Search: the registry's v1 search API (`/v1/search?q=&n=`) where it has one; otherwise the
//! v2 catalog (`/v2/_catalog`) filtered by the term — what distribution offers.

use crate::auth::{fetch_token, parse_challenge, Challenge, Credentials};
use crate::session::{check, read_limited, reason};
use crate::{Client, Endpoint, Error, Result};
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

/// One result, as docker's `GET /images/search` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SearchResult {
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    pub name: String,
    #[serde(default)]
    pub is_automated: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct V1Results {
    #[serde(default)]
    results: Vec<SearchResult>,
}

impl Client {
    /// Searches `endpoint` for `term` (the word, without the registry part). `prefix` is put
    /// in front of catalog names (`127.0.0.1:5000/`).
    pub async fn search(
        &self,
        endpoint: &Endpoint,
        term: &str,
        limit: usize,
        creds: &Credentials,
        prefix: &str,
    ) -> Result<Vec<SearchResult>> {
        let http = self.http_for(&endpoint.host)?;
        let url = format!("{}/v1/search", endpoint.base);
        let n = limit.to_string();
        let get = |url: String, q: Vec<(&'static str, String)>, authz: Option<String>| {
            let http = http.clone();
            async move {
                let mut req = http.get(&url).query(&q);
                if let Some(a) = authz {
                    req = req.header(AUTHORIZATION, a);
                }
                req.send().await.map_err(|e| Error::Transport {
                    method: "Get".into(),
                    url: url.clone(),
                    reason: reason(&e),
                })
            }
        };
        let basic = (!creds.username.is_empty()).then(|| creds.basic());
        let resp = get(
            url.clone(),
            vec![("q", term.to_string()), ("n", n.clone())],
            basic.clone(),
        )
        .await?;
        if resp.status().is_success() {
            let bytes = read_limited(resp, 16 << 20, &url).await?;
            let r: V1Results = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invalid(format!("{url}: {e}")))?;
            let mut out = r.results;
            out.truncate(limit);
            return Ok(out);
        }
        // no v1 search here: the catalog, page by page
        let mut url = format!("{}/v2/_catalog?n=1000", endpoint.base);
        let mut authz: Option<String> = None;
        let mut names: Vec<String> = Vec::new();
        for _page in 0..50 {
            let mut resp = get(url.clone(), Vec::new(), authz.clone()).await?;
            if resp.status() == StatusCode::UNAUTHORIZED && authz.is_none() {
                let ch = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .and_then(parse_challenge);
                authz = match ch {
                    Some(Challenge::Bearer { realm, service }) => {
                        let t = fetch_token(
                            &http,
                            &realm,
                            &service,
                            &["registry:catalog:*".to_string()],
                            creds,
                        )
                        .await?
                        .0;
                        Some(format!("Bearer {t}"))
                    }
                    _ => basic.clone(),
                };
                resp = get(url.clone(), Vec::new(), authz.clone()).await?;
            }
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|h| h.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(u, _)| u.to_string());
            let resp = check(resp, "Get", &url).await?;
            let bytes = read_limited(resp, 16 << 20, &url).await?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invalid(format!("{url}: {e}")))?;
            names.extend(
                v.get("repositories")
                    .and_then(|r| r.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from)),
            );
            match next {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", endpoint.base),
                _ => break,
            }
        }
        let mut out: Vec<SearchResult> = names
            .iter()
            .filter(|name| term.is_empty() || name.contains(term))
            .map(|name| SearchResult {
                star_count: 0,
                is_official: false,
                name: format!("{prefix}{name}"),
                is_automated: false,
                description: String::new(),
            })
            .collect();
        out.truncate(limit);
        Ok(out)
    }
}
