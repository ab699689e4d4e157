//! `UpdateContainerResources`: the container's cgroup limits changed in place (the engine's
//! `update`, as `docker update`).

use crate::{pb, Cri, Result};

impl Cri {
    pub(crate) async fn update_resources(
        &self,
        r: pb::UpdateContainerResourcesRequest,
    ) -> Result<pb::UpdateContainerResourcesResponse> {
        let (c, _) = self.cri_container(&r.container_id)?;
        let Some(res) = r.linux else {
            return Ok(pb::UpdateContainerResourcesResponse {});
        };
        let mut body = crate::ctr_create::resources(&res);
        // not a cgroup setting: fixed at start
        body.remove("OomScoreAdj");
        if !body.is_empty() {
            self.engine.update(&c.id, body).await?;
        }
        Ok(pb::UpdateContainerResourcesResponse {})
    }
}
