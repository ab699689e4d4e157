//! `start`: mount the rootfs, write the bundle, spawn the shim, connect waiting attaches, go.

use crate::container::{now_nanos, Container, Status};
use crate::shim_client::{self, Exit};
use crate::{spec, Engine, Error, Result};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// docker's size units for log options: `10m`, `512k`, `1g`, plain bytes (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n > 0.0).then_some((n * mult as f64) as u64)
}

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
                self.net_release(&c, false);
                let _ = self.snaps.unmount_rw(&c.id);
                crate::container_ipc::release(&self.run_dir(&c.id));
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

    pub(crate) async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let id = c.id.clone();
        // the shim moves the container into its cgroups in a few ms: the kernel's wait
        // before that move starts now (berth_runtime::prime_cgroup_move)
        berth_runtime::prime_cgroup_move();
        let rec = c.record();
        let rootfs = self.snaps.mount_rw(&id)?;
        self.copy_up_volumes(c, &rootfs)?;
        let pid_mode = rec.host_config.extra.get("PidMode");
        let pid_ns = match rec.pod.as_ref().and_then(|p| p.pid.clone()) {
            // a CRI pod that shares one PID namespace (its pause process is PID 1)
            Some(path) => crate::container_pid::PidNs::Join(path),
            None => self.pid_namespace(pid_mode.and_then(|m| m.as_str()).unwrap_or(""))?,
        };
        self.overlay_allocate(c).await?;
        let net = self.net_prepare(c)?;
        // net_prepare may take names from the container whose network this one joins
        let rec = c.record();
        let run_dir = self.run_dir(&id);
        std::fs::create_dir_all(&run_dir)?;
        let _ = std::fs::remove_file(self.exit_file(&id));
        let ipc = self.ipc_prepare(&rec, &run_dir)?;
        let user = spec::resolve_user_blocking(
            rootfs.clone(),
            rec.config.user.clone(),
            spec::group_add(&rec.host_config),
        )
        .await?;
        let mut spec = spec::build(&rec, &rootfs, &net, &user)?;
        crate::container_pid::apply(&mut spec, &pid_ns);
        crate::container_ipc::apply(&mut spec, &ipc);
        if let Some(ids) = self.userns_of(&rec.host_config) {
            crate::userns::apply(&mut spec, ids);
            crate::userns::own_container_files(&net.files, ids);
        }
        std::fs::write(run_dir.join("config.json"), serde_json::to_vec(&spec)?)?;

        let cri_log = rec.pod.as_ref().and_then(|p| p.log.clone());
        let log = if let Some(p) = &cri_log {
            p.to_string_lossy().into_owned()
        } else if rec.host_config.log_config.kind == "none" || rec.pod.is_some() {
            String::new()
        } else {
            self.log_path(&id).to_string_lossy().into_owned()
        };
        let mut cmd = tokio::process::Command::new(&self.cfg.shim_path);
        // SAFETY: the hook only calls setrlimit (async-signal-safe) in the forked child.
        unsafe {
            cmd.pre_exec(|| {
                berth_util::limits::restore_nofile();
                Ok(())
            });
        }
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
        if cri_log.is_some() {
            cmd.arg("--log-format").arg("cri");
        }
        if let Some(size) = rec.host_config.log_config.config.get("max-size") {
            let bytes = parse_size(size).ok_or_else(|| {
                Error::InvalidParameter(format!("invalid value for log option max-size: {size}"))
            })?;
            cmd.arg("--log-max-size").arg(bytes.to_string());
            let files = rec
                .host_config
                .log_config
                .config
                .get("max-file")
                .map(String::as_str)
                .unwrap_or("1");
            cmd.arg("--log-max-file").arg(files);
        }
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
        // docker closes a container's stdin after the first attach only without a tty: a
        // detached `run -it` must leave the shell reading, for a later `attach`
        if rec.config.stdin_once && !rec.config.tty {
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
        let Some(ready_pid) = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return Err(Error::Internal(format!(
                "berth-shim failed to start the container (said {line:?})"
            )));
        };

        let sock = self.shim_socket(&id);
        if let Err(e) = self.net_attach(c, ready_pid).await {
            // the init is still blocked before exec: the shim kills it and goes
            let _ = shim_client::request(&sock, "KILL 9").await;
            let _ = shim_client::wait_exit(&sock).await;
            return Err(e);
        }
        let pending: Vec<_> = std::mem::take(&mut *c.pending.lock().expect("pending lock"));
        for p in pending {
            // the client got its 101 before it sent `start`; its stream is on its way
            if let Ok(Ok(io)) = tokio::time::timeout(Duration::from_secs(5), p.io).await {
                self.spawn_attach(&sock, p.opts, io, rec.config.tty).await;
            }
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
            r.state.oom_killed = false;
            r.state.manually_stopped = false;
            if let Some(h) = r.state.health.as_mut() {
                h.status = "starting".into();
                h.failing_streak = 0;
            }
        });
        c.save(&self.container_dir(&id))?;
        self.spawn_monitor(c.clone());
        self.emit(c, "start", &[]);
        self.spawn_health(c.clone());
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

    /// Records an exit (or a lost shim: exit code 255), unmounts, then applies `--rm` or the
    /// restart policy.
    pub(crate) async fn handle_exit(self: &Arc<Self>, c: &Arc<Container>, exit: Option<Exit>) {
        let lost = exit.is_none();
        let exit = exit.unwrap_or(Exit {
            code: 255,
            at: now_nanos(),
            oom: false,
        });
        self.net_release(c, true);
        let _ = self.snaps.unmount_rw(&c.id);
        crate::container_ipc::release(&self.run_dir(&c.id));
        let _ = std::fs::remove_dir_all(self.run_dir(&c.id));
        let ran_for = c.update(|r| {
            let ran = r
                .state
                .started_at
                .map(|s| exit.at.saturating_sub(s))
                .unwrap_or(0);
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = exit.code;
            r.state.oom_killed = exit.oom;
            r.state.finished_at = Some(if exit.at == 0 { now_nanos() } else { exit.at });
            if lost {
                r.state.error = "container's shim exited without recording an exit".into();
            }
            if let Some(h) = r.state.health.as_mut() {
                h.status = "unhealthy".into();
            }
            ran
        });
        if let Err(e) = c.save(&self.container_dir(&c.id)) {
            tracing::warn!(id = %c.id, "cannot save state: {e}");
        }
        if exit.oom {
            self.emit(c, "oom", &[]);
        }
        self.emit(c, "die", &[("exitCode", exit.code.to_string())]);
        c.notify_exit(exit.code);
        let rec = c.record();
        if rec.host_config.auto_remove {
            // --rm takes the anonymous volumes with it, as docker does
            if let Err(e) = self.remove_with_volumes(&c.id, true, true).await {
                tracing::warn!(id = %c.id, "auto-remove failed: {e}");
            }
            return;
        }
        if let Some(delay) = self.restart_delay(c, exit.code, ran_for) {
            self.schedule_restart(c.clone(), delay);
        }
    }

    /// The restart policy's verdict, with docker's back-off: 100 ms doubling while the
    /// container keeps dying within 10 s of its start, up to a minute.
    fn restart_delay(&self, c: &Container, code: i32, ran_for_ns: u128) -> Option<Duration> {
        let rec = c.record();
        if rec.state.manually_stopped || self.shutting_down() {
            return None;
        }
        let p = &rec.host_config.restart_policy;
        let restart = match p.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0
                    && (p.maximum_retry_count <= 0
                        || (rec.restart_count as i64) < p.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        let mut backoff = c.backoff.lock().expect("backoff lock");
        *backoff = if ran_for_ns >= 10_000_000_000 || backoff.is_zero() {
            Duration::from_millis(100)
        } else {
            (*backoff * 2).min(Duration::from_secs(60))
        };
        Some(*backoff)
    }

    fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, delay: Duration) {
        c.update(|r| r.state.status = Status::Restarting);
        let _ = c.save(&self.container_dir(&c.id));
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            if c.state().status != Status::Restarting
                || !engine
                    .containers
                    .read()
                    .expect("containers lock")
                    .contains_key(&c.id)
            {
                return;
            }
            c.update(|r| r.restart_count += 1);
            if let Err(e) = engine.start_locked(&c).await {
                tracing::warn!(id = %c.id, "restart failed: {e}");
                engine.net_release(&c, false);
                let _ = engine.snaps.unmount_rw(&c.id);
                crate::container_ipc::release(&engine.run_dir(&c.id));
                c.update(|r| {
                    r.state.status = Status::Exited;
                    r.state.error = e.to_string();
                });
                let _ = c.save(&engine.container_dir(&c.id));
            }
        });
    }
}
