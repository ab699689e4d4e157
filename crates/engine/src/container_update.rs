//! `update`: resource limits and the restart policy of a container, live if it runs.

use crate::{shim_client, spec, Engine, Error, Result};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The keys of `POST /containers/{id}/update` that we apply.
const RESOURCE_KEYS: &[&str] = &[
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
];

impl Engine {
    pub async fn update(
        self: &Arc<Self>,
        name_or_id: &str,
        body: Map<String, Value>,
    ) -> Result<Vec<String>> {
        let c = self.get_container(name_or_id)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        if let Some(rp) = body.get("RestartPolicy").filter(|v| !v.is_null()) {
            let rp: berth_types::RestartPolicy = serde_json::from_value(rp.clone())?;
            crate::container_validate::check_restart_policy(&rp)?;
            if rec.host_config.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
                return Err(Error::InvalidParameter(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
        }
        // the same type and range checks as at create (a string Memory is a 400, not 0)
        crate::container_validate::check_update_types(&body)?;
        let mut hc = rec.host_config.clone();
        for k in RESOURCE_KEYS {
            if let Some(v) = body.get(*k) {
                // docker: zero values mean "leave as is", except PidsLimit where 0/-1 clear it
                let zero = v.is_null() || v.as_i64() == Some(0) || v.as_str() == Some("");
                if *k == "PidsLimit" && v.as_i64().is_some_and(|n| n <= 0) {
                    // 0, -1 and any negative value: unlimited, kept as 0 (dockerd's form)
                    hc.extra.insert(k.to_string(), serde_json::json!(0));
                } else if !zero {
                    hc.extra.insert(k.to_string(), v.clone());
                }
            }
        }
        if let Some(rp) = body.get("RestartPolicy").filter(|v| !v.is_null()) {
            let rp: berth_types::RestartPolicy = serde_json::from_value(rp.clone())?;
            if !rp.name.is_empty() {
                hc.restart_policy = rp;
            }
        }
        crate::container_validate::check_update(&hc.extra)?;
        let resources = spec::resources(&hc)?;
        if c.state().status.is_running() {
            let answer = shim_client::request(
                &self.shim_socket(&c.id),
                &format!("UPDATE {}", serde_json::to_string(&resources)?),
            )
            .await
            .map_err(|e| Error::Internal(format!("cannot reach the container's shim: {e}")))?;
            if let Some(m) = answer.strip_prefix("ERROR ") {
                return Err(Error::InvalidParameter(format!(
                    "Cannot update container {}: {m}",
                    c.id
                )));
            }
        }
        c.update(|r| r.host_config = hc);
        c.save(&self.container_dir(&c.id))?;
        self.emit(&c, "update", &[]);
        Ok(Vec::new())
    }
}
