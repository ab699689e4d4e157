//! `Exec` (`crictl exec -it`): the URL of the streaming server, and the exec it runs once the
//! client has connected and opened its streams.

use crate::stream_server::{join, Conn, Request, Want};
use crate::{pb, Cri, Error, Result};
use std::sync::Arc;

fn want(r: &pb::ExecRequest) -> Want {
    Want {
        stdin: r.stdin,
        stdout: r.stdout,
        stderr: r.stderr,
        tty: r.tty,
    }
}

impl Cri {
    pub(crate) async fn exec(&self, r: pb::ExecRequest) -> Result<pb::ExecResponse> {
        if r.cmd.is_empty() {
            return Err(Error::InvalidArgument("cmd must not be empty".into()));
        }
        self.check_streamable(&r.container_id, want(&r))?;
        let url = self.stream_url(Request::Exec(r))?;
        Ok(pb::ExecResponse { url })
    }

    pub(crate) async fn stream_exec(self: Arc<Self>, r: pb::ExecRequest, conn: Conn) {
        self.remotecommand_session(conn, want(&r), async |conn, st| {
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
            join(conn, st, ours, r.tty, move |h, w| {
                let (eng, id) = (eng.clone(), id.clone());
                async move {
                    let _ = eng.exec_resize(&id, h, w).await;
                }
            })
            .await?;
            Ok(self.exec_exit_code(&exec_id).await)
        })
        .await
    }
}
