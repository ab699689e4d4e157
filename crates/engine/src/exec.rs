//! `exec`: a new process in a running container's namespaces and cgroups, run by its shim.

use crate::container::{ClientIo, Status};
use crate::container_attach::Reframe;
use crate::shim_client;
use crate::{spec, Engine, Error, Result};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    #[serde(deserialize_with = "berth_types::strslice")]
    pub cmd: Option<Vec<String>>,
    pub console_size: Option<[u32; 2]>,
}

#[derive(Debug)]
pub struct Exec {
    pub id: String,
    pub container: String,
    pub config: ExecConfig,
    pub started: bool,
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i32>,
}

/// Reads the shim's one-line answer byte by byte, so no stream bytes are taken with it.
async fn read_answer(s: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b).await? == 0 {
            break;
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// An exec that could not start: the exit code is recorded and the error goes to the client
/// as docker sends it (in the stream when attached).
async fn exec_failed(
    ex: &Mutex<Exec>,
    io: Option<Box<dyn ClientIo>>,
    tty: bool,
    msg: &str,
    code: i32,
) -> Result<()> {
    {
        let mut e = ex.lock().expect("exec lock");
        e.exit_code = Some(code);
    }
    let text = format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown"
    );
    if let Some(mut io) = io {
        let out = if tty {
            format!("{text}\r\n").into_bytes()
        } else {
            crate::container_logs::frame(1, format!("{text}\n").as_bytes())
        };
        let _ = io.write_all(&out).await;
        let _ = io.shutdown().await;
        return Ok(());
    }
    Err(Error::InvalidParameter(text))
}

impl Engine {
    fn get_exec(&self, id: &str) -> Result<Arc<Mutex<Exec>>> {
        self.execs
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    pub fn exec_create(self: &Arc<Self>, name_or_id: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.get_container(name_or_id)?;
        // an exec start follows: the kernel's cgroup-move lock made ready meanwhile
        berth_runtime::prime_cgroup_move();
        match c.state().status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                )))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        if cfg.cmd.as_ref().map(|c| c.is_empty()).unwrap_or(true) {
            return Err(Error::InvalidParameter("No exec command specified".into()));
        }
        if !cfg.detach_keys.is_empty()
            && berth_types::detach::parse_detach_keys(&cfg.detach_keys).is_err()
        {
            return Err(Error::InvalidParameter(format!(
                "Invalid escape keys ({}) provided",
                cfg.detach_keys
            )));
        }
        let mut b = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        let id = hex::encode(b);
        let cmdline = cfg.cmd.clone().unwrap_or_default().join(" ");
        self.execs.lock().expect("execs lock").insert(
            id.clone(),
            Arc::new(Mutex::new(Exec {
                id: id.clone(),
                container: c.id.clone(),
                config: cfg,
                started: false,
                running: false,
                pid: 0,
                exit_code: None,
            })),
        );
        self.emit(
            &c,
            &format!("exec_create: {cmdline}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// 404 / 409 before the API upgrades the connection.
    pub fn exec_check(&self, id: &str) -> Result<()> {
        let e = self.get_exec(id)?;
        let e = e.lock().expect("exec lock");
        if e.started {
            return Err(Error::Conflict(format!(
                "Error: Exec command {id} is already running"
            )));
        }
        let c = self.get_container(&e.container)?;
        if c.state().status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        Ok(())
    }

    /// The OCI process the shim runs for this exec.
    async fn exec_process(&self, container: &str, config: &ExecConfig) -> Result<Value> {
        let c = self.get_container(container)?;
        let rec = c.record();
        let rootfs = self.snaps.rw_paths(&c.id)?.merged;
        let user_spec = if config.user.is_empty() {
            rec.config.user.clone()
        } else {
            config.user.clone()
        };
        let user =
            spec::resolve_user_blocking(rootfs, user_spec, spec::group_add(&rec.host_config))
                .await?;
        let mut base = rec.config.env.clone().unwrap_or_default();
        base.extend(config.env.clone().unwrap_or_default());
        let env = spec::process_env(&base, &rec.config.hostname, config.tty, &user.home);
        let cwd = match (config.working_dir.as_str(), rec.config.working_dir.as_str()) {
            ("", "") => "/".to_string(),
            ("", w) => w.to_string(),
            (w, _) => w.to_string(),
        };
        let privileged = config.privileged
            || rec
                .host_config
                .extra
                .get("Privileged")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let caps = spec::capabilities(&rec.host_config, privileged);
        // the container's setting (docker: an exec inherits it); the shim adds the
        // container's seccomp filter
        let nnp =
            crate::seccomp::SecurityOpts::from_host_config(&rec.host_config)?.no_new_privileges();
        Ok(json!({
            "args": config.cmd.clone().unwrap_or_default(),
            "env": env,
            "cwd": cwd,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.groups},
            "terminal": config.tty,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": spec::rlimits(&rec.host_config)?,
            "noNewPrivileges": nnp
        }))
    }

    /// Starts the exec. With `io`, its stream is joined to the client until the process ends
    /// (or the client types the detach keys); without, the output is drained and dropped
    /// (docker's detached exec). `start_tty` is the start body's `Tty`: it, not the create's,
    /// says whether the client gets frames (dockerd's rule).
    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        io: Option<Box<dyn ClientIo>>,
        start_tty: bool,
    ) -> Result<()> {
        let ex = self.get_exec(id)?;
        let (container, cfg) = {
            let mut e = ex.lock().expect("exec lock");
            if e.started {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            e.started = true;
            (e.container.clone(), e.config.clone())
        };
        let process = match self.exec_process(&container, &cfg).await {
            Ok(p) => p,
            // e.g. the user is not in the container's passwd: docker reports it in the stream
            Err(Error::InvalidParameter(m)) => return exec_failed(&ex, io, cfg.tty, &m, 126).await,
            Err(e) => return Err(e),
        };
        let c = self.get_container(&container)?;
        if c.state().status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let (rows, cols) = cfg.console_size.map(|[h, w]| (h, w)).unwrap_or((0, 0));
        let req = json!({"id": id, "process": process, "stdin": cfg.attach_stdin, "rows": rows, "cols": cols});
        let sock = self.shim_socket(&c.id);
        // the shim moves the exec'd process into the container's cgroups
        berth_runtime::prime_cgroup_move();
        let mut conn = shim_client::connect(&sock, &format!("EXEC {req}"))
            .await
            .map_err(|e| Error::Internal(format!("cannot reach the container's shim: {e}")))?;
        let answer = read_answer(&mut conn).await?;
        let cmdline = cfg.cmd.clone().unwrap_or_default().join(" ");
        if let Some(msg) = answer
            .strip_prefix("ERROR ")
            .or(if answer.starts_with("OK") {
                None
            } else {
                Some(answer.as_str())
            })
        {
            let code = if msg.contains("not found") || msg.contains("no such file") {
                127
            } else {
                126
            };
            return exec_failed(&ex, io, cfg.tty, msg, code).await;
        }
        let pid = answer.trim_start_matches("OK").trim().parse().unwrap_or(0);
        {
            let mut e = ex.lock().expect("exec lock");
            e.running = true;
            e.pid = pid;
        }
        self.emit(
            &c,
            &format!("exec_start: {cmdline}"),
            &[("execID", id.to_string())],
        );
        let engine = self.clone();
        let id = id.to_string();
        let finish = async move {
            let client = match io {
                Some(io) => {
                    let how = crate::container_attach::Splice {
                        stdin: cfg.attach_stdin,
                        close_stdin: !cfg.tty,
                        detach_keys: crate::container_attach::escape_keys(
                            cfg.tty && cfg.attach_stdin,
                            berth_types::detach::parse_detach_keys(&cfg.detach_keys)
                                .ok()
                                .filter(|_| !cfg.detach_keys.is_empty()),
                        ),
                        out: match (cfg.tty, start_tty) {
                            (false, true) => Reframe::Deframe,
                            (true, false) => Reframe::Frame,
                            _ => Reframe::Same,
                        },
                    };
                    let (mut w, detached) =
                        crate::container_attach::splice_open(conn, io, how).await;
                    if detached {
                        // the client leaves now; the process runs on
                        let _ = w.shutdown().await;
                        engine.emit(&c, "exec_detach", &[("execID", id.clone())]);
                        None
                    } else {
                        Some(w)
                    }
                }
                None => {
                    let mut sink = [0u8; 8192];
                    while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
                    None
                }
            };
            let code = shim_client::request(&sock, &format!("EXECWAIT {id}"))
                .await
                .ok()
                .and_then(|l| shim_client::parse_exited(&l))
                .map(|e| e.code)
                .unwrap_or(137);
            {
                let mut e = ex.lock().expect("exec lock");
                e.running = false;
                e.exit_code = Some(code);
            }
            if let Some(mut w) = client {
                let _ = w.shutdown().await;
            }
            engine.emit(
                &c,
                "exec_die",
                &[("execID", id.clone()), ("exitCode", code.to_string())],
            );
        };
        tokio::spawn(finish);
        Ok(())
    }

    pub fn exec_inspect(&self, id: &str) -> Result<Value> {
        let ex = self.get_exec(id)?;
        let e = ex.lock().expect("exec lock");
        let args = e.config.cmd.clone().unwrap_or_default();
        let mut v = json!({
            "CanRemove": false,
            "ContainerID": e.container,
            "DetachKeys": e.config.detach_keys,
            "ExitCode": e.exit_code,
            "ID": e.id,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdin": e.config.attach_stdin,
            "OpenStdout": e.config.attach_stdout,
            "ProcessConfig": {
                "arguments": args.get(1..).unwrap_or(&[]),
                "entrypoint": args.first().cloned().unwrap_or_default(),
                "privileged": e.config.privileged,
                "tty": e.config.tty,
                "user": e.config.user
            },
            "Running": e.running,
            "Pid": e.pid
        });
        // dockerd leaves an empty user out (omitempty)
        if e.config.user.is_empty() {
            if let Some(p) = v["ProcessConfig"].as_object_mut() {
                p.remove("user");
            }
        }
        Ok(v)
    }

    pub async fn exec_resize(&self, id: &str, h: u32, w: u32) -> Result<()> {
        let ex = self.get_exec(id)?;
        let (container, tty) = {
            let e = ex.lock().expect("exec lock");
            (e.container.clone(), e.config.tty)
        };
        if !tty || h == 0 || w == 0 {
            return Ok(());
        }
        // The resize may come before the process runs: retry briefly (docker holds the reply).
        for _ in 0..30 {
            let answer = shim_client::request(
                &self.shim_socket(&container),
                &format!("EXECRESIZE {id} {h} {w}"),
            )
            .await;
            if matches!(&answer, Ok(a) if a.starts_with("OK")) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// IDs of the container's execs (for inspect's `ExecIDs`).
    pub(crate) fn exec_ids(&self, container: &str) -> Vec<String> {
        self.execs
            .lock()
            .expect("execs lock")
            .values()
            .filter_map(|e| {
                let e = e.lock().expect("exec lock");
                (e.container == container && (e.running || !e.started)).then(|| e.id.clone())
            })
            .collect()
    }

    /// Runs `argv` in the container to completion and returns (exit code, output), at most
    /// `max` bytes of it (health checks).
    pub(crate) async fn run_probe(
        self: &Arc<Self>,
        container: &str,
        argv: Vec<String>,
        max: usize,
    ) -> Result<(i32, String)> {
        let cfg = ExecConfig {
            cmd: Some(argv),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let c = self.get_container(container)?;
        let id = {
            let mut b = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut b);
            format!("probe-{}", hex::encode(b))
        };
        let e = Exec {
            id: id.clone(),
            container: c.id.clone(),
            config: cfg.clone(),
            started: true,
            running: false,
            pid: 0,
            exit_code: None,
        };
        let process = self.exec_process(&e.container, &e.config).await?;
        let req = json!({"id": id, "process": process, "stdin": false, "rows": 0, "cols": 0});
        let sock = self.shim_socket(&c.id);
        berth_runtime::prime_cgroup_move();
        let mut conn = shim_client::connect(&sock, &format!("EXEC {req}")).await?;
        let answer = read_answer(&mut conn).await?;
        if !answer.starts_with("OK") {
            return Ok((-1, answer.trim_start_matches("ERROR ").to_string()));
        }
        let mut raw = Vec::new();
        let _ = conn.read_to_end(&mut raw).await;
        let mut out = Vec::new();
        let mut rest = raw.as_slice();
        while rest.len() >= 8 {
            let n = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let end = (8 + n).min(rest.len());
            out.extend_from_slice(&rest[8..end]);
            rest = &rest[end..];
        }
        out.truncate(max);
        let code = shim_client::request(&sock, &format!("EXECWAIT {id}"))
            .await
            .ok()
            .and_then(|l| shim_client::parse_exited(&l))
            .map(|e| e.code)
            .unwrap_or(-1);
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }
}
