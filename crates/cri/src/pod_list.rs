//! `ListPodSandbox` (`crictl pods`), with the CRI's filters (id prefix, state, labels).

use crate::{pb, Cri};
use std::collections::HashMap;

/// Whether `labels` has every pair of `selector`.
pub fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl Cri {
    pub(crate) fn list_pods(&self, r: pb::ListPodSandboxRequest) -> pb::ListPodSandboxResponse {
        let f = r.filter.unwrap_or_default();
        let mut items: Vec<pb::PodSandbox> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
            .filter(|p| f.state.as_ref().is_none_or(|s| s.state == p.state() as i32))
            .filter(|p| labels_match(&p.config.labels, &f.label_selector))
            .map(|p| pb::PodSandbox {
                id: p.id.clone(),
                metadata: Some(p.metadata()),
                state: p.state() as i32,
                created_at: p.created_at,
                labels: p.config.labels.clone(),
                annotations: p.config.annotations.clone(),
                runtime_handler: p.runtime_handler.clone(),
            })
            .collect();
        items.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        pb::ListPodSandboxResponse { items }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let l: HashMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert!(labels_match(&l, &HashMap::new()));
        assert!(labels_match(&l, &[("a".into(), "1".into())].into()));
        assert!(!labels_match(&l, &[("a".into(), "2".into())].into()));
        assert!(!labels_match(&l, &[("c".into(), "1".into())].into()));
    }
}
