//! The CRI streaming server: `Exec`, `Attach` and `PortForward` answer with a URL on this
//! server (`http://127.0.0.1:<port>/exec/<token>`, a token good for one use within a
//! minute), and the client — kubelet, or `crictl` directly — upgrades a POST to that URL to
//! SPDY/3.1 (`spdy.rs`), choosing a protocol by `X-Stream-Protocol-Version`:
//! `v4`…`v1.channel.k8s.io` (remotecommand: `stream_exec.rs`, `stream_attach.rs`) or
//! `portforward.k8s.io` (`stream_portforward.rs`). The HTTP request is read by hand: it is one
//! head, answered with 101 or an error, and the connection is SPDY from then on.

use crate::spdy::{self, Incoming};
use crate::stream_wire::{Outgoing, Wire};
use crate::{pb, Cri, Error, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long a URL stays good (kubelet's default).
const TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long the client has to open the streams it asked for (kubelet's default).
pub(crate) const STREAM_CREATION: Duration = Duration::from_secs(30);
const MAX_HEAD: usize = 16 * 1024;

/// remotecommand versions, the newest first.
const REMOTECOMMAND: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
const PORTFORWARD: &[&str] = &["portforward.k8s.io"];

#[derive(Debug, Clone)]
pub(crate) enum Request {
    Exec(pb::ExecRequest),
    Attach(pb::AttachRequest),
    PortForward(pb::PortForwardRequest),
}

impl Request {
    fn path(&self) -> &'static str {
        match self {
            Request::Exec(_) => "exec",
            Request::Attach(_) => "attach",
            Request::PortForward(_) => "portforward",
        }
    }
}

/// The server's address once it listens, and the requests waiting for their connection.
#[derive(Default)]
pub(crate) struct Tokens {
    addr: OnceLock<SocketAddr>,
    pending: Mutex<HashMap<String, (Instant, Request)>>,
}

impl Tokens {
    fn take(&self, token: &str) -> Option<Request> {
        let mut p = self.pending.lock().expect("tokens lock");
        p.retain(|_, (t, _)| t.elapsed() < TOKEN_TTL);
        p.remove(token).map(|(_, r)| r)
    }
}

/// The channel streams a remotecommand client opened (v2+: one per kind).
pub(crate) struct Streams {
    pub error: Outgoing,
    pub stdin: Option<Incoming>,
    pub stdout: Option<Outgoing>,
    pub stderr: Option<Outgoing>,
    /// streams still to come (the resize stream is opened last)
    pub rest: mpsc::Receiver<Incoming>,
    /// the protocol agreed on
    pub protocol: &'static str,
}

impl Streams {
    /// The exit status on the error stream, as kubelet writes it: v4 a `metav1.Status`
    /// (`Success`, or `Failure` with reason `NonZeroExitCode` and the code as a cause), older
    /// versions only a message, only on failure. Then every stream is half-closed.
    pub async fn finish(&mut self, outcome: std::result::Result<i32, String>) {
        let v4 = self.protocol.starts_with("v4.");
        let body = match (&outcome, v4) {
            (Ok(0), true) => Some(r#"{"metadata":{},"status":"Success"}"#.to_string()),
            (Ok(0), false) => None,
            (Ok(code), true) => Some(
                serde_json::json!({
                    "metadata": {},
                    "status": "Failure",
                    "message": format!("command terminated with non-zero exit code: exit status {code}"),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
                })
                .to_string(),
            ),
            (Ok(code), false) => Some(format!(
                "command terminated with non-zero exit code: exit status {code}"
            )),
            (Err(m), true) => Some(
                serde_json::json!({"metadata": {}, "status": "Failure", "message": m}).to_string(),
            ),
            (Err(m), false) => Some(m.clone()),
        };
        if let Some(b) = body {
            let _ = self.error.write(b.as_bytes()).await;
        }
        for o in [self.stdout.as_mut(), self.stderr.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = o.close().await;
        }
        let _ = self.error.close().await;
    }
}

/// Which streams a remotecommand request asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Cri {
    /// What `Exec` and `Attach` check before handing out a URL: the container is a CRI
    /// container and running, and the streams asked for make sense.
    pub(crate) fn check_streamable(&self, container_id: &str, want: Want) -> Result<()> {
        let (c, _) = self.cri_container(container_id)?;
        check_want(want)?;
        if !c.state().status.is_running() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        Ok(())
    }

    /// A remotecommand session (exec or attach) on a connection: waits for the client's
    /// streams, runs `body` (which starts the engine's side and joins it with [`join`]),
    /// writes the outcome on the error stream and closes.
    pub(crate) async fn remotecommand_session(
        &self,
        mut conn: Conn,
        want: Want,
        body: impl AsyncFnOnce(&mut Conn, &mut Streams) -> std::result::Result<i32, String>,
    ) {
        let mut st = match conn.remotecommand(want).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("stream: {e}");
                conn.close().await;
                return;
            }
        };
        let outcome = body(&mut conn, &mut st).await;
        st.finish(outcome).await;
        conn.close().await;
    }
}

/// Joins the engine stream `io` to the client's streams (see [`pump`]) while the resize
/// stream's sizes go to `resize`. Err when the client went away first.
pub(crate) async fn join<F, Fut>(
    conn: &mut Conn,
    st: &mut Streams,
    io: tokio::io::DuplexStream,
    tty: bool,
    resize: F,
) -> std::result::Result<(), String>
where
    F: FnMut(u32, u32) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rest = std::mem::replace(&mut st.rest, mpsc::channel(1).1);
    let resizer = tokio::spawn(resizes(rest, resize));
    let gone = pump(conn, st, io, tty).await;
    resizer.abort();
    if gone {
        return Err("the client went away".to_string());
    }
    Ok(())
}

/// Checks what `Exec` and `Attach` share: at least one stream, not both tty and stderr.
pub(crate) fn check_want(w: Want) -> Result<()> {
    if !(w.stdin || w.stdout || w.stderr) {
        return Err(Error::InvalidArgument(
            "one of stdin, stdout, or stderr must be set".into(),
        ));
    }
    if w.tty && w.stderr {
        return Err(Error::InvalidArgument(
            "tty and stderr cannot both be true".into(),
        ));
    }
    Ok(())
}

/// One upgraded connection: its writer, the streams the client opens, and the task reading
/// its frames (ended when the client goes).
pub(crate) struct Conn {
    pub w: Wire,
    pub streams: mpsc::Receiver<Incoming>,
    /// None once it ended
    pub(crate) reader: Option<tokio::task::JoinHandle<()>>,
    pub protocol: &'static str,
}

impl Conn {
    /// Waits for the streams `want` needs (the error stream always); others the client opens
    /// meanwhile are kept as outgoing if they are output streams.
    pub async fn remotecommand(&mut self, want: Want) -> std::result::Result<Streams, String> {
        let mut incoming = std::mem::replace(&mut self.streams, mpsc::channel(1).1);
        let mut error = None;
        let (mut stdin, mut stdout, mut stderr) = (None, None, None);
        // a resize stream that comes before the others is read with the ones still to come
        let mut early = Vec::new();
        let deadline = tokio::time::Instant::now() + STREAM_CREATION;
        let done = |e: &Option<_>, i: &Option<_>, o: &Option<_>, r: &Option<_>| {
            e.is_some()
                && (!want.stdin || i.is_some())
                && (!want.stdout || o.is_some())
                && (!want.stderr || want.tty || r.is_some())
        };
        while !done(&error, &stdin, &stdout, &stderr) {
            let s = match tokio::time::timeout_at(deadline, incoming.recv()).await {
                Ok(Some(s)) => s,
                Ok(None) => return Err("the client closed the connection".into()),
                Err(_) => return Err("timed out waiting for the client to create streams".into()),
            };
            let out = Outgoing::new(s.id, self.w.clone());
            match s.kind() {
                "error" => error = Some(out),
                "stdout" => stdout = Some(out),
                "stderr" => stderr = Some(out),
                "stdin" => stdin = Some(s),
                "resize" => early.push(s),
                other => tracing::debug!(kind = other, "cri stream: unknown stream type"),
            }
        }
        let rest = if early.is_empty() {
            incoming
        } else {
            let (tx, rx) = mpsc::channel(4);
            let from = incoming;
            tokio::spawn(async move {
                for s in early {
                    if tx.send(s).await.is_err() {
                        return;
                    }
                }
                forward(from, tx).await
            });
            rx
        };
        // WebSocket: an empty message on the lowest channel we write, as kubelet sends, says
        // the streams are up
        let first = stdout
            .as_ref()
            .or(stderr.as_ref())
            .or(error.as_ref())
            .map(|o: &Outgoing| o.id);
        if let Some(id) = first {
            let _ = self.w.announce(id).await;
        }
        Ok(Streams {
            error: error.expect("checked"),
            stdin,
            stdout,
            stderr,
            rest,
            protocol: self.protocol,
        })
    }

    /// Lets the client read what was written, then closes: waits (a while) for the client to
    /// close its side first, as it does once it has every stream's end.
    pub async fn close(mut self) {
        // a WebSocket client waits for our close; a SPDY client closes first once it has
        // every stream's end
        let ws = matches!(self.w, Wire::Ws(..));
        if ws {
            self.w.finish().await;
        }
        if let Some(r) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        if !ws {
            self.w.finish().await;
        }
    }
}

impl Conn {
    /// Resolves when the client has gone (its connection ended); never again after that.
    pub async fn client_gone(&mut self) {
        match self.reader.as_mut() {
            Some(r) => {
                let _ = r.await;
                self.reader = None;
            }
            None => std::future::pending().await,
        }
    }
}

/// Joins an engine stream (an exec's or an attach's) to the client's streams: the client's
/// stdin in (its end half-closes the engine stream), the output out — as it is with a tty,
/// else split from docker's frames into stdout and stderr. Returns when the output ends
/// (false) or the client goes (true).
pub(crate) async fn pump(
    conn: &mut Conn,
    st: &mut Streams,
    io: tokio::io::DuplexStream,
    tty: bool,
) -> bool {
    let (mut rd, mut wr) = tokio::io::split(io);
    let stdin = st.stdin.take();
    let feeder = tokio::spawn(async move {
        if let Some(mut s) = stdin {
            while let Some(d) = s.data.recv().await {
                if wr.write_all(&d).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        }
        // without stdin the engine stream stays open for writing until the end
        std::future::pending::<()>().await;
        drop(wr);
    });
    let mut demux = berth_types::stdcopy::Demux::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut gone = false;
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if tty {
                    if let Some(o) = st.stdout.as_mut() {
                        let _ = o.write(&buf[..n]).await;
                    }
                    continue;
                }
                let mut frames = Vec::new();
                demux.feed(&buf[..n], &mut |k, p| frames.push((k, p.to_vec())));
                for (k, p) in frames {
                    let o = if k == 2 { st.stderr.as_mut() } else { st.stdout.as_mut() };
                    if let Some(o) = o {
                        let _ = o.write(&p).await;
                    }
                }
            }
            _ = conn.client_gone() => {
                gone = true;
                break;
            }
        }
    }
    feeder.abort();
    gone
}

async fn forward(mut from: mpsc::Receiver<Incoming>, to: mpsc::Sender<Incoming>) {
    while let Some(s) = from.recv().await {
        if to.send(s).await.is_err() {
            return;
        }
    }
}

/// Reads `{"Width":W,"Height":H}` objects from a resize stream and applies each.
pub(crate) async fn resizes<F, Fut>(mut rest: mpsc::Receiver<Incoming>, mut apply: F)
where
    F: FnMut(u32, u32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    while let Some(mut s) = rest.recv().await {
        if s.kind() != "resize" {
            continue;
        }
        let mut buf = Vec::new();
        while let Some(d) = s.data.recv().await {
            buf.extend_from_slice(&d);
            let mut it =
                serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
            let mut used = 0;
            while let Some(Ok(v)) = it.next() {
                used = it.byte_offset();
                let w = v["Width"].as_u64().unwrap_or(0) as u32;
                let h = v["Height"].as_u64().unwrap_or(0) as u32;
                if w > 0 && h > 0 {
                    apply(h, w).await;
                }
            }
            buf.drain(..used);
        }
    }
}

impl Cri {
    /// Registers a request and gives the URL the client is to use.
    pub(crate) fn stream_url(&self, req: Request) -> Result<String> {
        let addr = self
            .streaming
            .addr
            .get()
            .ok_or_else(|| Error::Internal("the streaming server is not running".into()))?;
        let token = hex::encode(rand::random::<[u8; 16]>());
        let path = req.path();
        self.streaming
            .pending
            .lock()
            .expect("tokens lock")
            .insert(token.clone(), (Instant::now(), req));
        Ok(format!("http://{addr}/{path}/{token}"))
    }

    /// Binds the streaming server's socket (an error here fails the CRI's start).
    pub(crate) async fn bind_streams(&self) -> Result<tokio::net::TcpListener> {
        let l = tokio::net::TcpListener::bind(self.cfg.stream_addr)
            .await
            .map_err(|e| {
                Error::Internal(format!(
                    "CRI streaming server on {}: {e}",
                    self.cfg.stream_addr
                ))
            })?;
        let addr = l.local_addr()?;
        let _ = self.streaming.addr.set(addr);
        tracing::info!("CRI streaming server listening on {addr}");
        Ok(l)
    }

    /// Serves the streaming server until the task is dropped.
    pub(crate) async fn serve_streams(self: Arc<Self>, l: tokio::net::TcpListener) {
        loop {
            let (s, _) = match l.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("CRI streaming server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            let cri = self.clone();
            tokio::spawn(async move {
                if let Err(e) = cri.stream_conn(s).await {
                    tracing::debug!("CRI streaming connection: {e}");
                }
            });
        }
    }

    async fn stream_conn(self: Arc<Self>, mut s: TcpStream) -> std::io::Result<()> {
        let (head, rest) = match read_head(&mut s).await? {
            Some(x) => x,
            None => return Ok(()),
        };
        let h = match parse_head(&head) {
            Some(h) => h,
            None => return reply(&mut s, 400, "malformed request").await,
        };
        let token = h.path.rsplit('/').next().unwrap_or("");
        let req = match self.streaming.take(token) {
            Some(r) if h.path == format!("/{}/{token}", r.path()) => r,
            _ => return reply(&mut s, 404, "not found").await,
        };
        if h.method != "POST" && h.method != "GET" {
            return reply(&mut s, 405, "method not allowed").await;
        }
        if h.upgrade.eq_ignore_ascii_case("websocket") {
            return self.stream_ws(req, s, h.ws_key, h.ws_protocols, rest).await;
        }
        if !h.upgrade.eq_ignore_ascii_case("SPDY/3.1") {
            return reply(
                &mut s,
                400,
                "unable to upgrade: this server speaks SPDY/3.1 and WebSocket",
            )
            .await;
        }
        let ours = match req {
            Request::PortForward(_) => PORTFORWARD,
            _ => REMOTECOMMAND,
        };
        let Some(protocol) = h
            .protocols
            .iter()
            .find_map(|p| ours.iter().find(|o| **o == p.as_str()).copied())
        else {
            let msg = format!(
                "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports {:?}",
                h.protocols, ours
            );
            return reply(&mut s, 403, &msg).await;
        };
        s.write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
        let (r, w) = s.into_split();
        let w = Arc::new(tokio::sync::Mutex::new(spdy::Writer::new(w)));
        let (tx, rx) = mpsc::channel(16);
        let reader = tokio::spawn(spdy::serve_frames(
            std::io::Cursor::new(rest).chain(r),
            w.clone(),
            tx,
        ));
        let conn = Conn {
            w: Wire::Spdy(w),
            streams: rx,
            reader: Some(reader),
            protocol,
        };
        self.run_stream(req, conn).await;
        Ok(())
    }

    pub(crate) async fn run_stream(self: Arc<Self>, req: Request, conn: Conn) {
        match req {
            Request::Exec(r) => self.stream_exec(r, conn).await,
            Request::Attach(r) => self.stream_attach(r, conn).await,
            Request::PortForward(r) => self.stream_port_forward(r, conn).await,
        }
    }
}

/// The request head and whatever followed it in the same reads; None if the client left.
async fn read_head<R: AsyncRead + Unpin>(s: &mut R) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct Head {
    method: String,
    /// without the query
    path: String,
    upgrade: String,
    /// every `X-Stream-Protocol-Version` value, in the client's order
    protocols: Vec<String>,
    ws_key: String,
    /// every `Sec-WebSocket-Protocol` value, in the client's order
    ws_protocols: Vec<String>,
}

fn parse_head(b: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(b).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?;
    if !first.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut h = Head {
        method,
        path,
        ..Default::default()
    };
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':')?;
        let v = v.trim();
        if k.eq_ignore_ascii_case("upgrade") {
            h.upgrade = v.to_string();
        } else if k.eq_ignore_ascii_case("x-stream-protocol-version") {
            h.protocols.extend(list(v));
        } else if k.eq_ignore_ascii_case("sec-websocket-key") {
            h.ws_key = v.to_string();
        } else if k.eq_ignore_ascii_case("sec-websocket-protocol") {
            h.ws_protocols.extend(list(v));
        }
    }
    Some(h)
}

/// A header's comma-separated values.
fn list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

pub(crate) async fn reply(s: &mut TcpStream, code: u16, msg: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        501 => "Not Implemented",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let body = format!("{msg}\n");
    s.write_all(
        format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    s.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_with_every_protocol_in_order() {
        let h = parse_head(
            b"POST /exec/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nx-stream-protocol-version: v3.channel.k8s.io, channel.k8s.io\r\n\r\n",
        )
        .expect("head");
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/exec/abc");
        assert_eq!(h.upgrade, "SPDY/3.1");
        assert_eq!(
            h.protocols,
            ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]
        );
        assert!(parse_head(b"garbage\r\n\r\n").is_none());
        let w = parse_head(b"GET /attach/t HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io, base64.channel.k8s.io\r\n\r\n").expect("head");
        assert_eq!(
            (w.upgrade.as_str(), w.ws_key.as_str()),
            ("websocket", "k==")
        );
        assert_eq!(
            w.ws_protocols,
            ["v4.channel.k8s.io", "base64.channel.k8s.io"]
        );
        assert!(parse_head(b"GET / SPDY\r\n\r\n").is_none());
    }

    #[test]
    fn streams_asked_for_are_checked() {
        let w = |stdin, stdout, stderr, tty| Want {
            stdin,
            stdout,
            stderr,
            tty,
        };
        assert!(check_want(w(false, false, false, false)).is_err());
        assert!(check_want(w(false, true, true, true)).is_err());
        assert!(check_want(w(true, true, false, true)).is_ok());
    }

    #[tokio::test]
    async fn tokens_are_single_use() {
        let t = Tokens::default();
        t.pending.lock().unwrap().insert(
            "a".into(),
            (
                Instant::now(),
                Request::PortForward(pb::PortForwardRequest::default()),
            ),
        );
        assert!(t.take("a").is_some());
        assert!(t.take("a").is_none());
    }
}
