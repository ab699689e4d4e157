#![recursion_limit = "256"]
//! berth-api: the Docker Engine API over HTTP/1.1 on a unix socket.
//!
//! Holds no state: each route translates a request into an engine call and the result back
//! into Docker's JSON, headers and status codes. Errors are mapped to statuses in one place
//! (`error_response`).

mod body;
mod build;
mod compat;
mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod plugins;
mod query;
mod swarm;
mod system;
mod volumes;

use berth_engine::{Engine, Error};
use body::{full, Body};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use query::Query;
use std::sync::Arc;
use tokio::net::UnixListener;

/// The highest API version we speak, and the lowest we accept.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.12";

/// At most this many API connections are served at once; further clients wait in the
/// socket's backlog until one closes (high enough for compose with many attached services).
pub const MAX_CONNECTIONS: usize = 4096;

/// JSON request bodies (create, update, exec, networks, volumes…) larger than this are
/// refused with 413; archives, `load` and `build` bodies are streamed and not capped.
pub const MAX_JSON_BODY: u64 = 4 << 20;

/// One warning per `every` for a repeated failure, with the count of those not logged.
pub(crate) struct LogLimiter {
    every: std::time::Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl LogLimiter {
    pub(crate) fn new(every: std::time::Duration) -> LogLimiter {
        LogLimiter {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(number suppressed since the last one)` when this occurrence is to be logged.
    pub(crate) fn hit(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Errors of `accept` that mean "out of descriptors or memory": retrying at once would spin.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// Serves the API on `listener` until the task is dropped. At most `MAX_CONNECTIONS` at once;
/// when descriptors run out, accepting backs off (5 ms doubling to 1 s) instead of spinning,
/// and the warning is logged at most every 10 s.
pub async fn serve(engine: Arc<Engine>, listener: UnixListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = std::time::Duration::ZERO;
    let mut limiter = LogLimiter::new(std::time::Duration::from_secs(10));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff = std::time::Duration::ZERO;
                s
            }
            Err(e) => {
                if let Some(n) = limiter.hit(std::time::Instant::now()) {
                    if n > 0 {
                        tracing::warn!("accept: {e} ({n} more since the last report)");
                    } else {
                        tracing::warn!("accept: {e}");
                    }
                }
                if out_of_resources(&e) {
                    backoff = (backoff * 2).clamp(
                        std::time::Duration::from_millis(5),
                        std::time::Duration::from_secs(1),
                    );
                    tokio::time::sleep(backoff).await;
                }
                continue;
            }
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| {
                let engine = engine.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(engine, req).await) }
            });
            // buffers below malloc's mmap threshold (256 KiB, set by berthd): hyper's default
            // (~400 KiB) made every read buffer of a large upload a fresh mmap, faulted in
            // and unmapped again
            if let Err(e) = http1::Builder::new()
                .max_buf_size(128 * 1024)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await
            {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

/// The whole body of a request whose body is JSON, at most `MAX_JSON_BODY` bytes (413
/// otherwise, before anything is buffered when the client announced the length).
pub(crate) async fn read_small_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    use http_body_util::BodyExt;
    let too_large = || {
        message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request body too large: at most {} MiB of JSON is accepted",
                MAX_JSON_BODY >> 20
            ),
        )
    };
    let announced = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_JSON_BODY) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY as usize)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(message(
            StatusCode::BAD_REQUEST,
            &format!("reading body: {e}"),
        )),
    }
}

/// Common headers every daemon response carries.
pub(crate) fn with_headers(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert("Api-Version", API_VERSION.parse().expect("static header"));
    h.insert(
        "Docker-Experimental",
        "false".parse().expect("static header"),
    );
    h.insert("Ostype", "linux".parse().expect("static header"));
    h.insert(
        "Server",
        concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")
            .parse()
            .expect("static header"),
    );
    r
}

/// Answers `101 UPGRADED` and, once hyper hands over the raw connection, runs `f` on it
/// (attach and exec start). `api_version`: exec's 101 carries the version header, attach's not.
/// The hijacked connection, handed on only once the client has read the 101 head: clients that
/// parse the head through a buffered reader and then read the raw socket (docker-py's exec_run
/// and attach) lose whatever stream bytes arrived with the head. On a unix socket the bytes the
/// peer has not read yet are visible (SIOCOUTQ), so the stream starts when that queue is empty
/// (bounded wait: a client that never reads still gets its stream).
async fn client_stream(up: hyper::upgrade::Upgraded) -> Box<dyn berth_engine::ClientIo> {
    match up.downcast::<TokioIo<tokio::net::UnixStream>>() {
        Ok(parts) => {
            let stream = parts.io.into_inner();
            let t0 = std::time::Instant::now();
            while unread_by_peer(&stream) > 0 && t0.elapsed() < std::time::Duration::from_secs(2) {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            if parts.read_buf.is_empty() {
                Box::new(stream)
            } else {
                let (r, w) = tokio::io::split(stream);
                let r = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(parts.read_buf), r);
                Box::new(tokio::io::join(r, w))
            }
        }
        Err(up) => Box::new(TokioIo::new(up)),
    }
}

/// Bytes written to `s` that its peer has not read yet (0 when unknown).
fn unread_by_peer(s: &tokio::net::UnixStream) -> i32 {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (== TIOCOUTQ) on a socket we own, into a c_int.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r == 0 {
        n
    } else {
        0
    }
}

pub(crate) fn hijack<F, Fut>(
    on_upgrade: hyper::upgrade::OnUpgrade,
    api_version: bool,
    f: F,
) -> Response<Body>
where
    F: FnOnce(Box<dyn berth_engine::ClientIo>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => f(client_stream(up).await).await,
            Err(e) => tracing::warn!("connection upgrade failed: {e}"),
        }
    });
    let mut r = raw_stream(StatusCode::SWITCHING_PROTOCOLS, Bytes::new(), "Upgrade");
    let h = r.headers_mut();
    h.insert("Upgrade", "tcp".parse().expect("static header"));
    if api_version {
        h.insert("Api-Version", API_VERSION.parse().expect("static header"));
    }
    r
}

pub(crate) fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut data = serde_json::to_vec(v).unwrap_or_default();
    data.push(b'\n');
    let mut r = Response::new(full(data));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "Content-Type",
        "application/json".parse().expect("static header"),
    );
    with_headers(r)
}

pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    with_headers(r)
}

pub(crate) fn message(status: StatusCode, msg: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "message": msg }))
}

/// The one place engine errors become HTTP statuses (and their messages).
fn error_parts(e: Error) -> (StatusCode, Option<String>) {
    match e {
        Error::NotFound(m) => (StatusCode::NOT_FOUND, Some(m)),
        Error::Conflict(m) => (StatusCode::CONFLICT, Some(m)),
        Error::Forbidden(m) => (StatusCode::FORBIDDEN, Some(m)),
        Error::Unauthorized(m) => (StatusCode::UNAUTHORIZED, Some(m)),
        Error::InvalidParameter(m) => (StatusCode::BAD_REQUEST, Some(m)),
        Error::NotModified => (StatusCode::NOT_MODIFIED, None),
        Error::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, Some(m)),
    }
}

pub(crate) fn error_response(e: Error) -> Response<Body> {
    match error_parts(e) {
        (status, Some(m)) => message(status, &m),
        (status, None) => empty(status),
    }
}

/// A failed attach, as dockerd answers it on the connection it has taken over: the bare
/// message and `\r\n` as a raw stream, then the connection closes.
pub(crate) fn hijack_error(e: Error) -> Response<Body> {
    let (status, m) = error_parts(e);
    let text = format!("{}\r\n", m.unwrap_or_default());
    raw_stream(status, Bytes::from(text), "close")
}

/// A response of docker's raw-stream type with `connection`.
fn raw_stream(status: StatusCode, body: Bytes, connection: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        "Content-Type",
        "application/vnd.docker.raw-stream"
            .parse()
            .expect("static header"),
    );
    h.insert("Connection", connection.parse().expect("static header"));
    r
}

/// Splits `/v1.41/containers/json` into (Some("1.41"), "/containers/json").
fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let v = &rest[..slash];
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return (Some(v), &rest[slash..]);
            }
        }
    }
    (None, path)
}

fn version_tuple(v: &str) -> (u32, u32) {
    let mut it = v.split('.');
    let a = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let b = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (a, b)
}

tokio::task_local! {
    /// The API version of the request being handled (`/v1.19/…`; the newest when none).
    static REQUEST_VERSION: (u32, u32);
}

/// The API version the current request asked for (the newest outside a request).
pub(crate) fn request_version() -> (u32, u32) {
    REQUEST_VERSION
        .try_with(|v| *v)
        .unwrap_or_else(|_| version_tuple(API_VERSION))
}

/// Whether the current request's API version is below `v` (`"1.20"`).
pub(crate) fn version_below(v: &str) -> bool {
    request_version() < version_tuple(v)
}

async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> Response<Body> {
    let v = split_version(req.uri().path())
        .0
        .map(version_tuple)
        .unwrap_or_else(|| version_tuple(API_VERSION));
    REQUEST_VERSION
        .scope(v, handle_versioned(engine, req))
        .await
}

async fn handle_versioned(engine: Arc<Engine>, req: Request<Incoming>) -> Response<Body> {
    // path segments arrive escaped (`/networks/my%20net`); `+` is no space in a path
    let path = berth_util::filters::decode_query(&req.uri().path().replace('+', "%2B"));
    let (version, route) = split_version(&path);
    if let Some(v) = version {
        if version_tuple(v) > version_tuple(API_VERSION) {
            return message(
                StatusCode::BAD_REQUEST,
                &format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                ),
            );
        }
        if version_tuple(v) < version_tuple(MIN_API_VERSION) {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"),
            );
        }
    }
    let route = route.to_string();
    let q = Query::parse(req.uri().query().unwrap_or(""));
    let method = req.method().clone();
    tracing::debug!("{method} {path}");
    let segs: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match segs.first().copied() {
        Some("_ping") | Some("version") | Some("info") | Some("system") => {
            system::route(&engine, &method, &segs).await
        }
        Some("containers") => containers::route(engine, req, &method, &segs, &q).await,
        Some("images") => images::route(engine, req, &method, &route, &q).await,
        Some("commit") if method == hyper::Method::POST => {
            // the body (a container config; null or absent from most clients) is decoded
            // before the container is looked up: malformed JSON is a 400
            let data = match read_small_body(req).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let mut changes = Vec::new();
            if !data.iter().all(u8::is_ascii_whitespace) {
                match containers::decode_json::<berth_types::ContainerConfig>(&data, "") {
                    Ok(Some(cfg)) => changes = commit_changes(&cfg),
                    Ok(None) => {}
                    Err(m) => return message(StatusCode::BAD_REQUEST, &m),
                }
            }
            // the body's config first, then `changes=` over it (dockerd's order)
            changes.extend(q.all("changes"));
            let container = q.get("container").unwrap_or("").to_string();
            let reference = match (
                q.get("repo").filter(|r| !r.is_empty()),
                q.get("tag").filter(|t| !t.is_empty()),
            ) {
                (Some(r), Some(t)) => Some(format!("{r}:{t}")),
                (Some(r), None) => Some(r.to_string()),
                _ => None,
            };
            let pause = q.get("pause").map(|_| q.flag("pause")).unwrap_or(true);
            match engine
                .commit(
                    &container,
                    reference,
                    q.get("comment").unwrap_or(""),
                    q.get("author").unwrap_or(""),
                    &changes,
                    pause,
                )
                .await
            {
                Ok(id) => json_response(StatusCode::CREATED, &serde_json::json!({"Id": id})),
                Err(e) => error_response(e),
            }
        }
        Some("auth") if method == hyper::Method::POST && segs.len() == 1 => {
            let body = match http_body_util::BodyExt::collect(req.into_body()).await {
                Ok(b) => b.to_bytes(),
                Err(e) => return message(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            match engine.registry_login(&body).await {
                Ok(v) => json_response(StatusCode::OK, &v),
                Err(e) => error_response(e),
            }
        }
        Some("networks") => networks::route(engine, req, &method, &segs, &q).await,
        Some("build") if method == hyper::Method::POST => {
            build::route(engine, req, &segs, &q).await
        }
        Some("plugins") => plugins::route(req, &method, &segs, &q).await,
        Some("swarm" | "services" | "tasks" | "nodes" | "secrets" | "configs") => {
            swarm::route(req, &method, &segs, &q).await
        }
        Some("volumes") => volumes::route(engine, req, &method, &segs, &q).await,
        Some("exec") => exec::route(engine, req, &method, &segs, &q).await,
        Some("events") if method == hyper::Method::GET && segs.len() == 1 => {
            events::route(engine, &q)
        }
        _ => not_found(),
    }
}

/// The fields a commit body sets, as `changes` instructions over the container's config
/// (docker merges the body into it: what the body leaves unset is the container's).
fn commit_changes(cfg: &berth_types::ContainerConfig) -> Vec<String> {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(c) = cfg.cmd.as_deref().filter(|c| !c.is_empty()) {
        out.push(format!("CMD {}", json(c)));
    }
    if let Some(e) = cfg.entrypoint.as_deref().filter(|e| !e.is_empty()) {
        out.push(format!("ENTRYPOINT {}", json(e)));
    }
    // `k="v"`: values holding a quote cannot be said in that form and are left out
    let kv = |k: &str, v: &str| {
        (!v.contains('"') && !k.contains(['=', ' '])).then(|| format!("{k}=\"{v}\""))
    };
    for e in cfg.env.iter().flatten() {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        if let Some(x) = kv(k, v) {
            out.push(format!("ENV {x}"));
        }
    }
    for (k, v) in cfg.labels.iter().flatten() {
        if let Some(x) = kv(k, v) {
            out.push(format!("LABEL {x}"));
        }
    }
    if !cfg.user.is_empty() {
        out.push(format!("USER {}", cfg.user));
    }
    if !cfg.working_dir.is_empty() {
        out.push(format!("WORKDIR {}", cfg.working_dir));
    }
    if let Some(s) = cfg.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        out.push(format!("STOPSIGNAL {s}"));
    }
    for (key, ins) in [("ExposedPorts", "EXPOSE"), ("Volumes", "VOLUME")] {
        if let Some(serde_json::Value::Object(m)) = cfg.extra.get(key) {
            let keys: Vec<String> = m.keys().cloned().collect();
            if !keys.is_empty() {
                // EXPOSE takes words, VOLUME a JSON list (paths may hold spaces)
                let arg = if ins == "EXPOSE" {
                    keys.join(" ")
                } else {
                    json(&keys)
                };
                out.push(format!("{ins} {arg}"));
            }
        }
    }
    out
}

pub(crate) fn not_found() -> Response<Body> {
    let mut data = b"{\"message\":\"page not found\"}\n".to_vec();
    data.shrink_to_fit();
    let mut r = Response::new(full(data));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        "Content-Type",
        "application/json".parse().expect("static header"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_split_off() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(
            split_version("/containers/json"),
            (None, "/containers/json")
        );
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert!(version_tuple("1.50") > version_tuple("1.41"));
        assert!(version_tuple("1.9") < version_tuple("1.12"));
    }

    #[test]
    fn repeated_warnings_are_limited() {
        let t0 = std::time::Instant::now();
        let mut l = LogLimiter::new(std::time::Duration::from_secs(10));
        assert_eq!(l.hit(t0), Some(0));
        for i in 1..1000 {
            assert_eq!(l.hit(t0 + std::time::Duration::from_millis(i)), None);
        }
        assert_eq!(l.hit(t0 + std::time::Duration::from_secs(11)), Some(999));
        assert_eq!(l.hit(t0 + std::time::Duration::from_secs(12)), None);
    }
}
