#!/usr/bin/env bash
# Installs the Debian packages berth needs to build, run and test (only what is missing).
set -euo pipefail
need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)   # the registry tests make certificates and sign tokens
command -v dockerd >/dev/null || need+=(docker.io)
python3 -c "import docker" 2>/dev/null || need+=(python3-docker)
command -v cc >/dev/null || need+=(gcc)
command -v tmux >/dev/null || need+=(tmux)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v docker-compose >/dev/null || need+=(docker-compose)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)   # CRI pods' networks
command -v xz >/dev/null || need+=(xz-utils)   # unpacks crictl/critest from ../shared/tools
command -v etcd >/dev/null || need+=(etcd-server)   # the cluster tests' store
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v systemd-analyze >/dev/null || need+=(systemd)   # unit checks, socket activation
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (rustup toolchain)" >&2; exit 1; }
