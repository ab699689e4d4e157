//! The Engine API client: ping + version negotiation, keep-alive reuse,
//! JSON requests, streaming responses and hijacked connections.

use crate::http::{self, Body, Conn, Framing, Head, ReqBody};
use anyhow::{anyhow, Result};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Highest API version this client speaks.
pub const MAX_API: &str = "1.41";

/// An error the daemon returned (`{"message":…}`), printed like docker does.
#[derive(Debug)]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}
impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}
impl std::error::Error for DaemonError {}

pub struct Client {
    pub socket: String,
    pub version: String,
    conn: Option<Conn>,
    /// The version came from `/_ping` or `DOCKER_API_VERSION`, not a guess.
    negotiated: bool,
}

pub struct Response {
    pub status: u16,
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| anyhow!("invalid JSON from the daemon: {e}"))
    }
}

/// The response to [`Client::upload`]; `writer` ends with the body's size.
pub struct Upload {
    pub head: Head,
    pub body: Body<Conn>,
    pub writer: std::thread::JoinHandle<std::io::Result<u64>>,
}

/// Why [`Client::stream_once`] failed: a too-new guess is sent again.
enum StreamError {
    TooNew(DaemonError),
    Other(anyhow::Error),
}

impl StreamError {
    fn into_anyhow(self) -> anyhow::Error {
        match self {
            StreamError::TooNew(e) => e.into(),
            StreamError::Other(e) => e,
        }
    }
}

impl From<anyhow::Error> for StreamError {
    fn from(e: anyhow::Error) -> Self {
        StreamError::Other(e)
    }
}

impl From<std::io::Error> for StreamError {
    fn from(e: std::io::Error) -> Self {
        StreamError::Other(e.into())
    }
}

/// A response whose body is read as it arrives (logs -f, load, wait).
pub struct Streaming {
    #[allow(dead_code)]
    pub head: Head,
    pub body: Body<Conn>,
}

pub fn parse_host(h: &str) -> Result<String> {
    if let Some(p) = h.strip_prefix("unix://") {
        Ok(p.to_string())
    } else if h.starts_with('/') {
        Ok(h.to_string())
    } else {
        Err(anyhow!(
            "unsupported host {h:?}: only unix:///path sockets are supported"
        ))
    }
}

pub fn version_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| -> Vec<u32> { s.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    p(a) < p(b)
}

pub fn error_from(status: u16, body: &[u8]) -> DaemonError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    DaemonError { status, message }
}

impl Client {
    /// A client that speaks [`MAX_API`] (or `DOCKER_API_VERSION`) without
    /// asking first: the version is negotiated (`/_ping`) only when the
    /// daemon answers that the guess is too new, and before requests that
    /// cannot be replayed (uploads, hijacks). berthd and dockerd ≥ 20.10
    /// speak [`MAX_API`], so most commands save a round trip.
    pub fn connect(socket: String) -> Result<Client> {
        let (version, negotiated) = match std::env::var("DOCKER_API_VERSION") {
            Ok(env) => (env, true),
            Err(_) => (MAX_API.to_string(), false),
        };
        Ok(Client {
            socket,
            version,
            conn: None,
            negotiated,
        })
    }

    /// Pings (`HEAD /_ping`, falling back to `GET` on 404/405) and takes the
    /// lower of the daemon's API version and ours, once.
    pub fn negotiate(&mut self) -> Result<()> {
        if self.negotiated {
            return Ok(());
        }
        let mut r = self.raw("HEAD", "/_ping", ReqBody::Empty, &[])?;
        if r.status == 404 || r.status == 405 {
            r = self.raw("GET", "/_ping", ReqBody::Empty, &[])?;
        }
        let v = r.head.header("Api-Version").unwrap_or("1.24").to_string();
        self.version = if version_lt(&v, MAX_API) {
            v
        } else {
            MAX_API.to_string()
        };
        self.negotiated = true;
        Ok(())
    }

    /// Whether an error answer means "negotiate and send again": the
    /// daemon is older than our guess.
    fn too_new(&self, status: u16, body: &[u8]) -> bool {
        !self.negotiated && status == 400 && error_from(status, body).message.contains("is too new")
    }

    /// A client for an already negotiated version (no ping).
    pub fn with_version(socket: String, version: String) -> Result<Client> {
        let negotiated = version != MAX_API;
        Ok(Client {
            socket,
            version,
            conn: None,
            negotiated,
        })
    }

    pub fn path(&self, p: &str) -> String {
        format!("/v{}{}", self.version, p)
    }

    fn conn(&mut self) -> Result<Conn> {
        match self.conn.take() {
            Some(c) => Ok(c),
            None => Ok(Conn::connect(&self.socket)?),
        }
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        body: ReqBody<'_>,
        extra: &[(&str, &str)],
    ) -> Result<(Conn, Head)> {
        let reused = self.conn.is_some();
        let mut conn = self.conn()?;
        // A reused connection may have been closed by the daemon meanwhile:
        // retry once on a fresh one, but only if nothing streamed was sent.
        let retryable = reused && !matches!(body, ReqBody::Chunked(..));
        match http::write_request(&mut conn.stream, method, path, body, extra) {
            Ok(()) => {}
            Err(e) if retryable => {
                let _ = e;
                return self.send_fresh(method, path, extra);
            }
            Err(e) => return Err(e.into()),
        }
        match http::read_head(&mut conn) {
            Ok(h) => Ok((conn, h)),
            Err(_) if retryable => self.send_fresh(method, path, extra),
            Err(e) => Err(e.into()),
        }
    }

    fn send_fresh(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
    ) -> Result<(Conn, Head)> {
        // Only bodiless requests are retried (that is all we reuse for).
        let mut conn = Conn::connect(&self.socket)?;
        let body = if method == "POST" {
            ReqBody::EmptyPost
        } else {
            ReqBody::Empty
        };
        http::write_request(&mut conn.stream, method, path, body, extra)?;
        let h = http::read_head(&mut conn)?;
        Ok((conn, h))
    }

    /// A request whose whole body is read; the connection is kept for reuse.
    pub fn raw(
        &mut self,
        method: &str,
        path: &str,
        body: ReqBody<'_>,
        extra: &[(&str, &str)],
    ) -> Result<Response> {
        let (conn, head) = self.send(method, path, body, extra)?;
        let fr = http::framing(method, &head);
        let mut b = Body::new(conn, fr);
        let mut data = Vec::new();
        b.read_to_end(&mut data)?;
        if fr != Framing::UntilEof
            && head
                .header("Connection")
                .map(|v| !v.eq_ignore_ascii_case("close"))
                .unwrap_or(true)
        {
            self.conn = Some(b.inner);
        }
        Ok(Response {
            status: head.status,
            head,
            body: data,
        })
    }

    /// Versioned request; non-2xx becomes a `DaemonError`.
    pub fn call(&mut self, method: &str, p: &str, body: ReqBody<'_>) -> Result<Response> {
        let again = body.replay();
        let path = self.path(p);
        let mut r = self.raw(method, &path, body, &[])?;
        if let Some(body) = again.filter(|_| self.too_new(r.status, &r.body)) {
            self.negotiate()?;
            let path = self.path(p);
            r = self.raw(method, &path, body, &[])?;
        }
        if r.status >= 400 {
            return Err(error_from(r.status, &r.body).into());
        }
        Ok(r)
    }

    pub fn get_json(&mut self, p: &str) -> Result<serde_json::Value> {
        self.call("GET", p, ReqBody::Empty)?.json()
    }

    pub fn post(&mut self, p: &str) -> Result<Response> {
        self.call("POST", p, ReqBody::EmptyPost)
    }

    /// Sends a request and returns once the headers are in; the body is
    /// read by the caller. Errors (status ≥ 400) are read whole and returned.
    pub fn stream(
        &mut self,
        method: &str,
        p: &str,
        body: ReqBody<'_>,
        extra: &[(&str, &str)],
        fresh: bool,
    ) -> Result<Streaming> {
        let again = body.replay();
        if again.is_none() || fresh {
            self.negotiate()?;
        }
        match self.stream_once(method, p, body, extra, fresh) {
            Err(StreamError::TooNew(..)) if again.is_some() => {
                self.negotiate()?;
                let body = again.unwrap_or(ReqBody::Empty);
                self.stream_once(method, p, body, extra, fresh)
                    .map_err(StreamError::into_anyhow)
            }
            r => r.map_err(StreamError::into_anyhow),
        }
    }

    fn stream_once(
        &mut self,
        method: &str,
        p: &str,
        body: ReqBody<'_>,
        extra: &[(&str, &str)],
        fresh: bool,
    ) -> std::result::Result<Streaming, StreamError> {
        let path = self.path(p);
        let (conn, head) = if fresh {
            let mut conn = Conn::connect(&self.socket)?;
            http::write_request(&mut conn.stream, method, &path, body, extra)?;
            let h = http::read_head(&mut conn)?;
            (conn, h)
        } else {
            self.send(method, &path, body, extra)?
        };
        let fr = http::framing(method, &head);
        let mut b = Body::new(conn, fr);
        if head.status >= 400 {
            let mut data = Vec::new();
            b.read_to_end(&mut data)?;
            if self.too_new(head.status, &data) {
                return Err(StreamError::TooNew(error_from(head.status, &data)));
            }
            return Err(StreamError::Other(error_from(head.status, &data).into()));
        }
        Ok(Streaming { head, body: b })
    }

    /// A request whose body is produced while it is sent, on a new
    /// connection: `produce` runs on a thread of its own writing into the
    /// chunked body (as Go's client streams a body while the response is
    /// read), and the response head is read here meanwhile. A daemon that
    /// answers early (an error) is read even though the body was cut short.
    /// The returned [`Upload`] holds the response and the writer's outcome.
    pub fn upload<F>(
        &mut self,
        method: &str,
        p: &str,
        content_type: &str,
        extra: &[(&str, &str)],
        produce: F,
    ) -> Result<Upload>
    where
        F: FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
    {
        self.negotiate()?;
        let path = self.path(p);
        let mut conn = Conn::connect(&self.socket)?;
        let mut w = conn.stream.try_clone()?;
        let mut head = http::request_head(method, &path, extra);
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        let writer = std::thread::spawn(move || -> std::io::Result<u64> {
            let res = (|| -> std::io::Result<u64> {
                w.write_all(head.as_bytes())?;
                let mut cw =
                    http::ChunkedWriter::new(std::io::BufWriter::with_capacity(1 << 17, &mut w));
                produce(&mut cw)?;
                let sent = cw.sent;
                cw.finish()?;
                Ok(sent)
            })();
            if let Err(e) = &res {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    // a failed producer: cut the request so the response read ends
                    let _ = w.shutdown(std::net::Shutdown::Both);
                }
            }
            res
        });
        let head = match http::read_head(&mut conn) {
            Ok(h) => h,
            Err(e) => {
                // the producer's own error explains a cut request better
                return match writer.join() {
                    Ok(Err(we)) if we.kind() != std::io::ErrorKind::BrokenPipe => Err(we.into()),
                    _ => Err(e.into()),
                };
            }
        };
        let fr = http::framing(method, &head);
        Ok(Upload {
            head,
            body: Body::new(conn, fr),
            writer,
        })
    }

    /// `POST` with `Connection: Upgrade` / `Upgrade: tcp` on a new
    /// connection; expects 101 and returns the raw socket plus any bytes
    /// that arrived with the headers.
    pub fn hijack(&mut self, p: &str) -> Result<(UnixStream, Vec<u8>)> {
        self.hijack_with(p, None)
    }

    /// `hijack` with a JSON body (exec start).
    pub fn hijack_with(&mut self, p: &str, json: Option<&[u8]>) -> Result<(UnixStream, Vec<u8>)> {
        self.negotiate()?;
        let path = self.path(p);
        let mut conn = Conn::connect(&self.socket)?;
        match json {
            None => http::write_request(
                &mut conn.stream,
                "POST",
                &path,
                ReqBody::EmptyPost,
                &[
                    ("Connection", "Upgrade"),
                    ("Content-Type", "text/plain"),
                    ("Upgrade", "tcp"),
                ],
            )?,
            Some(b) => http::write_request(
                &mut conn.stream,
                "POST",
                &path,
                ReqBody::Bytes("application/json", b),
                &[("Connection", "Upgrade"), ("Upgrade", "tcp")],
            )?,
        }
        let head = http::read_head(&mut conn)?;
        if head.status != 101 {
            let fr = http::framing("POST", &head);
            let mut b = Body::new(conn, fr);
            let mut data = Vec::new();
            let _ = b.read_to_end(&mut data);
            if head.status >= 400 {
                return Err(error_from(head.status, &data).into());
            }
            return Err(anyhow!(
                "unable to upgrade to tcp, received {}",
                head.status
            ));
        }
        let rest = conn.take_buffered();
        Ok((conn.stream, rest))
    }
}

/// Reads a JSON-lines stream (`{"stream":…}`, `{"status":…}`, `{"error":…}`)
/// and prints its text; returns the error line's message and code if any.
pub fn print_json_messages<R: Read, W: Write>(r: R, out: &mut W) -> Result<Option<(String, i32)>> {
    let reader = std::io::BufReader::new(r);
    use std::io::BufRead;
    for line in reader.lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(e) = v.get("errorDetail").or_else(|| v.get("error")) {
            let msg = e
                .get("message")
                .and_then(|m| m.as_str())
                .or_else(|| e.as_str())
                .or_else(|| v.get("error").and_then(|m| m.as_str()))
                .unwrap_or("unknown error")
                .to_string();
            let code = e
                .get("code")
                .and_then(|c| c.as_i64())
                .filter(|c| *c != 0)
                .unwrap_or(1) as i32;
            return Ok(Some((msg, code)));
        }
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            out.write_all(s.as_bytes())?;
        } else if let Some(s) = v.get("status").and_then(|s| s.as_str()) {
            if let Some(id) = v.get("id").and_then(|s| s.as_str()) {
                writeln!(out, "{id}: {s}")?;
            } else {
                writeln!(out, "{s}")?;
            }
        }
        out.flush()?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parsing() {
        assert_eq!(parse_host("unix:///run/x.sock").unwrap(), "/run/x.sock");
        assert!(parse_host("tcp://1.2.3.4:2375").is_err());
    }

    /// A daemon on a temp socket that answers each request line with the
    /// next scripted reply, and records the request lines it got.
    fn scripted_daemon(
        replies: Vec<&'static str>,
    ) -> (
        String,
        std::thread::JoinHandle<Vec<String>>,
        tempfile::TempDir,
    ) {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock").to_str().unwrap().to_string();
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut replies = replies.into_iter();
            while let Some(reply) = replies.next() {
                let (s, _) = l.accept().unwrap();
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                let mut reply = Some(reply);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 {
                        break;
                    }
                    seen.push(line.trim_end().to_string());
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let Some(text) = reply.take().or_else(|| replies.next()) else {
                        break;
                    };
                    w.write_all(text.as_bytes()).unwrap();
                }
            }
            seen
        });
        (sock, h, dir)
    }

    #[test]
    fn no_ping_when_the_guess_is_right() {
        let (sock, h, _d) = scripted_daemon(vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]);
        let mut c = Client::connect(sock).unwrap();
        assert_eq!(c.get_json("/info").unwrap(), serde_json::json!({}));
        drop(c);
        assert_eq!(
            h.join().unwrap(),
            vec![format!("GET /v{MAX_API}/info HTTP/1.1")]
        );
    }

    #[test]
    fn an_older_daemon_is_asked_and_the_request_sent_again() {
        let too_new = concat!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 83\r\n\r\n",
            r#"{"message":"client version 1.41 is too new. Maximum supported API version is 1.40"}"#
        );
        let ping = "HTTP/1.1 200 OK\r\nApi-Version: 1.40\r\nContent-Length: 0\r\n\r\n";
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        let (sock, h, _d) = scripted_daemon(vec![too_new, ping, ok]);
        let mut c = Client::connect(sock).unwrap();
        assert_eq!(c.get_json("/info").unwrap(), serde_json::json!({}));
        assert_eq!(c.version, "1.40");
        drop(c);
        assert_eq!(
            h.join().unwrap(),
            vec![
                "GET /v1.41/info HTTP/1.1",
                "HEAD /_ping HTTP/1.1",
                "GET /v1.40/info HTTP/1.1"
            ]
        );
    }

    #[test]
    fn versions() {
        assert!(version_lt("1.24", "1.41"));
        assert!(version_lt("1.9", "1.41"));
        assert!(!version_lt("1.50", "1.41"));
    }

    #[test]
    fn daemon_error_text() {
        let e = error_from(404, br#"{"message":"No such container: x"}"#);
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        let e = error_from(500, b"plain text\n");
        assert_eq!(e.message, "plain text");
    }

    #[test]
    fn json_messages() {
        let input = b"{\"stream\":\"Loaded image: busybox:latest\\n\"}\r\n";
        let mut out = Vec::new();
        assert!(print_json_messages(&input[..], &mut out).unwrap().is_none());
        assert_eq!(out, b"Loaded image: busybox:latest\n");
        let input = b"{\"errorDetail\":{\"code\":3,\"message\":\"boom\"},\"error\":\"boom\"}\r\n";
        let mut out = Vec::new();
        assert_eq!(
            print_json_messages(&input[..], &mut out).unwrap(),
            Some(("boom".into(), 3))
        );
        let input = b"{\"errorDetail\":{\"message\":\"bad tar\"},\"error\":\"bad tar\"}\n";
        assert_eq!(
            print_json_messages(&input[..], &mut Vec::new()).unwrap(),
            Some(("bad tar".into(), 1))
        );
    }
}
