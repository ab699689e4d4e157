//! `berthd --userns-remap`: what the engine adds when the daemon remaps containers' ids.
//! Inactive (never called) without the flag.
//!
//! - create refuses what docker refuses with a private user namespace (privileged, host
//!   network, host pid), unless the container opts out with `--userns host`;
//! - start puts a `user` namespace with the daemon's uid/gid maps into the spec, and gives the
//!   container's own files (hostname, hosts, resolv.conf) to its root;
//! - at open, the directories on the way to a container's rootfs and mount sources are
//!   made traversable (group x) by the remapped root's group only.

use crate::{Error, Result};
use berth_types::HostConfig;
use berth_util::idmap::{IdMaps, IdRange};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn hc_str<'a>(hc: &'a HostConfig, k: &str) -> &'a str {
    hc.extra.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `--userns host` on this container.
pub(crate) fn opted_out(hc: &HostConfig) -> bool {
    hc_str(hc, "UsernsMode") == "host"
}

/// docker's checks at create for a remapped daemon (`verifyPlatformContainerSettings`).
pub(crate) fn check_create(hc: &HostConfig) -> Result<()> {
    if opted_out(hc) {
        return Ok(());
    }
    let privileged = hc.extra.get("Privileged").and_then(Value::as_bool) == Some(true);
    if privileged {
        return Err(Error::InvalidParameter(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into(),
        ));
    }
    if hc.network_mode == "host" {
        return Err(Error::InvalidParameter(
            "cannot share the host's network namespace when user namespaces are enabled".into(),
        ));
    }
    if hc_str(hc, "PidMode") == "host" {
        return Err(Error::InvalidParameter(
            "cannot share the host PID namespace when user namespaces are enabled".into(),
        ));
    }
    Ok(())
}

fn ranges(r: &[IdRange]) -> Value {
    r.iter()
        .map(|r| json!({"containerID": r.container, "hostID": r.host, "size": r.size}))
        .collect()
}

/// The process whose namespaces the spec joins (`/proc/<pid>/ns/…`: another container's).
fn joined_pid(spec: &Value) -> Option<String> {
    spec["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find_map(|n| {
            let p = n["path"].as_str()?.strip_prefix("/proc/")?;
            let (pid, rest) = p.split_once('/')?;
            (rest.starts_with("ns/") && pid.bytes().all(|b| b.is_ascii_digit()))
                .then(|| pid.to_string())
        })
}

/// Adds the user namespace and its maps to a built spec. A container that shares another's
/// network, ipc or pid namespace shares its user namespace too (docker's rule: only a
/// namespace's own user namespace has the capabilities to use it).
pub(crate) fn apply(spec: &mut Value, ids: &IdMaps) {
    let joined = joined_pid(spec);
    let linux = &mut spec["linux"];
    // the default ping range names every gid; in a user namespace the kernel takes only gids
    // mapped there: the range shrinks to the gids the container has
    const PING: &str = "net.ipv4.ping_group_range";
    if linux["sysctl"][PING] == json!("0 2147483647") {
        let top = ids
            .gids
            .iter()
            .find(|r| r.container == 0 && r.size > 0)
            .map(|r| r.size - 1);
        if let Some(m) = linux["sysctl"].as_object_mut() {
            match top {
                Some(top) => m.insert(PING.into(), json!(format!("0 {top}"))),
                None => m.remove(PING),
            };
        }
    }
    if let Some(pid) = joined {
        if let Some(ns) = linux["namespaces"].as_array_mut() {
            ns.push(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
        }
        return;
    }
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = ranges(&ids.uids);
    linux["gidMappings"] = ranges(&ids.gids);
}

/// The files the engine bind-mounts into the container belong to its root (docker's rule),
/// so that root inside may edit /etc/hosts as without remapping.
pub(crate) fn own_container_files(dir: &Path, ids: &IdMaps) {
    let (uid, gid) = ids.root();
    for f in ["hostname", "hosts", "resolv.conf"] {
        let p = dir.join(f);
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.is_file() => {
                if let Err(e) = std::os::unix::fs::chown(&p, Some(uid), Some(gid)) {
                    tracing::warn!(path = %p.display(), "chown to the remapped root: {e}");
                }
            }
            _ => {}
        }
    }
}

/// The remapped root must reach its rootfs (`overlay2/<id>/merged`), its own files
/// (`containers/<id>/…`) and volumes (`volumes/<name>/_data`) by path while it sets up the
/// container: those directories get the remapped root's group with search permission (and
/// nothing for others), as docker's `<uid>.<gid>` tree has.
pub(crate) fn open_paths(data_root: &Path, ids: &IdMaps) -> Result<()> {
    let (_, gid) = ids.root();
    for d in [
        data_root.to_path_buf(),
        data_root.join("containers"),
        data_root.join("overlay2"),
        data_root.join("volumes"),
    ] {
        std::fs::create_dir_all(&d)?;
        std::os::unix::fs::chown(&d, Some(0), Some(gid))?;
        let mode = std::fs::metadata(&d)?.permissions().mode() & 0o7777;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode | 0o010))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(berth_types::overlay(berth_types::HOST_CONFIG_DEFAULTS, &v)).unwrap()
    }

    #[test]
    fn create_checks_as_docker() {
        assert!(check_create(&hc(json!({}))).is_ok());
        let e = check_create(&hc(json!({"Privileged": true}))).unwrap_err();
        assert!(e.to_string().starts_with("privileged mode is incompatible"));
        let e = check_create(&hc(json!({"NetworkMode": "host"}))).unwrap_err();
        assert!(e.to_string().contains("host's network namespace"));
        let e = check_create(&hc(json!({"PidMode": "host"}))).unwrap_err();
        assert!(e.to_string().contains("host PID namespace"));
        assert!(check_create(&hc(json!({"Privileged": true, "UsernsMode": "host"}))).is_ok());
        assert!(check_create(&hc(json!({"NetworkMode": "host", "UsernsMode": "host"}))).is_ok());
    }

    #[test]
    fn spec_gets_namespace_and_maps() {
        let ids = IdMaps::from_host_ranges(&[(100000, 65536)], &[(200000, 1000), (300000, 10)]);
        let mut spec = json!({"linux": {"namespaces": [{"type": "pid"}]}});
        apply(&mut spec, &ids);
        assert_eq!(spec["linux"]["namespaces"][1], json!({"type": "user"}));
        assert_eq!(
            spec["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(
            spec["linux"]["gidMappings"][1],
            json!({"containerID": 1000, "hostID": 300000, "size": 10})
        );
        // sharing another container's network namespace: its user namespace too
        let mut spec = json!({"linux": {"namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/proc/4242/ns/net"}
        ]}});
        apply(&mut spec, &ids);
        assert_eq!(
            spec["linux"]["namespaces"][2],
            json!({"type": "user", "path": "/proc/4242/ns/user"})
        );
        assert!(spec["linux"].get("uidMappings").is_none());
    }

    #[test]
    fn default_ping_range_shrinks_to_the_mapped_gids() {
        let ids = IdMaps::from_host_ranges(&[(100000, 65536)], &[(100000, 65536)]);
        let mut spec = json!({"linux": {"namespaces": [], "sysctl": {
            "net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"
        }}});
        apply(&mut spec, &ids);
        assert_eq!(
            spec["linux"]["sysctl"]["net.ipv4.ping_group_range"],
            "0 65535"
        );
        assert_eq!(
            spec["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"],
            "0"
        );
        // one the user set stays as set
        let mut spec = json!({"linux": {"namespaces": [], "sysctl": {
            "net.ipv4.ping_group_range": "0 10"
        }}});
        apply(&mut spec, &ids);
        assert_eq!(spec["linux"]["sysctl"]["net.ipv4.ping_group_range"], "0 10");
    }
}
