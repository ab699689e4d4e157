//! `Attach` (`crictl attach`): the URL of the streaming server, and the attach to the
//! container's stdio it makes once the client has connected and opened its streams.

use crate::stream_server::{join, Conn, Request, Want};
use crate::{pb, Cri, Result};
use std::sync::Arc;

fn want(r: &pb::AttachRequest) -> Want {
    Want {
        stdin: r.stdin,
        stdout: r.stdout,
        stderr: r.stderr,
        tty: r.tty,
    }
}

impl Cri {
    pub(crate) async fn attach(&self, r: pb::AttachRequest) -> Result<pb::AttachResponse> {
        self.check_streamable(&r.container_id, want(&r))?;
        let url = self.stream_url(Request::Attach(r))?;
        Ok(pb::AttachResponse { url })
    }

    pub(crate) async fn stream_attach(self: Arc<Self>, r: pb::AttachRequest, conn: Conn) {
        self.remotecommand_session(conn, want(&r), async |conn, st| {
            let (c, _) = self
                .cri_container(&r.container_id)
                .map_err(|e| e.to_string())?;
            // the output is framed by the container's own tty, whatever the request says
            let tty = c.record().config.tty;
            let opts = berth_engine::AttachOptions {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr && !tty,
                logs: false,
                stream: true,
                detach_keys: None,
            };
            let ticket = self
                .engine
                .attach_prepare(&c.id, opts)
                .map_err(|e| e.to_string())?;
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            self.engine
                .attach(ticket, Box::new(theirs))
                .await
                .map_err(|e| e.to_string())?;
            let (eng, id) = (self.engine.clone(), c.id.clone());
            join(conn, st, ours, tty, move |h, w| {
                let (eng, id) = (eng.clone(), id.clone());
                async move {
                    let _ = eng.resize(&id, h, w).await;
                }
            })
            .await?;
            Ok(0)
        })
        .await
    }
}
