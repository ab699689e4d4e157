//! One repository on one endpoint: manifests, blobs (streamed and verified), uploads, mounts,
//! tags — each request authorized by the challenge flow.

use crate::auth::{fetch_token, parse_challenge, Challenge, Credentials};
use crate::{Client, Endpoint, Error, Result};
use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use sha2::Digest as _;
use tokio::sync::Mutex;

/// Manifests bigger than this are refused (docker's limit is 4 MiB too).
const MAX_MANIFEST: usize = 4 << 20;

/// The text of an error and its causes, as one line.
pub(crate) fn reason(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts: Vec<String> = Vec::new();
    if e.is_timeout() {
        parts.push("timeout".into());
    }
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// `manifest unknown: manifest unknown` from a registry's `{"errors":[{code,message}]}`.
pub(crate) fn registry_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let texts: Vec<String> = errs
        .iter()
        .map(|e| {
            let code = e
                .get("code")
                .and_then(|c| c.as_str())
                .unwrap_or("unknown")
                .to_lowercase()
                .replace('_', " ");
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            if msg.is_empty() {
                code
            } else {
                format!("{code}: {msg}")
            }
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join(", "))
}

/// A manifest as it came from the registry.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// sha256 of `bytes`
    pub digest: String,
}

/// A blob body on its way in; [`BlobStream::chunk`] fails on the first byte beyond the
/// expected size and, at the end, on a short body or a digest mismatch.
pub struct BlobStream {
    resp: reqwest::Response,
    hasher: sha2::Sha256,
    expected: String,
    size: Option<u64>,
    got: u64,
    url: String,
    done: bool,
}

impl BlobStream {
    /// Total bytes announced (the descriptor's size).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The next bytes, or `None` once the whole blob came and verified.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let c = self.resp.chunk().await.map_err(|e| Error::Transport {
            method: "Get".into(),
            url: self.url.clone(),
            reason: reason(&e),
        })?;
        match c {
            Some(b) => {
                self.got += b.len() as u64;
                if let Some(s) = self.size {
                    if self.got > s {
                        return Err(Error::Verify(format!(
                            "blob {} is longer than its descriptor's {s} bytes",
                            self.expected
                        )));
                    }
                }
                self.hasher.update(&b);
                Ok(Some(b))
            }
            None => {
                self.done = true;
                if let Some(s) = self.size {
                    if self.got != s {
                        return Err(Error::Verify(format!(
                            "unexpected EOF: blob {} ended after {} of {s} bytes",
                            self.expected, self.got
                        )));
                    }
                }
                let actual = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
                if actual != self.expected {
                    return Err(Error::Verify(format!(
                        "filesystem layer verification failed for digest {}",
                        self.expected
                    )));
                }
                Ok(None)
            }
        }
    }
}

/// A body to upload, fed chunk by chunk by the caller (see [`Session::upload_stream`]).
pub type UploadBody = tokio::sync::mpsc::Receiver<std::result::Result<Bytes, std::io::Error>>;

/// One repository on one endpoint, with its authorization.
pub struct Session {
    http: reqwest::Client,
    pub endpoint: Endpoint,
    /// `library/busybox`
    pub repo: String,
    creds: Credentials,
    push: bool,
    challenge: Mutex<Option<Challenge>>,
    authz: Mutex<Option<HeaderValue>>,
}

impl Client {
    /// Opens a session on `repo` at `endpoint`: asks `/v2/` for the challenge and gets the
    /// authorization for `repository:<repo>:pull` (`,push` when `push`).
    pub async fn session(
        &self,
        endpoint: &Endpoint,
        repo: &str,
        creds: &Credentials,
        push: bool,
    ) -> Result<Session> {
        let s = Session {
            http: self.http_for(&endpoint.host)?,
            endpoint: endpoint.clone(),
            repo: repo.to_string(),
            creds: creds.clone(),
            push,
            challenge: Mutex::new(None),
            authz: Mutex::new(None),
        };
        s.ping().await?;
        Ok(s)
    }

    /// Checks `creds` against the registry (`POST /auth`): `/v2/` with Basic, or a token
    /// from the realm without a scope.
    pub async fn login(&self, endpoint: &Endpoint, creds: &Credentials) -> Result<()> {
        let http = self.http_for(&endpoint.host)?;
        let url = format!("{}/v2/", endpoint.base);
        let send = |req: reqwest::RequestBuilder| async {
            req.send().await.map_err(|e| Error::Transport {
                method: "Get".into(),
                url: url.clone(),
                reason: reason(&e),
            })
        };
        let resp = send(http.get(&url)).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return check(resp, "Get", &url).await.map(|_| ());
        }
        let ch = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge);
        let failed = |status: StatusCode| {
            Error::Unauthorized(format!(
                "login attempt to {url} failed with status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ))
        };
        match ch {
            Some(Challenge::Basic) | None => {
                let resp = send(http.get(&url).header(AUTHORIZATION, creds.basic())).await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(failed(resp.status()))
                }
            }
            Some(Challenge::Bearer { realm, service }) => {
                let token = fetch_token(&http, &realm, &service, &[], creds).await?;
                let resp = send(
                    http.get(&url)
                        .header(AUTHORIZATION, format!("Bearer {token}")),
                )
                .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(failed(resp.status()))
                }
            }
        }
    }
}

/// Turns an error status into [`Error::Status`] (with the registry's error text).
pub(crate) async fn check(
    resp: reqwest::Response,
    method: &str,
    url: &str,
) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let message = registry_message(&body).unwrap_or_else(|| {
        format!(
            "{method} \"{url}\": unexpected status {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    });
    Err(Error::Status {
        status: status.as_u16(),
        message,
    })
}

impl Session {
    fn scope(&self) -> String {
        format!(
            "repository:{}:{}",
            self.repo,
            if self.push { "pull,push" } else { "pull" }
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.endpoint.base, self.repo)
    }

    /// An absolute URL for a `Location` header (registries may answer a path).
    fn absolute(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            format!("{}{}", self.endpoint.base, loc)
        }
    }

    async fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.endpoint.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Transport {
                method: "Get".into(),
                url: url.clone(),
                reason: reason(&e),
            })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.authorize(resp.headers()).await?;
            return Ok(());
        }
        // a registry that answers /v2/ with 404 speaks no v2 (docker: the same error)
        check(resp, "Get", &url).await.map(|_| ())
    }

    /// Authorizes from a 401's `WWW-Authenticate` (or the one remembered).
    async fn authorize(&self, headers: &reqwest::header::HeaderMap) -> Result<()> {
        let ch = headers
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge);
        let ch = match ch {
            Some(c) => {
                *self.challenge.lock().await = Some(c.clone());
                c
            }
            None => match self.challenge.lock().await.clone() {
                Some(c) => c,
                None => return Err(Error::Unauthorized("unauthorized: no challenge".into())),
            },
        };
        let value = match ch {
            Challenge::Basic => {
                if self.creds.is_empty() {
                    // docker: "no basic auth credentials"; the request that needs them fails
                    *self.authz.lock().await = None;
                    return Ok(());
                }
                self.creds.basic()
            }
            Challenge::Bearer { realm, service } => {
                let token =
                    fetch_token(&self.http, &realm, &service, &[self.scope()], &self.creds).await?;
                format!("Bearer {token}")
            }
        };
        *self.authz.lock().await = HeaderValue::from_str(&value).ok();
        Ok(())
    }

    /// Sends the request `build` makes, authorized; on a 401, re-authorizes once and sends
    /// it again (so `build` must make a replayable request).
    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let verb = verb(&method);
        for attempt in 0..2 {
            let mut req = build(self.http.request(method.clone(), url));
            if let Some(a) = self.authz.lock().await.clone() {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| Error::Transport {
                method: verb.clone(),
                url: url.to_string(),
                reason: reason(&e),
            })?;
            if resp.status() == StatusCode::UNAUTHORIZED {
                if attempt == 0 && self.authz.lock().await.is_some() {
                    self.authorize(resp.headers()).await?;
                    continue;
                }
                let basic = matches!(*self.challenge.lock().await, Some(Challenge::Basic));
                if basic && self.creds.is_empty() {
                    return Err(Error::Unauthorized(format!(
                        "{verb} \"{url}\": no basic auth credentials"
                    )));
                }
                return check(resp, &verb, url).await;
            }
            return Ok(resp);
        }
        Err(Error::Unauthorized(format!(
            "{verb} \"{url}\": unauthorized"
        )))
    }

    /// `GET /v2/<repo>/manifests/<reference>`: any manifest type; verified against the
    /// reference when it is a digest.
    pub async fn manifest(&self, reference: &str) -> Result<Manifest> {
        let url = self.url(&format!("manifests/{reference}"));
        let accept = [
            crate::media::OCI_INDEX,
            crate::media::DOCKER_LIST,
            crate::media::OCI_MANIFEST,
            crate::media::DOCKER_MANIFEST,
            crate::media::DOCKER_V1_SIGNED,
            crate::media::DOCKER_V1,
        ]
        .join(", ");
        let resp = self
            .send(Method::GET, &url, |r| r.header(ACCEPT, accept.as_str()))
            .await?;
        let resp = check(resp, "Get", &url).await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let bytes = read_limited(resp, MAX_MANIFEST, &url).await?;
        let digest = crate::sha256_digest(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(Error::Verify(format!(
                "manifest verification failed for digest {reference}"
            )));
        }
        // the mediaType field wins over a generic content type
        let in_body = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            });
        let media_type = match in_body {
            Some(m) if !m.is_empty() => m,
            _ => media_type,
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `GET /v2/<repo>/blobs/<digest>` as a verified stream.
    pub async fn blob(&self, digest: &str, size: Option<u64>) -> Result<BlobStream> {
        if !digest.starts_with("sha256:") {
            return Err(Error::Invalid(format!("unsupported digest {digest}")));
        }
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::GET, &url, |r| r).await?;
        let resp = check(resp, "Get", &url).await?;
        Ok(BlobStream {
            resp,
            hasher: sha2::Sha256::new(),
            expected: digest.to_string(),
            size,
            got: 0,
            url,
            done: false,
        })
    }

    /// A small blob (a config) whole, verified.
    pub async fn blob_bytes(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>> {
        if size.is_some_and(|s| s > 64 << 20) {
            return Err(Error::Invalid(format!("blob {digest} is too big")));
        }
        let mut s = self.blob(digest, size).await?;
        let mut out = Vec::new();
        while let Some(c) = s.chunk().await? {
            if out.len() + c.len() > 64 << 20 {
                return Err(Error::Invalid(format!("blob {digest} is too big")));
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: its size when the repository has it.
    pub async fn has_blob(&self, digest: &str) -> Result<Option<u64>> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::HEAD, &url, |r| r).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check(resp, "Head", &url).await?;
        Ok(Some(
            resp.headers()
                .get(CONTENT_LENGTH)
                .and_then(|h| h.to_str().ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Cross-repository mount (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`): true when
    /// the registry mounted it; an upload it opened instead is cancelled.
    pub async fn mount(&self, digest: &str, from: &str) -> Result<bool> {
        let url = self.url("blobs/uploads/");
        let resp = self
            .send(Method::POST, &url, |r| {
                r.query(&[("mount", digest), ("from", from)])
                    .header(CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(true);
        }
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|h| h.to_str().ok())
            .map(|l| self.absolute(l));
        let ok = resp.status().is_success();
        check(resp, "Post", &url).await?;
        if let (true, Some(loc)) = (ok, loc) {
            let _ = self.send(Method::DELETE, &loc, |r| r).await;
        }
        Ok(false)
    }

    /// Starts an upload; returns its location.
    async fn start_upload(&self) -> Result<String> {
        let url = self.url("blobs/uploads/");
        let resp = self
            .send(Method::POST, &url, |r| r.header(CONTENT_LENGTH, "0"))
            .await?;
        let resp = check(resp, "Post", &url).await?;
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| Error::Invalid(format!("{url}: upload without a Location")))?;
        Ok(self.absolute(loc))
    }

    fn with_digest(loc: &str, digest: &str) -> String {
        let sep = if loc.contains('?') { '&' } else { '?' };
        format!("{loc}{sep}digest={digest}")
    }

    /// A whole blob in one request (POST, then PUT with the body).
    pub async fn upload_bytes(&self, digest: &str, data: Bytes) -> Result<()> {
        let loc = self.start_upload().await?;
        let url = Self::with_digest(&loc, digest);
        let resp = self
            .send(Method::PUT, &url, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .body(data.clone())
            })
            .await?;
        check(resp, "Put", &url).await.map(|_| ())
    }

    /// A blob streamed in one PATCH (chunked transfer encoding) whose digest is known only
    /// at the end: `digest` resolves once `body` has ended.
    pub async fn upload_stream(
        &self,
        body: UploadBody,
        digest: tokio::sync::oneshot::Receiver<String>,
    ) -> Result<String> {
        let loc = self.start_upload().await?;
        let stream = futures_util::stream::unfold(body, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let mut req = self
            .http
            .patch(&loc)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(a) = self.authz.lock().await.clone() {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = req.send().await.map_err(|e| Error::Transport {
            method: "Patch".into(),
            url: loc.clone(),
            reason: reason(&e),
        })?;
        let resp = check(resp, "Patch", &loc).await?;
        let next = resp
            .headers()
            .get(LOCATION)
            .and_then(|h| h.to_str().ok())
            .map(|l| self.absolute(l))
            .unwrap_or(loc);
        let digest = digest
            .await
            .map_err(|_| Error::Invalid("the upload ended without a digest".into()))?;
        let url = Self::with_digest(&next, &digest);
        let resp = self
            .send(Method::PUT, &url, |r| r.header(CONTENT_LENGTH, "0"))
            .await?;
        check(resp, "Put", &url).await?;
        Ok(digest)
    }

    /// `PUT /v2/<repo>/manifests/<tag>`; returns the digest the registry names it by.
    pub async fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String> {
        let url = self.url(&format!("manifests/{tag}"));
        let body = Bytes::from(bytes);
        let digest = crate::sha256_digest(&body);
        let resp = self
            .send(Method::PUT, &url, |r| {
                r.header(CONTENT_TYPE, media_type).body(body.clone())
            })
            .await?;
        check(resp, "Put", &url).await?;
        Ok(digest)
    }

    /// `GET /v2/<repo>/tags/list`
    pub async fn tags(&self) -> Result<Vec<String>> {
        let url = self.url("tags/list");
        let resp = self.send(Method::GET, &url, |r| r).await?;
        let resp = check(resp, "Get", &url).await?;
        let bytes = read_limited(resp, 16 << 20, &url).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("{url}: {e}")))?;
        Ok(v.get("tags")
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn verb(m: &Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_lowercase());
    out
}

pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    max: usize,
    url: &str,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(|e| Error::Transport {
        method: "Get".into(),
        url: url.to_string(),
        reason: reason(&e),
    })? {
        if out.len() + c.len() > max {
            return Err(Error::Invalid(format!(
                "{url}: answer bigger than {max} bytes"
            )));
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_as_docker_prints_them() {
        let b = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            registry_message(b).as_deref(),
            Some("manifest unknown: manifest unknown")
        );
        assert_eq!(registry_message("<html>"), None);
        assert_eq!(verb(&Method::HEAD), "Head");
    }
}
