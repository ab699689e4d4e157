#!/usr/bin/env bash
# bench/cluster.sh: two berthd hosts joined through etcd (network namespaces, see
# crates/daemon/tests/common/cluster.rs); ping latency and TCP throughput between containers
# on two hosts (VXLAN, flannel.1) vs on one host (bridge); name resolution across hosts on an
# overlay network. Needs root and etcd-server.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v iperf3 >/dev/null || apt-get install -y -qq iperf3 >/dev/null
CARGO_INCREMENTAL=0 cargo build --workspace --bins
CARGO_INCREMENTAL=0 cargo test -p berthd --test cluster -- --ignored --nocapture \
    bench_cross_host_vs_same_host 2>&1 | grep -E "ping avg|VXLAN cost|test result"
# an overlay network: from `run` on host A until host B resolves the new name
CARGO_INCREMENTAL=0 cargo test -p berthd --test cluster -- --ignored --nocapture \
    bench_overlay_name_resolution 2>&1 | grep -E "name resolution|test result"
# scale: simulated hosts as etcd clients (BERTH_SIM_HOSTS, default 50)
CARGO_INCREMENTAL=0 cargo test -p berth-cluster --test etcd -- --ignored --nocapture \
    simulated_cluster_scale 2>&1 | grep -E "hosts: joined|test result"
