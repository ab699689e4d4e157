//! `start`: mount the rootfs, write the bundle, spawn the shim, connect waiting attaches, go.

use crate::container::{now_nanos, Container, Status};
use crate::shim_client;
use crate::{spec, Engine, Error, Result};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};

impl Engine {
    pub(crate) fn shim_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("shim.sock")
    }
    pub(crate) fn exit_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("exit")
    }
    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    pub async fn start(self: &Arc<Self>, name_or_id: &str) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        let _op = c.op.lock().await;
        match c.state().status {
            Status::Running | Status::Paused | Status::Restarting => {
                return Err(Error::NotModified)
            }
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            _ => {}
        }
        match self.start_locked(&c).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.snaps.unmount_rw(&c.id);
                let msg = e.to_string();
                let code = if msg.contains("executable file not found")
                    || msg.contains("no such file or directory")
                {
                    127
                } else if msg.contains("permission denied") {
                    126
                } else {
                    128
                };
                c.update(|r| {
                    r.state.error = msg.clone();
                    r.state.exit_code = code;
                });
                let _ = c.save(&self.container_dir(&c.id));
                // Attached clients waiting for this start get nothing more.
                c.pending.lock().expect("pending lock").clear();
                if c.record().host_config.auto_remove {
                    drop(_op);
                    let _ = self.remove(&c.id, true).await;
                }
                Err(e)
            }
        }
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let id = c.id.clone();
        let rec = c.record();
        let rootfs = self.snaps.mount_rw(&id)?;
        let run_dir = self.run_dir(&id);
        std::fs::create_dir_all(&run_dir)?;
        let _ = std::fs::remove_file(self.exit_file(&id));
        let spec = spec::build(&rec, &rootfs, &self.container_dir(&id))?;
        std::fs::write(run_dir.join("config.json"), serde_json::to_vec(&spec)?)?;

        let log = if rec.host_config.log_config.kind == "none" {
            String::new()
        } else {
            self.log_path(&id).to_string_lossy().into_owned()
        };
        let mut cmd = tokio::process::Command::new(&self.cfg.shim_path);
        cmd.arg("--id")
            .arg(&id)
            .arg("--bundle")
            .arg(&run_dir)
            .arg("--socket")
            .arg(self.shim_socket(&id))
            .arg("--exit-file")
            .arg(self.exit_file(&id))
            .arg("--log")
            .arg(&log);
        if rec.config.tty {
            cmd.arg("--tty");
            if let Some([h, w]) = rec.host_config.console_size {
                if h > 0 && w > 0 {
                    cmd.arg("--rows")
                        .arg(h.to_string())
                        .arg("--cols")
                        .arg(w.to_string());
                }
            }
        }
        if rec.config.open_stdin {
            cmd.arg("--stdin");
        }
        if rec.config.stdin_once {
            cmd.arg("--stdin-once");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| {
            Error::Internal(format!("cannot run {}: {e}", self.cfg.shim_path.display()))
        })?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line).await?;
        }
        let _ = child.wait().await;
        let line = line.trim_end();
        if let Some(msg) = line.strip_prefix("ERROR ") {
            return Err(Error::InvalidParameter(format!(
                "failed to create task for container: OCI runtime create failed: {msg}: unknown"
            )));
        }
        if !line.starts_with("READY") {
            return Err(Error::Internal(format!(
                "berth-shim failed to start the container (said {line:?})"
            )));
        }

        let sock = self.shim_socket(&id);
        let pending: Vec<_> = std::mem::take(&mut *c.pending.lock().expect("pending lock"));
        for p in pending {
            self.spawn_attach(&sock, p.opts, p.io).await;
        }
        let answer = shim_client::request(&sock, "START").await?;
        let pid: i32 = match answer.strip_prefix("OK ") {
            Some(p) => p.trim().parse().unwrap_or(0),
            None => {
                let msg = answer.strip_prefix("ERROR ").unwrap_or(&answer);
                return Err(Error::InvalidParameter(format!(
                    "failed to create task for container: OCI runtime start failed: {msg}: unknown"
                )));
            }
        };
        c.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.started_at = Some(now_nanos());
            r.state.finished_at = None;
            r.state.has_started = true;
        });
        c.save(&self.container_dir(&id))?;
        self.spawn_monitor(c.clone());
        Ok(())
    }

    /// Waits for the shim to report the exit, then records it and cleans up.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let sock = engine.shim_socket(&c.id);
            let exit = match shim_client::wait_exit(&sock).await {
                Some(e) => Some(e),
                None => shim_client::read_exit_file(&engine.exit_file(&c.id)),
            };
            engine.handle_exit(&c, exit).await;
        });
    }

    /// Records an exit (or a lost shim: exit code 255), unmounts, and applies `--rm`.
    pub(crate) async fn handle_exit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit: Option<(i32, u128)>,
    ) {
        let (code, nanos) = exit.unwrap_or((255, now_nanos()));
        let _ = self.snaps.unmount_rw(&c.id);
        let _ = std::fs::remove_dir_all(self.run_dir(&c.id));
        c.update(|r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = Some(if nanos == 0 { now_nanos() } else { nanos });
            if exit.is_none() {
                r.state.error = "container's shim exited without recording an exit".into();
            }
        });
        if let Err(e) = c.save(&self.container_dir(&c.id)) {
            tracing::warn!(id = %c.id, "cannot save state: {e}");
        }
        c.notify_exit(code);
        if c.record().host_config.auto_remove {
            if let Err(e) = self.remove(&c.id, true).await {
                tracing::warn!(id = %c.id, "auto-remove failed: {e}");
            }
        }
    }
}
