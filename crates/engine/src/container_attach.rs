//! `attach`: join a client's hijacked stream to the shim's attach stream.
//! A client that attaches before `start` is parked and joined when the shim is up, so no output
//! is lost and stdin sent early is delivered.

use crate::container::{ClientIo, PendingAttach, Status};
use crate::{shim_client, Engine, Error, Result};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reserved attach (see `Engine::attach_prepare`).
pub struct AttachTicket {
    pub id: String,
    opts: AttachOptions,
    slot: Option<tokio::sync::oneshot::Sender<Box<dyn ClientIo>>>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Send the container's log so far first (`logs=1`).
    pub logs: bool,
    /// Join the live streams (`stream=1`); without it the stream closes after the log.
    pub stream: bool,
    /// `detachKeys` (parsed); None: docker's default `ctrl-p,ctrl-q`. Only a tty attach
    /// with stdin scans for them, as dockerd does.
    pub detach_keys: Option<Vec<u8>>,
}

impl Engine {
    /// Checks that the container exists (so the API can answer 404 before upgrading).
    /// Resolves the container and, before the API answers 101, reserves the attach: for a
    /// container not yet running the slot is queued now, so a `start` that follows the 101 finds
    /// it. Emits docker's `attach` event (before the `start` event, as docker does).
    pub fn attach_prepare(&self, name_or_id: &str, opts: AttachOptions) -> Result<AttachTicket> {
        let c = self.get_container(name_or_id)?;
        let slot = match c.state().status {
            _ if !opts.stream => None,
            Status::Created | Status::Exited => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                c.pending.lock().expect("pending lock").push(PendingAttach {
                    opts: opts.clone(),
                    io: rx,
                });
                Some(tx)
            }
            Status::Running | Status::Paused | Status::Restarting => None,
            _ => {
                return Err(Error::Conflict(format!(
                    "container {} is being removed",
                    c.id
                )))
            }
        };
        self.emit(&c, "attach", &[]);
        Ok(AttachTicket {
            id: c.id.clone(),
            opts,
            slot,
        })
    }

    /// Runs a prepared attach on the upgraded stream.
    pub async fn attach(
        self: &Arc<Self>,
        ticket: AttachTicket,
        io: Box<dyn ClientIo>,
    ) -> Result<()> {
        let mut io = io;
        if ticket.opts.logs && (ticket.opts.stdout || ticket.opts.stderr) {
            self.attach_logs(&ticket, &mut io).await;
        }
        if !ticket.opts.stream {
            let _ = io.shutdown().await;
            return Ok(());
        }
        if let Some(slot) = ticket.slot {
            // `start` takes it from here; if the container is gone the stream just closes
            let _ = slot.send(io);
            return Ok(());
        }
        let c = self.get_container(&ticket.id)?;
        if c.state().status.is_running() {
            let sock = self.shim_socket(&c.id);
            self.spawn_attach(&sock, ticket.opts, io, c.record().config.tty)
                .await;
        } else {
            let mut io = io;
            let _ = io.shutdown().await;
        }
        Ok(())
    }

    /// `logs=1`: the log so far, framed as `logs` frames it (by the container's tty).
    async fn attach_logs(self: &Arc<Self>, ticket: &AttachTicket, io: &mut Box<dyn ClientIo>) {
        let opts = crate::LogsOptions {
            stdout: ticket.opts.stdout,
            stderr: ticket.opts.stderr,
            ..Default::default()
        };
        let Ok(mut rx) = self.logs(&ticket.id, opts) else {
            return;
        };
        while let Some(chunk) = rx.recv().await {
            if io.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = io.flush().await;
    }

    /// Connects to the shim and copies both ways in a task of its own.
    pub(crate) async fn spawn_attach(
        self: &Arc<Self>,
        sock: &Path,
        opts: AttachOptions,
        mut io: Box<dyn ClientIo>,
        tty: bool,
    ) {
        let line = format!(
            "ATTACH {} {} {}",
            opts.stdin as u8, opts.stdout as u8, opts.stderr as u8
        );
        let shim = match shim_client::connect(sock, &line).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("attach: cannot reach shim: {e}");
                let _ = io.shutdown().await;
                return;
            }
        };
        // The shim acknowledges nothing; a STATE round trip makes sure it has read our
        // ATTACH line before anything else (START) reaches it.
        let _ = shim_client::request(sock, "STATE").await;
        let wiring = Splice {
            stdin: opts.stdin,
            close_stdin: !tty,
            detach_keys: escape_keys(tty && opts.stdin, opts.detach_keys),
            out: Reframe::Same,
        };
        let engine = self.clone();
        let id = sock
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        tokio::spawn(async move {
            let (mut cli_w, detached) = splice_open(shim, io, wiring).await;
            let _ = cli_w.shutdown().await;
            if detached {
                if let Some(c) = id.and_then(|id| engine.get_container(&id).ok()) {
                    engine.emit(&c, "detach", &[]);
                }
            }
        });
    }
}

/// The keys a stream scans for: only a tty stream with stdin does (docker's rule), with
/// docker's default sequence when the client gave none.
pub(crate) fn escape_keys(scan: bool, keys: Option<Vec<u8>>) -> Option<Vec<u8>> {
    scan.then(|| keys.unwrap_or_else(|| berth_types::detach::DEFAULT_DETACH_KEYS.to_vec()))
        .filter(|k| !k.is_empty())
}

/// How the shim's output reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reframe {
    /// as the shim sends it
    Same,
    /// raw (tty) output put in stdout frames
    Frame,
    /// framed output sent raw: the stdout frames' payloads in order (dockerd drops stderr
    /// when a non-tty exec is started with `Tty: true`)
    Deframe,
}

/// How a client stream is joined to a shim stream.
pub(crate) struct Splice {
    /// copy the client's input to the shim
    pub stdin: bool,
    /// close the shim's stdin when the client half-closes (not for a tty: docker's rule)
    pub close_stdin: bool,
    /// detach (end both directions, the process keeps running) when the client types these
    pub detach_keys: Option<Vec<u8>>,
    pub out: Reframe,
}

/// Joins the client to the shim until the shim's output ends or the client types the detach
/// keys; leaves the client's write side open for the caller to finish (exec records its exit
/// code before the client sees the end of the stream). Also says whether the client detached.
pub(crate) async fn splice_open(
    shim: tokio::net::UnixStream,
    io: Box<dyn ClientIo>,
    how: Splice,
) -> (tokio::io::WriteHalf<Box<dyn ClientIo>>, bool) {
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut cli_r, mut cli_w) = tokio::io::split(io);
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let Splice {
        stdin,
        close_stdin,
        detach_keys,
        out,
    } = how;
    let to_shim = tokio::spawn(async move {
        // held (never dropped) until the task is aborted: only a real detach fires it
        let mut detach_tx = Some(detach_tx);
        if stdin {
            let mut scan = detach_keys.map(berth_types::detach::EscapeScanner::new);
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match cli_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (data, detach) = match scan.as_mut() {
                    Some(s) => s.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !data.is_empty() && shim_w.write_all(&data).await.is_err() {
                    break;
                }
                if detach {
                    if let Some(tx) = detach_tx.take() {
                        let _ = tx.send(());
                    }
                    // the process keeps its stdin open: the client only leaves
                    std::future::pending::<()>().await;
                }
            }
            if !close_stdin {
                // a tty's stdin is not closed when the client goes (docker's rule); keep the
                // write side open until the output ends
                std::future::pending::<()>().await;
            }
        } else {
            // Drain and ignore whatever the client sends.
            let mut buf = [0u8; 4096];
            while matches!(cli_r.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        let _ = shim_w.shutdown().await;
        std::future::pending::<()>().await;
        drop(detach_tx);
    });
    let detached = tokio::select! {
        _ = copy_out(&mut shim_r, &mut cli_w, out) => false,
        Ok(()) = detach_rx => true,
    };
    to_shim.abort();
    (cli_w, detached)
}

/// Copies the shim's output to the client, reframed as `how` says.
async fn copy_out<R, W>(r: &mut R, w: &mut W, how: Reframe) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    if how == Reframe::Same {
        tokio::io::copy(r, w).await?;
        return Ok(());
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut deframe = Deframer::default();
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let out = match how {
            Reframe::Frame => crate::container_logs::frame(1, &buf[..n]),
            _ => deframe.feed(&buf[..n]),
        };
        if !out.is_empty() {
            w.write_all(&out).await?;
            w.flush().await?;
        }
    }
}

/// Takes docker's stream frames (8-byte header: stream, 0, 0, 0, big-endian length) in any
/// chunking and gives back the payloads of the stdout ones.
#[derive(Default)]
pub(crate) struct Deframer {
    header: Vec<u8>,
    left: usize,
    keep: bool,
}

impl Deframer {
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        while !chunk.is_empty() {
            if self.left > 0 {
                let n = self.left.min(chunk.len());
                if self.keep {
                    out.extend_from_slice(&chunk[..n]);
                }
                self.left -= n;
                chunk = &chunk[n..];
                continue;
            }
            let n = (8 - self.header.len()).min(chunk.len());
            self.header.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.header.len() == 8 {
                let h = &self.header;
                self.left = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                self.keep = h[0] == 1;
                self.header.clear();
            }
        }
        out
    }
}

impl Engine {
    /// Resizes the container's tty (ignored without one).
    pub async fn resize(self: &Arc<Self>, name_or_id: &str, h: u32, w: u32) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        if !c.state().status.is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if !c.record().config.tty || h == 0 || w == 0 {
            return Ok(());
        }
        shim_client::request(&self.shim_socket(&c.id), &format!("RESIZE {h} {w}"))
            .await
            .map(|_| ())
            .map_err(|e| Error::Internal(format!("cannot resize: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframer_takes_frames_in_any_chunking() {
        let mut framed = crate::container_logs::frame(1, b"hello ");
        framed.extend(crate::container_logs::frame(2, b"world"));
        framed.extend(crate::container_logs::frame(1, b""));
        framed.extend(crate::container_logs::frame(1, b"!\n"));
        for step in 1..framed.len() {
            let mut d = Deframer::default();
            let out: Vec<u8> = framed.chunks(step).flat_map(|c| d.feed(c)).collect();
            assert_eq!(out, b"hello !\n", "chunks of {step}");
        }
    }

    #[test]
    fn only_a_tty_with_stdin_scans_and_the_default_is_ctrl_p_ctrl_q() {
        assert_eq!(escape_keys(false, Some(vec![1])), None);
        assert_eq!(escape_keys(true, None), Some(vec![16, 17]));
        assert_eq!(escape_keys(true, Some(vec![b'x'])), Some(vec![b'x']));
    }
}
