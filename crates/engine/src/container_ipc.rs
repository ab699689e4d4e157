//! `HostConfig.IpcMode`: `private`/`shareable` (a namespace and a /dev/shm of its own, the
//! default), `host`, `none` (no /dev/shm), or `container:<name|id>` (the IPC namespace and
//! /dev/shm of another running container that was created `shareable`).

use crate::container::Record;
use crate::{Engine, Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq)]
pub(crate) enum IpcJoin {
    /// nothing to change in the spec
    Own,
    /// /dev/shm is a tmpfs the daemon mounted at `shm` (under the run dir), so that other
    /// containers can be given the same one (a mount in another mount namespace cannot be
    /// bind-mounted from outside)
    Shareable { shm: String },
    /// `/proc/<pid>/ns/ipc` of the donor's init and the donor's shm tmpfs
    Join { ns: String, shm: String },
}

/// The daemon-side /dev/shm of a shareable container.
pub(crate) fn shm_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("shm")
}

/// Unmounts a shareable container's /dev/shm (on exit, before its run dir goes).
pub(crate) fn release(run_dir: &Path) {
    let shm = shm_dir(run_dir);
    if shm.exists() {
        let _ = nix::mount::umount2(&shm, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&shm);
    }
}

impl Engine {
    /// What the container's IPC mode asks of the spec: a shareable container's /dev/shm is
    /// mounted here; a joiner's donor must be running and shareable.
    pub(crate) fn ipc_prepare(&self, rec: &Record, run_dir: &Path) -> Result<IpcJoin> {
        let hc = &rec.host_config;
        let mode = hc
            .extra
            .get("IpcMode")
            .and_then(Value::as_str)
            .unwrap_or("");
        if mode == "shareable" {
            let shm = shm_dir(run_dir);
            release(run_dir);
            std::fs::create_dir_all(&shm)?;
            let size = match hc.extra.get("ShmSize").and_then(Value::as_i64) {
                Some(n) if n > 0 => n,
                _ => 64 * 1024 * 1024,
            };
            use nix::mount::MsFlags;
            nix::mount::mount(
                Some("shm"),
                &shm,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(format!("mode=1777,size={size}").as_str()),
            )
            .map_err(|e| Error::Internal(format!("mount shm {}: {e}", shm.display())))?;
            return Ok(IpcJoin::Shareable {
                shm: shm.to_string_lossy().into_owned(),
            });
        }
        let Some(other) = mode.strip_prefix("container:") else {
            return Ok(IpcJoin::Own);
        };
        let o = self.get_container(other)?;
        let st = o.state();
        if !st.status.is_running() || st.pid <= 0 {
            return Err(Error::Conflict(format!(
                "cannot join IPC of a non running container: {}",
                o.id
            )));
        }
        let donor_mode = o
            .record()
            .host_config
            .extra
            .get("IpcMode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let shm = shm_dir(&self.run_dir(&o.id));
        if donor_mode != "shareable" || !shm.is_dir() {
            return Err(Error::Conflict(format!(
                "cannot join IPC of container {}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                o.id
            )));
        }
        Ok(IpcJoin::Join {
            ns: format!("/proc/{}/ns/ipc", st.pid),
            shm: shm.to_string_lossy().into_owned(),
        })
    }
}

/// Points the spec's IPC namespace and /dev/shm where `join` says.
pub(crate) fn apply(spec: &mut Value, join: &IpcJoin) {
    let shm = match join {
        IpcJoin::Own => return,
        IpcJoin::Shareable { shm } => shm,
        IpcJoin::Join { ns, shm } => {
            if let Some(list) = spec
                .pointer_mut("/linux/namespaces")
                .and_then(Value::as_array_mut)
            {
                list.retain(|n| n["type"] != "ipc");
                list.push(json!({"type": "ipc", "path": ns}));
            }
            shm
        }
    };
    if let Some(mounts) = spec.pointer_mut("/mounts").and_then(Value::as_array_mut) {
        let at = mounts
            .iter()
            .position(|m| m["destination"] == "/dev/shm")
            .unwrap_or(mounts.len());
        mounts.retain(|m| m["destination"] != "/dev/shm");
        mounts.insert(
            at.min(mounts.len()),
            json!({"destination": "/dev/shm", "type": "bind", "source": shm, "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"]}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_rewrites_namespace_and_shm() {
        let mut s = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}]},
            "mounts": [{"destination": "/dev/mqueue"}, {"destination": "/dev/shm", "type": "tmpfs"}]});
        apply(&mut s, &IpcJoin::Own);
        assert_eq!(s["mounts"][1]["type"], "tmpfs");
        apply(
            &mut s,
            &IpcJoin::Join {
                ns: "/proc/9/ns/ipc".into(),
                shm: "/run/x/shm".into(),
            },
        );
        assert_eq!(s["linux"]["namespaces"][1]["path"], "/proc/9/ns/ipc");
        assert_eq!(s["mounts"][1]["source"], "/run/x/shm");
        assert_eq!(s["mounts"].as_array().unwrap().len(), 2);
    }
}
