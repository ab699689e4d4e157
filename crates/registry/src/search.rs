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
        // no v1 search here: the catalog
        let url = format!("{}/v2/_catalog", endpoint.base);
        let q = vec![("n", "10000".to_string())];
        let mut resp = get(url.clone(), q.clone(), None).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let ch = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(parse_challenge);
            let authz = match ch {
                Some(Challenge::Bearer { realm, service }) => {
                    let t = fetch_token(
                        &http,
                        &realm,
                        &service,
                        &["registry:catalog:*".to_string()],
                        creds,
                    )
                    .await?;
                    Some(format!("Bearer {t}"))
                }
                _ => basic,
            };
            resp = get(url.clone(), q, authz).await?;
        }
        let resp = check(resp, "Get", &url).await?;
        let bytes = read_limited(resp, 64 << 20, &url).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("{url}: {e}")))?;
        let mut out: Vec<SearchResult> = v
            .get("repositories")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .filter(|name| term.is_empty() || name.contains(term))
                    .map(|name| SearchResult {
                        star_count: 0,
                        is_official: false,
                        name: format!("{prefix}{name}"),
                        is_automated: false,
                        description: String::new(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.truncate(limit);
        Ok(out)
    }
}
