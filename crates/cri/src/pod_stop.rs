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
        if pod.ready || pod.pid > 0 {
            self.pod_network_down(&pod).await;
            pause::stop(pod.pid).await;
            pod.ready = false;
            pod.pid = 0;
            self.pods.save(&pod)?;
        }
        Ok(pb::StopPodSandboxResponse {})
    }
}
