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
    })
    .await
    .map_err(|e| anyhow!("joining the cluster at {store}: {e}"))?;
    Ok(Some(j))
}
