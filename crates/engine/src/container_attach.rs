//! `attach`: join a client's hijacked stream to the shim's attach stream.
//! A client that attaches before `start` is parked and joined when the shim is up, so no output
//! is lost and stdin sent early is delivered.

use crate::container::{ClientIo, PendingAttach, Status};
use crate::{shim_client, Engine, Error, Result};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Engine {
    /// Checks that the container exists (so the API can answer 404 before upgrading).
    /// Emits docker's `attach` event here, before the API answers 101, so it comes before
    /// the `start` that follows.
    pub fn attach_check(&self, name_or_id: &str) -> Result<String> {
        let c = self.get_container(name_or_id)?;
        self.emit(&c, "attach", &[]);
        Ok(c.id.clone())
    }

    /// Runs the attach on an upgraded stream until the container's output ends.
    pub async fn attach(
        self: &Arc<Self>,
        id: &str,
        opts: AttachOptions,
        io: Box<dyn ClientIo>,
    ) -> Result<()> {
        let c = self.get_container(id)?;
        let _op = c.op.lock().await;
        match c.state().status {
            Status::Running | Status::Paused => {
                let sock = self.shim_socket(&c.id);
                self.spawn_attach(&sock, opts, io).await;
                Ok(())
            }
            Status::Created | Status::Exited => {
                c.pending
                    .lock()
                    .expect("pending lock")
                    .push(PendingAttach { opts, io });
                Ok(())
            }
            _ => Err(Error::Conflict(format!(
                "container {} is being removed",
                c.id
            ))),
        }
    }

    /// Connects to the shim and copies both ways in a task of its own.
    pub(crate) async fn spawn_attach(
        &self,
        sock: &Path,
        opts: AttachOptions,
        mut io: Box<dyn ClientIo>,
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
        tokio::spawn(splice(shim, io, opts.stdin));
    }
}

/// Copies the client's stdin to the shim (only if `stdin`) and the shim's output to the
/// client until the shim closes; a client half-close does not end the output.
pub(crate) async fn splice(shim: tokio::net::UnixStream, io: Box<dyn ClientIo>, stdin: bool) {
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut cli_r, mut cli_w) = tokio::io::split(io);
    let to_shim = tokio::spawn(async move {
        if stdin {
            let _ = tokio::io::copy(&mut cli_r, &mut shim_w).await;
        } else {
            // Drain and ignore whatever the client sends.
            let mut buf = [0u8; 4096];
            while matches!(cli_r.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        let _ = shim_w.shutdown().await;
    });
    let _ = tokio::io::copy(&mut shim_r, &mut cli_w).await;
    let _ = cli_w.shutdown().await;
    to_shim.abort();
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
