#!/usr/bin/env bash
# bench/vxlan-floor.sh — what VXLAN costs on this machine with no container engine at all: the
# topology of bench/cluster.sh (and of tests/cluster.rs) built by hand with iproute2, so that
# berth's cross-host figure can be read against the kernel's own floor.
#   a LAN namespace with a bridge; two "hosts" (namespaces) on it by veths; on each host a
#   bridge for its containers (its own /24, MTU lowered by the VXLAN overhead as flannel does)
#   and a flannel-style VXLAN device (VNI 1, port 8472, no learning, neighbour and FDB entry
#   for the other host); "containers" are namespaces with a veth on their host's bridge.
# iperf3 from a container on the same host and from one on the other host to a server
# container; RUNS rounds (default 3) of 3 s each, interleaved; medians in Mbit/s and the ratio.
# Traffic stays inside the namespaces it creates; all of them are deleted at the end.
set -euo pipefail
RUNS=${RUNS:-3}
for t in iperf3 busybox; do command -v $t >/dev/null || { echo "needs $t (apt-get install $t)" >&2; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
p=vf$$
nss=("$p-lan" "$p-a" "$p-b" "$p-srv" "$p-near" "$p-far")
cleanup() { for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT
for n in "${nss[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "$p-lan" link add lan0 type bridge
ip -n "$p-lan" link set lan0 up
i=1
for h in a b; do
  ip link add "$p-$h-l" type veth peer name eth0 netns "$p-$h"
  ip link set "$p-$h-l" netns "$p-lan"
  ip -n "$p-lan" link set "$p-$h-l" master lan0 up
  ip -n "$p-$h" addr add "192.168.77.$i/24" dev eth0
  ip -n "$p-$h" link set eth0 up
  ip netns exec "$p-$h" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$p-$h" link add cbr0 type bridge
  ip -n "$p-$h" link set cbr0 mtu 1450
  ip -n "$p-$h" addr add "10.77.$i.1/24" dev cbr0
  ip -n "$p-$h" link set cbr0 up
  ip -n "$p-$h" link add fl type vxlan id 1 local "192.168.77.$i" dev eth0 dstport 8472 nolearning
  ip -n "$p-$h" link set fl mtu 1450 up
  ip -n "$p-$h" addr add "10.77.$i.0/32" dev fl
  i=$((i + 1))
done
mac() { ip -n "$1" -o link show fl | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
ma=$(mac "$p-a"); mb=$(mac "$p-b")
# each host: the other's subnet through the VXLAN, its VTEP's MAC and address
ip -n "$p-a" route add 10.77.2.0/24 via 10.77.2.0 dev fl onlink
ip -n "$p-a" neigh add 10.77.2.0 lladdr "$mb" dev fl nud permanent
bridge -n "$p-a" fdb add "$mb" dev fl dst 192.168.77.2
ip -n "$p-b" route add 10.77.1.0/24 via 10.77.1.0 dev fl onlink
ip -n "$p-b" neigh add 10.77.1.0 lladdr "$ma" dev fl nud permanent
bridge -n "$p-b" fdb add "$ma" dev fl dst 192.168.77.1
ctr() { # NAME HOST ADDR GATEWAY
  ip link add "$p-$1" type veth peer name eth0 netns "$p-$1"
  ip link set "$p-$1" netns "$p-$2"
  ip -n "$p-$2" link set "$p-$1" mtu 1450 master cbr0 up
  ip -n "$p-$1" link set eth0 mtu 1450 up
  ip -n "$p-$1" addr add "$3/24" dev eth0
  ip -n "$p-$1" route add default via "$4"
}
ctr srv a 10.77.1.2 10.77.1.1
ctr near a 10.77.1.3 10.77.1.1
ctr far b 10.77.2.2 10.77.2.1
ip netns exec "$p-near" busybox ping -c 1 -W 2 10.77.1.2 >/dev/null
ip netns exec "$p-far" busybox ping -c 1 -W 2 10.77.1.2 >/dev/null || { echo "cross-host ping failed" >&2; exit 1; }
rate() { # CLIENT-NS -> Mbit/s received
  ip netns exec "$p-srv" iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  ip netns exec "$p-$1" iperf3 -c 10.77.1.2 -p 5299 -t 3 -J |
    python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'
  wait "$srv" || true
}
same=(); cross=()
for ((r = 0; r < RUNS; r++)); do
  same+=("$(rate near)")
  cross+=("$(rate far)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
s=$(median "${same[@]}"); c=$(median "${cross[@]}")
echo "same host:  ${same[*]} Mbit/s (median $s)"
echo "cross host: ${cross[*]} Mbit/s (median $c)"
awk -v s="$s" -v c="$c" 'BEGIN { printf "VXLAN floor: %.1f%% throughput\n", (c - s) / s * 100 }'
