//! `StopContainer` (`crictl stop`): its stop signal, then SIGKILL after the timeout.

use crate::{pb, Cri, Result};

impl Cri {
    pub(crate) async fn stop_container(
        &self,
        r: pb::StopContainerRequest,
    ) -> Result<pb::StopContainerResponse> {
        let (c, _) = self.cri_container(&r.container_id)?;
        if c.state().status.is_running() {
            self.engine.stop(&c.id, Some(r.timeout.max(0))).await?;
        }
        Ok(pb::StopContainerResponse {})
    }
}
