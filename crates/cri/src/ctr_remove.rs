//! `RemoveContainer` (`crictl rm`): killed if running, then removed. Gone already: no error.

use crate::{pb, Cri, Error, Result};

impl Cri {
    pub(crate) async fn remove_container(
        &self,
        r: pb::RemoveContainerRequest,
    ) -> Result<pb::RemoveContainerResponse> {
        let c = match self.cri_container(&r.container_id) {
            Ok((c, _)) => c,
            Err(Error::NotFound(_)) => return Ok(pb::RemoveContainerResponse {}),
            Err(e) => return Err(e),
        };
        self.engine.remove(&c.id, true).await?;
        Ok(pb::RemoveContainerResponse {})
    }
}
