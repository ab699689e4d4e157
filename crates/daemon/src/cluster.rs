//! `--cluster-store` / `--cluster-advertise`: joining hosts through etcd (issue 14).

use crate::Args;
use anyhow::{anyhow, bail, Result};
use berth_cluster::agent::{self, JoinConfig, Joined};

/// Joins the cluster when the store is an etcd one; `None` without a store. Other stores
/// (docker 20.10 took consul:// and zk://) are accepted and stay inert, as before.
pub async fn join(args: &Args) -> Result<Option<Joined>> {
    let Some(store) = args.cluster_store.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if !store.starts_with("etcd://") {
        tracing::warn!(
            store,
            "only etcd:// cluster stores join hosts; this one is ignored"
        );
        return Ok(None);
    }
    let Some(advertise) = args.cluster_advertise.as_deref().filter(|s| !s.is_empty()) else {
        bail!("--cluster-store needs --cluster-advertise (an address or interface of this host)");
    };
    // an advertise value may carry a port (`IP:2376`, docker's form): the host part counts
    let advertise = advertise
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(advertise);
    let j = agent::join(&JoinConfig {
        store: store.to_string(),
        advertise: advertise.to_string(),
        ttl: args.cluster_lease_ttl,
        host_id: host_id(&args.data_root)?,
        prefer: std::fs::read_to_string(last_subnet(&args.data_root))
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
    .await
    .map_err(|e| anyhow!("joining the cluster at {store}: {e}"))?;
    berth_util::fs::write_atomic(
        &last_subnet(&args.data_root),
        format!("{}\n", j.subnet).as_bytes(),
    )?;
    Ok(Some(j))
}

/// This daemon's cluster identity: random, made once, kept in `<data-root>/cluster/host-id`.
fn host_id(data_root: &std::path::Path) -> Result<String> {
    let dir = data_root.join("cluster");
    let path = dir.join("host-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s.to_string());
        }
    }
    let mut b = [0u8; 16];
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    std::fs::create_dir_all(&dir)?;
    berth_util::fs::write_atomic(&path, format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// `<data-root>/cluster/subnet`: the subnet this host leased last (asked for again at start).
fn last_subnet(data_root: &std::path::Path) -> std::path::PathBuf {
    data_root.join("cluster/subnet")
}
