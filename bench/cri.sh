#!/usr/bin/env bash
# bench/cri.sh — berthd's CRI next to containerd 1.6's CRI plugin (Debian's `containerd`, with
# runc), both driven by the same crictl, with the same CNI plugins (bridge + host-local, a
# bridge and range each) and the same images (cri-tools' test images on one loopback
# docker-registry, which both engines use in place of registry.k8s.io).
#   pod_ms       crictl runp + create + start of a one-container pod (busybox sleep)
#   teardown_ms  crictl stopp + rmp of that pod
#   crictl_floor_ms  three `crictl version` processes: what the three crictl processes of
#                pod_ms cost before any work (the same for both engines)
#   cni_ms       the CNI plugins of one pod run by hand (bridge, which runs host-local, then
#                portmap: ADD as the engines run them, in a scratch network namespace): what
#                both engines spend inside their own part of pod_ms in plugin processes
#   rss_50_kb    the daemon's RSS with 50 pods running (each with one container); also the
#                total RSS of the daemon and every process it runs for them (shims, pause);
#                the daemon's split into anonymous and file-backed pages
# Each time figure is the median of RUNS runs (default 10), the engines interleaved.
# Env: RUNS, PODS (default 50), BERTH_BIN_DIR (default target/dist, else target/release),
#      CRI_TOOLS (default ../shared/tools/cri-tools).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-10}
PODS=${PODS:-50}
bindir=${BERTH_BIN_DIR:-$here/target/dist}
[ -x "$bindir/berthd" ] || bindir=$here/target/release
tools=${CRI_TOOLS:-}
for t in "$here/../shared/tools/cri-tools" "$here/../../shared/tools/cri-tools"; do
  [ -z "$tools" ] && [ -d "$t" ] && tools=$t
done
[ -n "$tools" ] || { echo "no cri-tools: set CRI_TOOLS" >&2; exit 1; }
command -v containerd >/dev/null || { echo "containerd is not installed (apt-get install containerd)" >&2; exit 1; }
[ -x "$here/.tools/crictl" ] || "$tools/install.sh" "$here/.tools" >/dev/null
crictl=$here/.tools/crictl

work=$(mktemp -d /tmp/bcbXXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
pids=()
cleanup() {
  set +e
  for e in berth ctrd; do
    [ -S "$work/$e.sock" ] && "$crictl" -r "unix://$work/$e.sock" rmp -a -f >/dev/null 2>&1
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for p in $(pgrep -f "berth-(shim|pause).*$work"); do kill -9 "$p"; done
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $work"); do kill -9 "$p"; done
  sleep 0.3
  grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
  for b in bcbB bcbC bcbE bcbN; do ip link del "$b" 2>/dev/null; done
  ip netns del bcb-cni 2>/dev/null
  nft delete table ip berth_bcbE 2>/dev/null
  nft delete table ip6 berth_bcbE 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# the registry, and the images on it (pushed by a berthd of this bench)
mkdir -p "$work/reg" "$work/net-berth" "$work/net-ctrd"
cat > "$work/reg/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/reg/data
http:
  addr: $reg
YML
/usr/bin/docker-registry serve "$work/reg/config.yml" >"$work/reg/log" 2>&1 &
pids+=($!)

cni() { # NAME BRIDGE SUBNET-3RD-OCTET
  cat <<JSON
{"cniVersion": "1.0.0", "name": "$1", "plugins": [
  {"type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$work/ipam-$1",
            "ranges": [[{"subnet": "10.89.$3.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
}
cni benchberth bcbB 1 > "$work/net-berth/10-bench.conflist"
cni benchctrd bcbC 2 > "$work/net-ctrd/10-bench.conflist"

echo '{}' > "$work/daemon.json"
mirrors=()
for d in gcr.io registry.k8s.io k8s.gcr.io docker.io; do mirrors+=(--registry-host-server "$d=http://$reg"); done
"$bindir/berthd" --data-root "$work/berth" --exec-root "$work/b" -H "unix://$work/b/api.sock" \
  --cri-socket "$work/berth.sock" --pidfile "$work/berthd.pid" --bridge bcbE --dns 127.0.0.1 \
  --config-file "$work/daemon.json" --cni-conf-dir "$work/net-berth" --cni-bin-dir /usr/lib/cni \
  "${mirrors[@]}" --log-level warn >"$work/berthd.log" 2>&1 &
berthd_pid=$!
pids+=($berthd_pid)
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.1; done
berth() { "$bindir/berth" -H "unix://$work/b/api.sock" "$@"; }
tar -C "$tools/testimages" -cf "$work/images.tar" .
berth load -i "$work/images.tar" >/dev/null
for ref in registry.k8s.io/pause:3.6 registry.k8s.io/e2e-test-images/busybox:1.29-2; do
  dest=$reg/${ref#*/}
  berth tag "$ref" "$dest" && berth push "$dest" >/dev/null && berth rmi "$dest" "$ref" >/dev/null
done
rm -f "$work/images.tar"

# containerd: its own root, state and socket; the registry for registry.k8s.io through
# hosts.toml; runc; oom_score_adj restricted (this VM refuses negative values for root)
mkdir -p "$work/certs.d/registry.k8s.io"
cat > "$work/certs.d/registry.k8s.io/hosts.toml" <<TOML
server = "http://$reg"
[host."http://$reg"]
  capabilities = ["pull", "resolve"]
TOML
cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/ctrd-root"
state = "$work/ctrd-state"
[grpc]
  address = "$work/ctrd.sock"
[ttrpc]
  address = "$work/ctrd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/net-ctrd"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
TOML
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
ctrd_pid=$!
pids+=($ctrd_pid)
for _ in $(seq 100); do [ -S "$work/ctrd.sock" ] && break; sleep 0.1; done

ms() { local t0 t1; t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1 || echo "failed: $*" >&2; t1=${EPOCHREALTIME/./}; awk -v d=$(( t1 - t0 )) 'BEGIN { printf "%.2f\n", d / 1000 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

pod_json() { # NAME
  cat <<JSON
{"metadata": {"name": "$1", "namespace": "bench", "uid": "$1-uid", "attempt": 0},
 "log_directory": "$work/logs/$1", "linux": {}}
JSON
}
ctr_json='{"metadata": {"name": "c"}, "image": {"image": "registry.k8s.io/e2e-test-images/busybox:1.29-2"},
 "command": ["sleep", "3600"], "log_path": "c.log", "linux": {}}'
echo "$ctr_json" > "$work/ctr.json"

declare -A ep=([berth]="unix://$work/berth.sock" [ctrd]="unix://$work/ctrd.sock")
for e in berth ctrd; do
  c=("$crictl" -r "${ep[$e]}" -i "${ep[$e]}" -t 60s)
  "${c[@]}" pull registry.k8s.io/e2e-test-images/busybox:1.29-2 >/dev/null || { echo "$e: pull failed" >&2; exit 1; }
  "${c[@]}" pull registry.k8s.io/pause:3.6 >/dev/null || { echo "$e: pause pull failed" >&2; exit 1; }
done

# one pod: run + create + start, then stop + remove
pod_cycle() { # ENGINE N
  local e=$1 n=$2 c t0 t1 t2 pod ctr
  c=("$crictl" -r "${ep[$e]}" -i "${ep[$e]}" -t 60s)
  mkdir -p "$work/logs/p$e$n"
  pod_json "p$e$n" > "$work/pod-$e.json"
  t0=${EPOCHREALTIME/./}
  pod=$("${c[@]}" runp "$work/pod-$e.json") &&
    ctr=$("${c[@]}" create "$pod" "$work/ctr.json" "$work/pod-$e.json") &&
    "${c[@]}" start "$ctr" >/dev/null || { echo "$e: pod start failed" >&2; return 1; }
  t1=${EPOCHREALTIME/./}
  "${c[@]}" stopp "$pod" >/dev/null && "${c[@]}" rmp "$pod" >/dev/null || { echo "$e: teardown failed" >&2; return 1; }
  t2=${EPOCHREALTIME/./}
  awk -v d=$(( t1 - t0 )) 'BEGIN { printf "%.2f\n", d / 1000 }' >>"$work/$e.pod_ms"
  local f0 f1
  f0=${EPOCHREALTIME/./}
  "${c[@]}" version >/dev/null && "${c[@]}" version >/dev/null && "${c[@]}" version >/dev/null
  f1=${EPOCHREALTIME/./}
  awk -v d=$(( f1 - f0 )) 'BEGIN { printf "%.2f\n", d / 1000 }' >>"$work/$e.floor_ms"
  awk -v d=$(( t2 - t1 )) 'BEGIN { printf "%.2f\n", d / 1000 }' >>"$work/$e.teardown_ms"
}
# the CNI plugins alone: ADD of the chain (each plugin's time, process included), then DEL
cni_conf_b='{"cniVersion": "1.0.0", "name": "benchcni", "type": "bridge", "bridge": "bcbN", "isGateway": true, "ipMasq": false, "ipam": {"type": "host-local", "dataDir": "'$work/ipam-cni'", "ranges": [[{"subnet": "10.89.3.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}'
cni_plugin() { # COMMAND TYPE < input
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$1" CNI_CONTAINERID=benchcni \
    CNI_NETNS=/run/netns/bcb-cni CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "/usr/lib/cni/$2"
}
cni_cycle() {
  local t0 t1 t2 out pm
  ip netns add bcb-cni
  t0=${EPOCHREALTIME/./}
  out=$(cni_plugin ADD bridge <<<"$cni_conf_b") || echo "cni: bridge ADD failed: $out" >&2
  t1=${EPOCHREALTIME/./}
  pm='{"cniVersion": "1.0.0", "name": "benchcni", "type": "portmap", "capabilities": {"portMappings": true}, "prevResult": '$out'}'
  cni_plugin ADD portmap <<<"$pm" >/dev/null || echo "cni: portmap ADD failed" >&2
  t2=${EPOCHREALTIME/./}
  cni_plugin DEL portmap <<<"$pm" >/dev/null
  cni_plugin DEL bridge <<<"$cni_conf_b" >/dev/null
  ip netns del bcb-cni
  awk -v d=$(( t2 - t0 )) 'BEGIN { printf "%.2f\n", d / 1000 }' >>"$work/cni_ms"
}

pod_cycle berth warm && pod_cycle ctrd warm && cni_cycle
for e in berth ctrd; do : >"$work/$e.pod_ms"; : >"$work/$e.teardown_ms"; : >"$work/$e.floor_ms"; done
: >"$work/cni_ms"
# a pause before each cycle: berthd keeps the kernel's cgroup-move lock ready for 500 ms
# after a create or start (berth_runtime::prime_cgroup_move), which is system-wide and would
# also spare containerd's cycle right after it its wait; each cycle starts with it cold
for ((i = 0; i < RUNS; i++)); do
  sleep 0.7; pod_cycle berth "$i" && sleep 0.7 && pod_cycle ctrd "$i" && cni_cycle || exit 1
done

rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# the daemon's RSS split: anonymous (its heap, stacks) and file-backed (its binary's and the
# libraries' pages it has touched)
rss_split() { awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$1/status" 2>/dev/null || echo 0 0; }
# the daemon's RSS, and with every process it runs for the pods: its shims, pause processes
# and the shims' children (the containers' own processes)
rss_total() { # ENGINE DAEMON-PID
  local pat p q
  local -A seen=()
  if [ "$1" = berth ]; then pat="berth-(shim|pause).*$work"; else pat="containerd-shim-runc-v2 .*-address $work"; fi
  for p in $(pgrep -f "$pat"); do
    seen[$p]=1
    for q in $(pgrep -P "$p"); do seen[$q]=1; done
  done
  local sum=$(rss_of "$2")
  for p in "${!seen[@]}"; do sum=$(( sum + $(rss_of "$p") )); done
  echo "$sum"
}
declare -A dpid=([berth]=$berthd_pid [ctrd]=$ctrd_pid)
for e in berth ctrd; do
  c=("$crictl" -r "${ep[$e]}" -i "${ep[$e]}" -t 60s)
  for ((i = 0; i < PODS; i++)); do
    mkdir -p "$work/logs/r$e$i"
    pod_json "r$e$i" > "$work/pod-$e.json"
    pod=$("${c[@]}" runp "$work/pod-$e.json") &&
      ctr=$("${c[@]}" create "$pod" "$work/ctr.json" "$work/pod-$e.json") &&
      "${c[@]}" start "$ctr" >/dev/null || { echo "$e: pod $i failed" >&2; exit 1; }
  done
  sleep 2
  echo "$(rss_of "${dpid[$e]}") $(rss_total "$e" "${dpid[$e]}") $(rss_split "${dpid[$e]}")" >"$work/$e.rss"
  "${c[@]}" rmp -a -f >/dev/null 2>&1
done

printf '%-22s %10s %10s %8s\n' metric berth containerd ratio
row() {
  awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%-22s %10s %10s %8.3f\n", m, a, b, (b > 0 ? a / b : 0) }'
}
row pod_ms "$(median <"$work/berth.pod_ms")" "$(median <"$work/ctrd.pod_ms")"
row teardown_ms "$(median <"$work/berth.teardown_ms")" "$(median <"$work/ctrd.teardown_ms")"
row crictl_floor_ms "$(median <"$work/berth.floor_ms")" "$(median <"$work/ctrd.floor_ms")"
# the engines' own part: the pod figure less the crictl processes
paste -d' ' "$work/berth.pod_ms" "$work/berth.floor_ms" | awk '{ print $1 - $2 }' >"$work/berth.net"
paste -d' ' "$work/ctrd.pod_ms" "$work/ctrd.floor_ms" | awk '{ print $1 - $2 }' >"$work/ctrd.net"
row pod_less_crictl_ms "$(median <"$work/berth.net")" "$(median <"$work/ctrd.net")"
cni=$(median <"$work/cni_ms")
row cni_ms "$cni" "$cni"
# and less the CNI plugins' processes too: what each engine's own code costs
row pod_less_crictl_cni_ms "$(median <"$work/berth.net" | awk -v c="$cni" '{ print $1 - c }')" \
  "$(median <"$work/ctrd.net" | awk -v c="$cni" '{ print $1 - c }')"
read -r bd bt ba bf <"$work/berth.rss"
read -r cd ct ca cf <"$work/ctrd.rss"
row "rss_${PODS}_daemon_kb" "$bd" "$cd"
row "  of_which_anon_kb" "$ba" "$ca"
row "  of_which_file_kb" "$bf" "$cf"
row "rss_${PODS}_total_kb" "$bt" "$ct"
