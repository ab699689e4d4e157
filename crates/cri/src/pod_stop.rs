//! `StopPodSandbox` (`crictl stopp`): its containers killed, its network torn down, the pause
//! process gone. Idempotent.

use crate::{pause, pb, Cri, Result};

impl Cri {
    pub(crate) async fn stop_pod(
        &self,
        r: pb::StopPodSandboxRequest,
    ) -> Result<pb::StopPodSandboxResponse> {
        let mut pod = self.pods.get(&r.pod_sandbox_id)?;
        for c in self.pod_containers(&pod.id) {
            if c.state().status.is_running() {
                self.engine.stop(&c.id, Some(0)).await?;
            }
        }
        let before = (pod.ready, pod.pid, pod.cni_result.is_some());
        // the network first: CNI DEL enters the namespace the pause process holds
        if pod.cni_result.is_some() {
            self.pod_network_down(&pod).await;
            pod.cni_result = None;
        }
        pause::stop(pod.pid).await;
        crate::shm::unmount(&self.pods.files_dir(&pod.id));
        pod.ready = false;
        pod.pid = 0;
        if before != (pod.ready, pod.pid, pod.cni_result.is_some()) {
            self.pods.save(&pod)?;
        }
        Ok(pb::StopPodSandboxResponse {})
    }
}
