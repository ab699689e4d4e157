//! One repository on one endpoint: manifests, blobs (streamed and verified), uploads, mounts,
//! tags — each request authorized by the challenge flow.

use crate::auth::{fetch_token, parse_challenge, Challenge, Credentials};
use crate::cache::{AuthCache, Ping, TokenKey};
use crate::{Client, Endpoint, Error, Result};
use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use sha2::Digest as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    cache: Arc<AuthCache>,
    /// the key of this session's Bearer token in the cache
    token_key: TokenKey,
    /// HTTP requests sent to the registry and its token server so far
    requests: AtomicUsize,
}

impl Client {
    /// Opens a session on `repo` at `endpoint` with the authorization for
    /// `repository:<repo>:pull` (`,push` when `push`). An endpoint spoken to before is not
    /// asked `/v2/` again (its challenge is remembered), and a Bearer token still valid for
    /// this scope and these credentials is reused: such a session starts without a request.
    pub async fn session(
        &self,
        endpoint: &Endpoint,
        repo: &str,
        creds: &Credentials,
        push: bool,
    ) -> Result<Session> {
        let scope = format!(
            "repository:{repo}:{}",
            if push { "pull,push" } else { "pull" }
        );
        let s = Session {
            http: self.http_for(&endpoint.host)?,
            endpoint: endpoint.clone(),
            repo: repo.to_string(),
            creds: creds.clone(),
            push,
            challenge: Mutex::new(None),
            authz: Mutex::new(None),
            cache: self.auth.clone(),
            token_key: TokenKey::new(&endpoint.base, &scope, creds),
            requests: AtomicUsize::new(0),
        };
        match self.auth.ping(&endpoint.base) {
            Some(p) => {
                tracing::debug!(endpoint = %endpoint.base, ping = ?p, "registry challenge from the cache");
                s.apply(p, true).await?;
            }
            None => s.ping().await?,
        }
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
                let (token, _) = fetch_token(&http, &realm, &service, &[], creds).await?;
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

    /// HTTP requests this session sent (to the registry and to its token server).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends `GET /v2/` (counted); the URL and the answer.
    async fn get_v2(&self) -> Result<(String, reqwest::Response)> {
        let url = format!("{}/v2/", self.endpoint.base);
        self.count();
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
        Ok((url, resp))
    }

    /// `GET /v2/`: whether the registry wants authorization, and how; remembered per endpoint.
    async fn ping(&self) -> Result<()> {
        let (url, resp) = self.get_v2().await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let ch = challenge_of(&resp);
            drain(resp).await;
            let Some(ch) = ch else {
                return Err(Error::Unauthorized("unauthorized: no challenge".into()));
            };
            let p = Ping::Challenge(ch);
            self.cache.set_ping(&self.endpoint.base, p.clone());
            return self.apply(p, true).await;
        }
        // a registry that answers /v2/ with 404 speaks no v2 (docker: the same error)
        let resp = check(resp, "Get", &url).await?;
        drain(resp).await;
        self.cache.set_ping(&self.endpoint.base, Ping::Open);
        self.apply(Ping::Open, true).await
    }

    /// Sets the authorization a `/v2/` answer calls for: none, Basic from the credentials, or
    /// a Bearer token for this session's scope — the cached one when `reuse` and still valid,
    /// else a fresh one from the realm (then cached for its `expires_in`).
    async fn apply(&self, p: Ping, reuse: bool) -> Result<()> {
        let ch = match p {
            Ping::Open => {
                *self.authz.lock().await = None;
                return Ok(());
            }
            Ping::Challenge(c) => c,
        };
        *self.challenge.lock().await = Some(ch.clone());
        let value = match ch {
            Challenge::Basic => {
                if self.creds.is_empty() {
                    // docker: "no basic auth credentials"; the request that needs them fails
                    *self.authz.lock().await = None;
                    return Ok(());
                }
                HeaderValue::from_str(&self.creds.basic()).ok()
            }
            Challenge::Bearer { realm, service } => {
                if let Some(v) = reuse.then(|| self.cache.token(&self.token_key)).flatten() {
                    tracing::debug!(scope = %self.token_key.scope, "bearer token from the cache");
                    *self.authz.lock().await = Some(v);
                    return Ok(());
                }
                self.count();
                let (token, lifetime) =
                    fetch_token(&self.http, &realm, &service, &[self.scope()], &self.creds).await?;
                let v = HeaderValue::from_str(&format!("Bearer {token}")).ok();
                if let Some(v) = &v {
                    self.cache
                        .set_token(self.token_key.clone(), v.clone(), lifetime);
                }
                v
            }
        };
        *self.authz.lock().await = value;
        Ok(())
    }

    /// Sends the request `build` makes, authorized; on a 401 (a token that expired or was
    /// revoked, a registry remembered as open that is not any more), drops what was used,
    /// redoes the challenge with the 401's `WWW-Authenticate` (asking `/v2/` again when it has
    /// none) and sends it once more (so `build` must make a replayable request).
    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let verb = verb(&method);
        for attempt in 0..2 {
            let mut req = build(self.http.request(method.clone(), url));
            let used = self.authz.lock().await.clone();
            if let Some(a) = &used {
                req = req.header(AUTHORIZATION, a.clone());
            }
            self.count();
            let resp = req.send().await.map_err(|e| Error::Transport {
                method: verb.clone(),
                url: url.to_string(),
                reason: reason(&e),
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if attempt == 0 {
                if let Some(a) = &used {
                    self.cache.drop_token(&self.token_key, a);
                }
                let redo = match challenge_of(&resp) {
                    Some(c) => {
                        let p = Ping::Challenge(c);
                        self.cache.set_ping(&self.endpoint.base, p.clone());
                        Some(p)
                    }
                    None => None,
                };
                tracing::debug!(url, "401: redoing the registry's challenge");
                match redo {
                    Some(p) => {
                        self.apply(p, false).await?;
                    }
                    None => {
                        // a 401 without a challenge: ask /v2/ afresh
                        self.cache.forget_ping(&self.endpoint.base);
                        if let Some(Ping::Challenge(c)) = self.ping_answer().await? {
                            self.apply(Ping::Challenge(c), false).await?;
                        }
                    }
                }
                // something to try: send again (the 401's body is read first, so the
                // connection goes back to the pool)
                if self.authz.lock().await.is_some() {
                    drain(resp).await;
                    continue;
                }
            }
            let basic = matches!(*self.challenge.lock().await, Some(Challenge::Basic));
            if basic && self.creds.is_empty() {
                drain(resp).await;
                return Err(Error::Unauthorized(format!(
                    "{verb} \"{url}\": no basic auth credentials"
                )));
            }
            return check(resp, &verb, url).await;
        }
        Err(Error::Unauthorized(format!(
            "{verb} \"{url}\": unauthorized"
        )))
    }

    /// `GET /v2/` once more, remembering its answer; `None` when it was not a 401.
    async fn ping_answer(&self) -> Result<Option<Ping>> {
        let (_, resp) = self.get_v2().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            drain(resp).await;
            return Ok(None);
        }
        let ch = challenge_of(&resp);
        drain(resp).await;
        Ok(ch.map(|c| {
            let p = Ping::Challenge(c);
            self.cache.set_ping(&self.endpoint.base, p.clone());
            p
        }))
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
        self.count();
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

/// The challenge of a 401.
fn challenge_of(resp: &reqwest::Response) -> Option<Challenge> {
    resp.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .and_then(parse_challenge)
}

/// Reads what is left of a small answer so its connection goes back to the pool (a body
/// dropped unread closes the connection, and the next request pays for a new one); a big
/// one is dropped instead.
pub(crate) async fn drain(mut resp: reqwest::Response) {
    let mut left: usize = 64 * 1024;
    while let Ok(Some(c)) = resp.chunk().await {
        if c.len() >= left {
            return;
        }
        left -= c.len();
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
