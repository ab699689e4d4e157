//! `ExecSync` (`crictl exec -s`): a process in the container, its output collected whole.

use crate::{pb, Cri, Error, Result};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Splits docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, big-endian length)
/// into stdout and stderr.
pub fn demux(mut data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        let end = (8 + len).min(data.len());
        let payload = &data[8..end];
        if data[0] == 2 {
            err.extend_from_slice(payload);
        } else {
            out.extend_from_slice(payload);
        }
        data = &data[end..];
    }
    (out, err)
}

/// Output kept per stream (kubelet's limit for probes is 16 MiB).
const MAX_OUTPUT: usize = 16 << 20;

impl Cri {
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
            // the exit code is set once the exec is reaped
            for _ in 0..500 {
                if let Ok(v) = self.engine.exec_inspect(&exec_id) {
                    if v["Running"] == false && !v["ExitCode"].is_null() {
                        return (buf, v["ExitCode"].as_i64().unwrap_or(0) as i32);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (buf, 255)
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
        d.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 9, b'x']);
        let (o, e) = demux(&d);
        assert_eq!((o.as_slice(), e.as_slice()), (&b"outx"[..], &b"er"[..]));
    }
}
