//! `StartContainer` (`crictl start`).

use crate::{pb, Cri, Error, Result};

impl Cri {
    pub(crate) async fn start_container(
        &self,
        r: pb::StartContainerRequest,
    ) -> Result<pb::StartContainerResponse> {
        let (c, meta) = self.cri_container(&r.container_id)?;
        let pod = self.pods.get(&meta.sandbox)?;
        if !pod.ready {
            return Err(Error::FailedPrecondition(format!(
                "sandbox {} of container {} is not ready",
                pod.id, c.id
            )));
        }
        if c.state().status != berth_engine::Status::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not in created state: {}",
                c.id,
                c.state().status.as_str()
            )));
        }
        self.engine.start(&c.id).await?;
        Ok(pb::StartContainerResponse {})
    }
}
