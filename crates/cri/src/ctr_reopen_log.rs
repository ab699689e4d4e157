//! `ReopenContainerLog`: kubelet rotated the CRI log by renaming it.

use crate::{pb, Cri, Result};

impl Cri {
    /// `ReopenContainerLog`: kubelet renamed the log away; the shim opens the path anew.
    pub(crate) async fn reopen_log(
        &self,
        r: pb::ReopenContainerLogRequest,
    ) -> Result<pb::ReopenContainerLogResponse> {
        let (c, _) = self.cri_container(&r.container_id)?;
        if !c.state().status.is_running() {
            return Err(crate::Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        self.engine.reopen_log(&c.id).await?;
        Ok(pb::ReopenContainerLogResponse {})
    }
}
