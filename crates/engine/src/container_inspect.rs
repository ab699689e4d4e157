//! `inspect`: docker's full key set, zero values included.

use crate::container::Status;
use crate::timefmt::{format_rfc3339_nanos, from_unix_nanos};
use crate::{Engine, Result};
use berth_types::{overlay, CONFIG_DEFAULTS, HOST_CONFIG_DEFAULTS};
use serde_json::{json, Value};

impl Engine {
    pub fn inspect(&self, name_or_id: &str, size: bool) -> Result<Value> {
        let c = self.get_container(name_or_id)?;
        let rec = c.record();
        let st = &rec.state;
        let dir = self.container_dir(&rec.id);
        let graph = match self.snaps.rw_paths(&rec.id) {
            Ok(p) => json!({
                "Data": {
                    "LowerDir": p.lowers.iter().map(|l| l.to_string_lossy().into_owned()).collect::<Vec<_>>().join(":"),
                    "MergedDir": p.merged, "UpperDir": p.upper, "WorkDir": p.work
                },
                "Name": "overlay2"
            }),
            Err(_) => json!({"Data": null, "Name": "overlay2"}),
        };
        let status = if st.status == Status::Exited && !st.has_started {
            "created"
        } else {
            st.status.as_str()
        };
        let mut config = overlay(CONFIG_DEFAULTS, &serde_json::to_value(&rec.config)?);
        // `StopTimeout` is shown only when it was set (docker's omitempty)
        if let Value::Object(m) = &mut config {
            if m.get("StopTimeout").is_some_and(Value::is_null) {
                m.remove("StopTimeout");
            }
        }
        let host_config = overlay(
            HOST_CONFIG_DEFAULTS,
            &serde_json::to_value(&rec.host_config)?,
        );
        let ids = self.exec_ids(&rec.id);
        let exec_ids = if ids.is_empty() {
            Value::Null
        } else {
            json!(ids)
        };
        let mut v = json!({
            "Id": rec.id,
            "Created": format_rfc3339_nanos(Some(from_unix_nanos(rec.created))),
            "Path": rec.path,
            "Args": rec.args,
            "State": {
                "Status": status,
                "Running": st.status.is_running(),
                "Paused": st.status == Status::Paused,
                "Restarting": st.status == Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": st.status == Status::Dead,
                "Pid": st.pid,
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": format_rfc3339_nanos(st.started()),
                "FinishedAt": format_rfc3339_nanos(st.finished())
            },
            "Image": rec.image_id,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": if rec.host_config.log_config.kind == "none" { Value::String(String::new()) } else { json!(self.log_path(&rec.id)) },
            "Name": format!("/{}", rec.name),
            "RestartCount": rec.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": exec_ids,
            "HostConfig": host_config,
            "GraphDriver": graph,
            "Mounts": crate::container_mounts::listed_mounts(&rec),
            "Config": config,
            "NetworkSettings": self.network_settings(&rec)
        });
        if let Some(h) = &st.health {
            v["State"]["Health"] = json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": h.log.iter().map(|l| json!({
                    "Start": format_rfc3339_nanos(Some(from_unix_nanos(l.start))),
                    "End": format_rfc3339_nanos(Some(from_unix_nanos(l.end))),
                    "ExitCode": l.exit_code,
                    "Output": l.output
                })).collect::<Vec<_>>()
            });
        }
        if size {
            let (rw, rootfs) = self.container_size(&rec.id, &rec.image_id);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
        }
        Ok(v)
    }

    /// (bytes in the RW layer, RW layer + image).
    pub(crate) fn container_size(&self, id: &str, image_id: &str) -> (u64, u64) {
        let rw = self
            .snaps
            .rw_paths(id)
            .map(|p| crate::container_prune::dir_size(&p.upper))
            .unwrap_or(0);
        let image = self
            .images
            .get(image_id)
            .map(|i| self.image_size(&i))
            .unwrap_or(0);
        (rw, rw + image)
    }
}
