//! `Exec` (`crictl exec -it`): the URL of the streaming server, and the exec it runs once the
//! client has connected and opened its streams.

use crate::stream_server::{check_want, pump, resizes, Conn, Request, Want};
use crate::{pb, Cri, Error, Result};
use std::sync::Arc;
use tokio::sync::mpsc;

impl Cri {
    pub(crate) async fn exec(&self, r: pb::ExecRequest) -> Result<pb::ExecResponse> {
        let (c, _) = self.cri_container(&r.container_id)?;
        if r.cmd.is_empty() {
            return Err(Error::InvalidArgument("cmd must not be empty".into()));
        }
        check_want(Want {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        })?;
        if !c.state().status.is_running() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        let url = self.stream_url(Request::Exec(r))?;
        Ok(pb::ExecResponse { url })
    }

    pub(crate) async fn stream_exec(self: Arc<Self>, r: pb::ExecRequest, mut conn: Conn) {
        let want = Want {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        };
        let mut st = match conn.remotecommand(want).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("exec stream: {e}");
                conn.close().await;
                return;
            }
        };
        let outcome = async {
            let (c, _) = self
                .cri_container(&r.container_id)
                .map_err(|e| e.to_string())?;
            let cfg = berth_engine::ExecConfig {
                attach_stdin: r.stdin,
                attach_stdout: r.stdout,
                attach_stderr: r.stderr && !r.tty,
                tty: r.tty,
                cmd: Some(r.cmd.clone()),
                ..Default::default()
            };
            let exec_id = self
                .engine
                .exec_create(&c.id, cfg)
                .map_err(|e| e.to_string())?;
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            self.engine
                .exec_start(&exec_id, Some(Box::new(theirs)), r.tty)
                .await
                .map_err(|e| e.to_string())?;
            let (eng, id) = (self.engine.clone(), exec_id.clone());
            let rest = std::mem::replace(&mut st.rest, mpsc::channel(1).1);
            let resizer = tokio::spawn(resizes(rest, move |h, w| {
                let (eng, id) = (eng.clone(), id.clone());
                async move {
                    let _ = eng.exec_resize(&id, h, w).await;
                }
            }));
            let gone = pump(&mut conn, &mut st, ours, r.tty).await;
            resizer.abort();
            if gone {
                return Err("the client went away".to_string());
            }
            Ok(self.exec_exit_code(&exec_id).await)
        }
        .await;
        st.finish(outcome).await;
        conn.close().await;
    }
}
