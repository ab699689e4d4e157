//! `ExecSync` (`crictl exec -s`): a process in the container, its output collected whole.

use crate::{pb, Cri, Error, Result};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Splits docker's multiplexed stream into stdout and stderr.
pub fn demux(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    berth_types::stdcopy::Demux::default().feed(data, &mut |k, p| {
        if k == 2 {
            err.extend_from_slice(p)
        } else {
            out.extend_from_slice(p)
        }
    });
    (out, err)
}

/// Output kept per stream (kubelet's limit for probes is 16 MiB).
const MAX_OUTPUT: usize = 16 << 20;

impl Cri {
    /// An exec's exit code once its output has ended: it is set when the process is reaped,
    /// a moment later (255 if that does not come within 5 s).
    pub(crate) async fn exec_exit_code(&self, exec_id: &str) -> i32 {
        for _ in 0..500 {
            if let Ok(v) = self.engine.exec_inspect(exec_id) {
                if v["Running"] == false && !v["ExitCode"].is_null() {
                    return v["ExitCode"].as_i64().unwrap_or(0) as i32;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        255
    }

    pub(crate) async fn exec_sync(&self, r: pb::ExecSyncRequest) -> Result<pb::ExecSyncResponse> {
        let (c, _) = self.cri_container(&r.container_id)?;
        if r.cmd.is_empty() {
            return Err(Error::InvalidArgument("cmd must not be empty".into()));
        }
        if !c.state().status.is_running() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        let cfg = berth_engine::ExecConfig {
            attach_stdout: true,
            attach_stderr: true,
            cmd: Some(r.cmd.clone()),
            ..Default::default()
        };
        let exec_id = self.engine.exec_create(&c.id, cfg)?;
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        self.engine
            .exec_start(&exec_id, Some(Box::new(theirs)), false)
            .await?;
        let collect = async {
            let mut buf = Vec::new();
            let mut ours = ours;
            let mut chunk = vec![0u8; 32 * 1024];
            loop {
                match ours.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if buf.len() < 2 * MAX_OUTPUT + 16 {
                            buf.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            }
            (buf, self.exec_exit_code(&exec_id).await)
        };
        let (raw, code) = if r.timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(r.timeout as u64), collect).await {
                Ok(x) => x,
                Err(_) => {
                    // the process must not outlive its deadline (kubelet's probes rely on it)
                    if let Ok(v) = self.engine.exec_inspect(&exec_id) {
                        let pid = v["Pid"].as_i64().unwrap_or(0) as i32;
                        if pid > 0 && v["Running"] == true {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    return Err(Error::DeadlineExceeded(format!(
                        "command {:?} timed out after {}s",
                        r.cmd, r.timeout
                    )));
                }
            }
        } else {
            collect.await
        };
        let (mut stdout, mut stderr) = demux(&raw);
        stdout.truncate(MAX_OUTPUT);
        stderr.truncate(MAX_OUTPUT);
        Ok(pb::ExecSyncResponse {
            stdout,
            stderr,
            exit_code: code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demultiplexes() {
        let mut d = vec![1, 0, 0, 0, 0, 0, 0, 3];
        d.extend_from_slice(b"out");
        d.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        d.extend_from_slice(b"er");
        d.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 1, b'x']);
        let (o, e) = demux(&d);
        assert_eq!((o.as_slice(), e.as_slice()), (&b"outx"[..], &b"er"[..]));
    }
}
