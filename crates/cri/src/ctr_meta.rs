//! How a CRI container is kept in the engine: an engine container carrying one label with
//! its CRI identity (pod, metadata, labels, annotations, image as asked, log path).

use crate::{pb, Cri, Error, Result};
use berth_engine::{Container, Status};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The engine label that marks a CRI container and holds its [`Meta`].
pub const LABEL: &str = "io.berth.cri.container";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    pub sandbox: String,
    pub metadata: pb::ContainerMetadata,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// the image as the request named it
    pub image: String,
    /// the CRI log file (empty: none)
    #[serde(default)]
    pub log_path: String,
}

/// The container's CRI identity, if it is a CRI container.
pub fn meta_of(c: &Container) -> Option<Meta> {
    let rec = c.record();
    let raw = rec.config.labels.as_ref()?.get(LABEL)?.clone();
    serde_json::from_str(&raw).ok()
}

/// The CRI state of an engine status.
pub fn state_of(s: Status) -> pb::ContainerState {
    match s {
        Status::Created => pb::ContainerState::ContainerCreated,
        Status::Running | Status::Paused | Status::Restarting => {
            pb::ContainerState::ContainerRunning
        }
        Status::Exited | Status::Dead => pb::ContainerState::ContainerExited,
        Status::Removing => pb::ContainerState::ContainerUnknown,
    }
}

/// Unix nanoseconds of an optional engine time.
pub fn nanos(t: Option<u128>) -> i64 {
    t.map(|n| n as i64).unwrap_or(0)
}

impl Cri {
    /// Every CRI container with its identity.
    pub(crate) fn cri_containers(&self) -> Vec<(Arc<Container>, Meta)> {
        self.engine
            .containers()
            .into_iter()
            .filter_map(|c| meta_of(&c).map(|m| (c, m)))
            .collect()
    }

    /// The containers of one pod.
    pub(crate) fn pod_containers(&self, pod_id: &str) -> Vec<Arc<Container>> {
        self.cri_containers()
            .into_iter()
            .filter(|(_, m)| m.sandbox == pod_id)
            .map(|(c, _)| c)
            .collect()
    }

    /// A CRI container by ID or unique prefix.
    pub(crate) fn cri_container(&self, id: &str) -> Result<(Arc<Container>, Meta)> {
        let not_found = || {
            Error::NotFound(format!(
                "an error occurred when try to find container {id:?}: not found"
            ))
        };
        if id.is_empty() {
            return Err(not_found());
        }
        let mut found = self
            .cri_containers()
            .into_iter()
            .filter(|(c, _)| c.id.starts_with(id));
        match (found.next(), found.next()) {
            (Some(x), None) => Ok(x),
            (Some(_), Some(_)) => Err(Error::NotFound(format!("container ID {id:?} is ambiguous"))),
            _ => Err(not_found()),
        }
    }
}
