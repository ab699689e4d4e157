//! `Attach` (`crictl attach`): the URL of the streaming server, and the attach to the
//! container's stdio it makes once the client has connected and opened its streams.

use crate::stream_server::{check_want, pump, resizes, Conn, Request, Want};
use crate::{pb, Cri, Error, Result};
use std::sync::Arc;
use tokio::sync::mpsc;

impl Cri {
    pub(crate) async fn attach(&self, r: pb::AttachRequest) -> Result<pb::AttachResponse> {
        let (c, _) = self.cri_container(&r.container_id)?;
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
        let url = self.stream_url(Request::Attach(r))?;
        Ok(pb::AttachResponse { url })
    }

    pub(crate) async fn stream_attach(self: Arc<Self>, r: pb::AttachRequest, mut conn: Conn) {
        let want = Want {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        };
        let mut st = match conn.remotecommand(want).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("attach stream: {e}");
                conn.close().await;
                return;
            }
        };
        let outcome = async {
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
            let rest = std::mem::replace(&mut st.rest, mpsc::channel(1).1);
            let resizer = tokio::spawn(resizes(rest, move |h, w| {
                let (eng, id) = (eng.clone(), id.clone());
                async move {
                    let _ = eng.resize(&id, h, w).await;
                }
            }));
            let gone = pump(&mut conn, &mut st, ours, tty).await;
            resizer.abort();
            if gone {
                return Err("the client went away".to_string());
            }
            Ok(0)
        }
        .await;
        st.finish(outcome).await;
        conn.close().await;
    }
}
