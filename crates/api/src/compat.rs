//! Shapes of answers for old API versions (berthd accepts down to 1.12), as dockerd 20.10
//! gives them to clients pinned to such a version.

use crate::version_below;
use serde_json::{json, Value};

/// `GET /containers/{id}/json` below 1.21: the 1.19 shape (`Volumes`/`VolumesRW`, resource
/// fields in `Config`, no `Mounts`) or the 1.20 one (`Mounts`, network fields in `Config`);
/// neither has `NetworkSettings.Networks`.
pub(crate) fn container_inspect(mut v: Value) -> Value {
    if !version_below("1.21") {
        return v;
    }
    let hc = v["HostConfig"].clone();
    if let Value::Object(ns) = &mut v["NetworkSettings"] {
        ns.remove("Networks");
    }
    if let Value::Object(c) = &mut v["Config"] {
        let disabled = hc["NetworkMode"] == "none";
        c.entry("MacAddress").or_insert(json!(""));
        c.insert("NetworkDisabled".into(), json!(disabled));
        c.entry("ExposedPorts").or_insert(Value::Null);
        c.insert("VolumeDriver".into(), hc["VolumeDriver"].clone());
        if version_below("1.20") {
            c.insert("Memory".into(), hc["Memory"].clone());
            c.insert("MemorySwap".into(), hc["MemorySwap"].clone());
            c.insert("CpuShares".into(), hc["CpuShares"].clone());
            c.insert("Cpuset".into(), hc["CpusetCpus"].clone());
        }
    }
    if version_below("1.20") {
        let mut vols = serde_json::Map::new();
        let mut rw = serde_json::Map::new();
        for m in v["Mounts"].as_array().into_iter().flatten() {
            if let Some(d) = m["Destination"].as_str() {
                vols.insert(d.into(), m["Source"].clone());
                rw.insert(d.into(), m["RW"].clone());
            }
        }
        if let Value::Object(o) = &mut v {
            o.remove("Mounts");
            o.insert("Volumes".into(), Value::Object(vols));
            o.insert("VolumesRW".into(), Value::Object(rw));
        }
    }
    v
}

/// `GET /info` below 1.25: `ExecutionDriver`, and `SecurityOptions` as bare names.
pub(crate) fn info(mut v: Value) -> Value {
    if !version_below("1.25") {
        return v;
    }
    let names: Vec<Value> = v["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.as_str())
        .map(|o| {
            let name = o
                .split(',')
                .find_map(|kv| kv.strip_prefix("name="))
                .unwrap_or(o);
            json!(name)
        })
        .collect();
    if let Value::Object(o) = &mut v {
        o.insert("ExecutionDriver".into(), json!("<not supported>"));
        o.insert("SecurityOptions".into(), Value::Array(names));
    }
    v
}

/// A create body from an old client: below 1.40 the IPC mode defaults to `shareable` and
/// `KernelMemoryTCP` (new in 1.40) is ignored, as dockerd 20.10 does, when the body has a
/// `HostConfig` (without one, dockerd's defaults stand).
pub(crate) fn create_request(req: &mut berth_types::CreateRequest, raw: &[u8]) {
    let has_host_config = || {
        serde_json::from_slice::<Value>(raw)
            .is_ok_and(|v| v.get("HostConfig").is_some_and(|h| !h.is_null()))
    };
    // the resources old clients (1.18 and before) put in the config itself count when the
    // HostConfig does not set them (dockerd's decoder merges them, at every version)
    for (top, key) in [
        ("Memory", "Memory"),
        ("MemorySwap", "MemorySwap"),
        ("CpuShares", "CpuShares"),
        ("Cpuset", "CpusetCpus"),
    ] {
        let Some(v) = req.config.extra.remove(top) else {
            continue;
        };
        let set = |v: &Value| !(v.is_null() || v.as_i64() == Some(0) || v.as_str() == Some(""));
        let x = &mut req.host_config.extra;
        if set(&v) && !x.get(key).is_some_and(set) {
            x.insert(key.into(), v);
        }
    }
    // below 1.25 the client removes an AutoRemove container itself
    if version_below("1.25") && has_host_config() {
        req.host_config.auto_remove = false;
    }
    // below 1.41 on a cgroup v1 host, the cgroup namespace defaults to the host's
    if version_below("1.41")
        && has_host_config()
        && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        let x = &mut req.host_config.extra;
        if x.get("CgroupnsMode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            x.insert("CgroupnsMode".into(), json!("host"));
        }
    }
    if version_below("1.40") && has_host_config() {
        let x = &mut req.host_config.extra;
        if x.get("IpcMode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            x.insert("IpcMode".into(), json!("shareable"));
        }
        x.remove("KernelMemoryTCP");
    }
}
