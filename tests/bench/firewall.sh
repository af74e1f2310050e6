#!/usr/bin/env bash
# The firewall-rule snapshot on the target host, in a namespace this script creates and removes:
# 1,000 nftables rules (`tcp dport N counter drop` for 1,000 other ports) in an `inet filter
# input` chain, then the rule that matters last: port 81 rejected with a TCP reset, port 82
# dropped. The agent runs inside the namespace and checks the namespace's own address:
#  1. the rule probe's own time (two listings around one SYN: the `firewall_rule` finding's
#     elapsed_us), for the REJECT and the DROP;
#  2. the check's wall time for the REJECT (`check 10.0.9.2:81`) with the snapshot and without
#     it (the same check with CAP_NET_ADMIN removed: the finding then only says what it needs).
#     Goal: under 20 ms added. Once from the CLI (a fresh process lists the rules beside its
#     connects) and once through an agent serving in the namespace (it keeps the listing while
#     the ruleset's generation stays the same: the deployed case).
# RUNS runs each; medians. Traffic stays inside the namespace. Needs root, nft and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${BINARY:-target/release/whyrefused}
[ -x "$binary" ] || cargo build --release -p whyrefused --quiet
runs=${RUNS:-15}
rules=${RULES:-1000}

ns="wrfw$$"
agents=()
cleanup() {
  for pid in "${agents[@]}"; do kill "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" sh -c 'ip link set lo up && ip addr add 10.0.9.2/24 dev lo'
{
  echo "table inet filter {"
  echo "  chain input {"
  echo "    type filter hook input priority 0; policy accept;"
  for ((i = 0; i < rules; i++)); do echo "    tcp dport $((20000 + i)) counter drop"; done
  echo "    tcp dport 81 counter reject with tcp reset"
  echo "    tcp dport 82 counter drop"
  echo "  }"
  echo "}"
} | ip netns exec "$ns" nft -f -
echo "rules loaded: $(ip netns exec "$ns" nft -a list ruleset | grep -c handle) (chains and rules)"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

probe_time() { # probe_time PORT: the firewall_rule finding's elapsed_us, one run per line
  for ((r = 0; r < runs; r++)); do
    ip netns exec "$ns" "$binary" check "10.0.9.2:$1" --json --timeout-ms 300 --no-trace \
      | python3 -c 'import json, sys
r = json.load(sys.stdin)
f = [f for f in r["findings"] if f["probe"] == "firewall_rule"][0]
assert f.get("exact"), f
print(f["elapsed_us"])'
  done
}

wall_ms() { # wall_ms CMD...: wall time in ms, one run per line
  for ((r = 0; r < runs; r++)); do
    start=$(date +%s%N)
    "$@" >/dev/null || true
    echo $(( ($(date +%s%N) - start) / 1000 ))
  done | median | awk '{ printf "%.1f", $1 / 1000 }'
}

echo "rule probe, REJECT (port 81): median $(probe_time 81 | median) us over $runs runs"
echo "rule probe, DROP (port 82): median $(probe_time 82 | median) us over $runs runs"
with=$(wall_ms ip netns exec "$ns" "$binary" check 10.0.9.2:81 --no-trace)
without=$(wall_ms ip netns exec "$ns" setpriv --bounding-set=-net_admin -- "$binary" check 10.0.9.2:81 --no-trace)
echo "check 10.0.9.2:81 wall time: median $with ms with the snapshot, $without ms without (CAP_NET_ADMIN removed)"

# The deployed case: two agents in the namespace, one without CAP_NET_ADMIN.
ip netns exec "$ns" "$binary" serve --listen 127.0.0.1:7801 >/dev/null 2>&1 &
agents+=($!)
ip netns exec "$ns" setpriv --bounding-set=-net_admin -- "$binary" serve --listen 127.0.0.1:7802 >/dev/null 2>&1 &
agents+=($!)
for port in 7801 7802; do
  for _ in $(seq 100); do ip netns exec "$ns" ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.05; done
  ip netns exec "$ns" "$binary" check 10.0.9.2:81 --no-trace --via "ws://127.0.0.1:$port" >/dev/null || true
done
with=$(wall_ms ip netns exec "$ns" "$binary" check 10.0.9.2:81 --no-trace --via ws://127.0.0.1:7801)
without=$(wall_ms ip netns exec "$ns" "$binary" check 10.0.9.2:81 --no-trace --via ws://127.0.0.1:7802)
echo "check 10.0.9.2:81 through an agent in the namespace: median $with ms with the snapshot, $without ms without"
