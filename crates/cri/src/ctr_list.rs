//! `ListContainers` (`crictl ps`), with the CRI's filters.

use crate::ctr_meta::{nanos, state_of, Meta};
use crate::pod_list::labels_match;
use crate::{pb, Cri};
use berth_engine::Container;

/// The CRI's summary of a container.
pub fn summary(c: &Container, m: &Meta) -> pb::Container {
    let rec = c.record();
    pb::Container {
        id: c.id.clone(),
        pod_sandbox_id: m.sandbox.clone(),
        metadata: Some(m.metadata.clone()),
        image: Some(pb::ImageSpec {
            image: m.image.clone(),
            ..Default::default()
        }),
        image_ref: rec.image_id.clone(),
        state: state_of(rec.state.status) as i32,
        created_at: nanos(Some(rec.created)),
        labels: m.labels.clone(),
        annotations: m.annotations.clone(),
    }
}

impl Cri {
    pub(crate) fn list_containers(
        &self,
        r: pb::ListContainersRequest,
    ) -> pb::ListContainersResponse {
        let f = r.filter.unwrap_or_default();
        let mut containers: Vec<pb::Container> = self
            .cri_containers()
            .into_iter()
            .filter(|(c, _)| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|(_, m)| {
                f.pod_sandbox_id.is_empty() || m.sandbox.starts_with(&f.pod_sandbox_id)
            })
            .filter(|(_, m)| labels_match(&m.labels, &f.label_selector))
            .map(|(c, m)| summary(&c, &m))
            .filter(|s| f.state.as_ref().is_none_or(|st| st.state == s.state))
            .collect();
        containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        pb::ListContainersResponse { containers }
    }
}
