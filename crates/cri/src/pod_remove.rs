//! `RemovePodSandbox` (`crictl rmp`): stopped if need be, its containers removed, its record
//! and files gone. A pod that is gone already is no error.

use crate::{pb, Cri, Error, Result};

impl Cri {
    pub(crate) async fn remove_pod(
        &self,
        r: pb::RemovePodSandboxRequest,
    ) -> Result<pb::RemovePodSandboxResponse> {
        let pod = match self.pods.get(&r.pod_sandbox_id) {
            Ok(p) => p,
            Err(Error::NotFound(_)) => return Ok(pb::RemovePodSandboxResponse {}),
            Err(e) => return Err(e),
        };
        self.stop_pod(pb::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await?;
        for c in self.pod_containers(&pod.id) {
            self.engine.remove(&c.id, true).await?;
        }
        self.pods.remove(&pod.id)?;
        Ok(pb::RemovePodSandboxResponse {})
    }
}
