//! Multi-host networking (issue 14) on a cluster of network namespaces: see
//! tests/common/cluster.rs for the harness.

mod common;

use common::cluster::{netns_left, Cluster, ETCD_IP};
use common::{stderr, stdout};

/// The harness itself: hosts reach each other and etcd over the LAN, a daemon runs a
/// container inside its host namespace, and everything is gone after Drop.
#[test]
fn harness_lan_etcd_and_cleanup() {
    let tag;
    let roots;
    {
        let mut c = Cluster::new(2);
        tag = c.tag.clone();
        roots = c.hosts.iter().map(|h| h.root.clone()).collect::<Vec<_>>();
        let o = c.hosts[0].run(&["busybox", "ping", "-c1", "-W2", &c.hosts[1].ip]);
        assert!(o.status.success(), "host ping: {}", stdout(&o));
        let o = c.hosts[1].run(&["busybox", "ping", "-c1", "-W2", ETCD_IP]);
        assert!(o.status.success(), "etcd ping: {}", stdout(&o));
        let o = c.etcdctl(&["put", "/t/k", "v"]);
        assert!(o.status.success(), "etcdctl put: {}", stderr(&o));
        let o = c.etcdctl(&["get", "--print-value-only", "/t/k"]);
        assert_eq!(stdout(&o).trim(), "v");

        c.start_all(&[]);
        let d = c.hosts[0].d();
        d.load_busybox();
        // the daemon's bridge is in the host namespace, not in the caller's
        let br = common::bridge_name(&c.hosts[0].root);
        assert!(c.hosts[0].ip(&["link", "show", &br]).contains(&br));
        let o = d.berth(&["run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"]);
        assert!(o.status.success(), "run: {}", stderr(&o));
        assert!(stdout(&o).contains("172."), "{}", stdout(&o));
    }
    assert!(netns_left(&tag).is_empty(), "{:?}", netns_left(&tag));
    for r in roots {
        assert!(!r.exists(), "{} left", r.display());
    }
}
