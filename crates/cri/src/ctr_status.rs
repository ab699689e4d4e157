//! `ContainerStatus` (`crictl inspect`).

use crate::ctr_meta::{nanos, state_of};
use crate::{pb, Cri, Result};

impl Cri {
    pub(crate) fn container_status(
        &self,
        r: pb::ContainerStatusRequest,
    ) -> Result<pb::ContainerStatusResponse> {
        let (c, m) = self.cri_container(&r.container_id)?;
        let rec = c.record();
        let st = &rec.state;
        let state = state_of(st.status);
        let reason = match state {
            pb::ContainerState::ContainerExited if st.oom_killed => "OOMKilled",
            pb::ContainerState::ContainerExited if st.exit_code == 0 => "Completed",
            pb::ContainerState::ContainerExited => "Error",
            _ => "",
        };
        let mounts = rec
            .mounts
            .iter()
            .map(|mp| mp.to_json())
            .map(|v| pb::Mount {
                container_path: v["Destination"].as_str().unwrap_or("").into(),
                host_path: v["Source"].as_str().unwrap_or("").into(),
                readonly: v["RW"].as_bool() == Some(false),
                propagation: match v["Propagation"].as_str() {
                    Some("rshared" | "shared") => pb::MountPropagation::PropagationBidirectional,
                    Some("rslave" | "slave") => pb::MountPropagation::PropagationHostToContainer,
                    _ => pb::MountPropagation::PropagationPrivate,
                } as i32,
                ..Default::default()
            })
            .collect();
        let status = pb::ContainerStatus {
            id: c.id.clone(),
            metadata: Some(m.metadata.clone()),
            state: state as i32,
            created_at: nanos(Some(rec.created)),
            started_at: if st.has_started {
                nanos(st.started_at)
            } else {
                0
            },
            finished_at: if state == pb::ContainerState::ContainerExited {
                nanos(st.finished_at)
            } else {
                0
            },
            exit_code: st.exit_code,
            image: Some(pb::ImageSpec {
                image: m.image.clone(),
                ..Default::default()
            }),
            image_ref: rec.image_id.clone(),
            reason: reason.into(),
            message: st.error.clone(),
            labels: m.labels.clone(),
            annotations: m.annotations.clone(),
            mounts,
            log_path: m.log_path.clone(),
            resources: None,
        };
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            let v = serde_json::json!({
                "sandboxID": m.sandbox,
                "pid": st.pid,
                "name": rec.name,
                "runtimeSpec": {"process": {"args": std::iter::once(rec.path.clone()).chain(rec.args.clone()).collect::<Vec<_>>(), "user": rec.config.user}},
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(pb::ContainerStatusResponse {
            status: Some(status),
            info,
        })
    }
}
