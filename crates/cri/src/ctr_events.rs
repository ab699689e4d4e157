//! `GetContainerEvents`: the engine's container events (create, start, die, destroy) of CRI
//! containers as the CRI's event stream (kubelet's evented PLEG).

use crate::ctr_meta::{Meta, LABEL};
use crate::{pb, Cri};
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

pub type EventStream = ReceiverStream<Result<pb::ContainerEventResponse, tonic::Status>>;

/// The CRI's event type of an engine container action, if it has one.
pub fn event_type(action: &str) -> Option<pb::ContainerEventType> {
    Some(match action {
        "create" => pb::ContainerEventType::ContainerCreatedEvent,
        "start" => pb::ContainerEventType::ContainerStartedEvent,
        "die" => pb::ContainerEventType::ContainerStoppedEvent,
        "destroy" => pb::ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    })
}

impl Cri {
    pub(crate) fn container_events(self: &Arc<Self>) -> EventStream {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (_, mut events) = self.engine.events.subscribe();
        let cri = self.clone();
        tokio::spawn(async move {
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("CRI events: {n} engine events missed");
                        continue;
                    }
                    Err(_) => return,
                };
                if ev.kind != "container" {
                    continue;
                }
                let Some(kind) = event_type(&ev.action) else {
                    continue;
                };
                let Some(meta) = ev
                    .attributes
                    .get(LABEL)
                    .and_then(|m| serde_json::from_str::<Meta>(m).ok())
                else {
                    continue;
                };
                let pod_sandbox_status = cri
                    .pods
                    .get(&meta.sandbox)
                    .ok()
                    .map(|p| crate::pod_status::status_of(&p));
                let containers_statuses = cri
                    .container_status(pb::ContainerStatusRequest {
                        container_id: ev.id.clone(),
                        verbose: false,
                    })
                    .ok()
                    .and_then(|r| r.status)
                    .into_iter()
                    .collect();
                let resp = pb::ContainerEventResponse {
                    container_id: ev.id.clone(),
                    container_event_type: kind as i32,
                    created_at: ev.time as i64,
                    pod_sandbox_status,
                    containers_statuses,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions() {
        assert_eq!(
            event_type("start"),
            Some(pb::ContainerEventType::ContainerStartedEvent)
        );
        assert_eq!(
            event_type("die"),
            Some(pb::ContainerEventType::ContainerStoppedEvent)
        );
        assert_eq!(event_type("exec_start: sh"), None);
    }
}
