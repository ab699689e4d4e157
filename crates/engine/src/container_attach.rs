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

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Send the container's log so far first (`logs=1`).
    pub logs: bool,
    /// Join the live streams (`stream=1`); without it the stream closes after the log.
    pub stream: bool,
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
                c.pending
                    .lock()
                    .expect("pending lock")
                    .push(PendingAttach { opts, io: rx });
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
        &self,
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
        tokio::spawn(splice(shim, io, opts.stdin, !tty));
    }
}

/// Copies the client's stdin to the shim (only if `stdin`) and the shim's output to the
/// client until the shim closes; a client half-close does not end the output.
pub(crate) async fn splice(
    shim: tokio::net::UnixStream,
    io: Box<dyn ClientIo>,
    stdin: bool,
    close_stdin: bool,
) {
    let mut cli_w = splice_open(shim, io, stdin, close_stdin).await;
    let _ = cli_w.shutdown().await;
}

/// Like `splice`, but leaves the client's write side open for the caller to finish (exec
/// records its exit code before the client sees the end of the stream).
pub(crate) async fn splice_open(
    shim: tokio::net::UnixStream,
    io: Box<dyn ClientIo>,
    stdin: bool,
    close_stdin: bool,
) -> tokio::io::WriteHalf<Box<dyn ClientIo>> {
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut cli_r, mut cli_w) = tokio::io::split(io);
    let to_shim = tokio::spawn(async move {
        if stdin {
            let _ = tokio::io::copy(&mut cli_r, &mut shim_w).await;
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
    });
    let _ = tokio::io::copy(&mut shim_r, &mut cli_w).await;
    to_shim.abort();
    cli_w
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
