#!/usr/bin/env bash
# Runs the Kubernetes CRI conformance suite (critest, cri-tools v1.26.1) against a private
# berthd: its own roots and sockets, its own CNI bridge and range, and a loopback
# docker-registry serving the images critest pulls (../shared/tools/cri-tools/testimages),
# mirrored for gcr.io, registry.k8s.io, k8s.gcr.io and docker.io. Cleans up after itself.
#
#   scripts/critest.sh [critest flags…]      e.g. --ginkgo.focus 'PodSandbox' --ginkgo.v
#
# Needs root, target/debug/{berthd,berth-shim,berth-pause,berth} (cargo build --workspace
# --bins), docker-registry, containernetworking-plugins (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shared/ sits beside the clone (one level further up for a git worktree under wt/)
tools=${CRI_TOOLS:-}
for t in "$repo/../shared/tools/cri-tools" "$repo/../../shared/tools/cri-tools"; do
    [ -z "$tools" ] && [ -d "$t" ] && tools=$t
done
[ -n "$tools" ] || { echo "no cri-tools: set CRI_TOOLS" >&2; exit 1; }
bin=$repo/.tools
[ -x "$bin/critest" ] && [ -x "$bin/crictl" ] || "$tools/install.sh" "$bin" >/dev/null
target=${BERTH_BIN_DIR:-$repo/target/debug}

# short: a shim socket path under it must fit in 108 bytes
work=$(mktemp -d /tmp/bcXXXXXX)
tag=${work#/tmp/bc}
tag=$(printf '%s' "$tag" | tr -dc 'a-zA-Z0-9' | cut -c1-8)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cni_bridge=bcr$tag
engine_bridge=bce$tag
berthd_pid= reg_pid=

cleanup() {
    set +e
    if [ -S "$work/run/cri.sock" ]; then
        "$bin/crictl" --runtime-endpoint "unix://$work/run/cri.sock" rmp -a -f >/dev/null 2>&1
    fi
    for f in "$work"/data/cri/pods/*.json; do
        [ -f "$f" ] || continue
        pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f")
        [ "$pid" -gt 0 ] 2>/dev/null && [ "$(cat /proc/$pid/comm 2>/dev/null)" = berth-pause ] && kill -9 "$pid"
    done
    [ -n "$berthd_pid" ] && kill "$berthd_pid" && wait "$berthd_pid" 2>/dev/null
    for pid in $(pgrep -f "berth-(shim|pause).*$work"); do kill -9 "$pid"; done
    [ -n "$reg_pid" ] && kill "$reg_pid" && wait "$reg_pid" 2>/dev/null
    sleep 0.2
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    ip link del "$cni_bridge" 2>/dev/null
    ip link del "$engine_bridge" 2>/dev/null
    nft delete table ip "berth_$engine_bridge" 2>/dev/null
    nft delete table ip6 "berth_$engine_bridge" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/reg" "$work/net.d"
cat > "$work/reg/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/reg/data
http:
  addr: $reg
YML
/usr/bin/docker-registry serve "$work/reg/config.yml" >"$work/reg/log" 2>&1 &
reg_pid=$!

cat > "$work/net.d/10-critest.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "critest$tag", "plugins": [
  {"type": "bridge", "bridge": "$cni_bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$work/ipam",
            "ranges": [[{"subnet": "10.88.${CRITEST_SUBNET:-77}.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
echo '{}' > "$work/daemon.json"
mirrors=()
for d in gcr.io registry.k8s.io k8s.gcr.io docker.io; do
    # the loopback registry in the domain's place: nothing is ever asked of the real one
    mirrors+=(--registry-host-server "$d=http://$reg")
done
"$target/berthd" --data-root "$work/data" --exec-root "$work/run" -H "unix://$work/run/berth.sock" \
    --pidfile "$work/berthd.pid" --bridge "$engine_bridge" --dns 127.0.0.1 \
    --config-file "$work/daemon.json" --cni-conf-dir "$work/net.d" --cni-bin-dir /usr/lib/cni \
    "${mirrors[@]}" --log-level "${BERTHD_LOG_LEVEL:-info}" >"$work/berthd.log" 2>&1 &
berthd_pid=$!
for _ in $(seq 100); do
    [ -S "$work/run/cri.sock" ] && break
    sleep 0.1
done
berth() { "$target/berth" -H "unix://$work/run/berth.sock" "$@"; }

# the test images, as critest names them, on the loopback registry (path without the host)
tar -C "$tools/testimages" -cf "$work/images.tar" .
berth load -i "$work/images.tar" >/dev/null
while IFS=$'\t' read -r ref _; do
    [ -n "$ref" ] || continue
    dest=$reg/${ref#*/}
    berth tag "$ref" "$dest"
    berth push "$dest" >/dev/null
    berth rmi "$dest" "$ref" >/dev/null
done < "$tools/testimages/images.tsv"
[ -z "$(berth images -q)" ] || { echo "images left after the push" >&2; exit 1; }

ep=unix://$work/run/cri.sock
set +e
"$bin/critest" --runtime-endpoint "$ep" --image-endpoint "$ep" "$@"
rc=$?
if [ -n "${CRITEST_KEEP_LOG:-}" ]; then cp "$work/berthd.log" "$CRITEST_KEEP_LOG"; fi
exit $rc
