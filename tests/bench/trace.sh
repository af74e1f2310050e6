#!/usr/bin/env bash
# Path trace benchmark, in a namespace lab this script creates and removes: a client, two
# routers in a row and a far server (port 80 open; port 81 dropped in the first router's
# FORWARD chain).
#  1. `whyrefused trace 10.0.3.2:80` (3 hops): the trace's own time and the process's wall time;
#  2. a filtered check (`check 10.0.3.2:81 --timeout-ms 1000`) with the trace (the default)
#     and without (`--no-trace`): the check's own time. Goal: no later than the connect timeout
#     plus 100 ms, trace included.
# RUNS runs each; medians. Traffic stays inside the namespaces. Needs root and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${BINARY:-target/release/whyrefused}
[ -x "$binary" ] || cargo build --release -p whyrefused --quiet
runs=${RUNS:-15}

prefix="wrtrace$$"
names=(client r1 r2 server)
source tests/bench/netns.sh
link client c0 10.0.1.1/24 r1 r1w 10.0.1.254/24
link r1 r1e 10.0.2.1/24 r2 r2w 10.0.2.254/24
link r2 r2e 10.0.3.254/24 server s0 10.0.3.2/24
on client ip route add default via 10.0.1.254
on r1 sh -c 'sysctl -qw net.ipv4.ip_forward=1 && ip route add 10.0.3.0/24 via 10.0.2.254'
on r2 sh -c 'sysctl -qw net.ipv4.ip_forward=1 && ip route add 10.0.1.0/24 via 10.0.2.1'
on server ip route add default via 10.0.3.254
on r1 iptables -A FORWARD -p tcp --dport 81 -j DROP
ip netns exec "$prefix-server" python3 -c '
import socket
s = socket.socket(); s.bind(("10.0.3.2", 80)); s.listen(64)
while True: s.accept()[0].close()' &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; cleanup' EXIT
until on server ss -Hltn 'sport = :80' | grep -q .; do sleep 0.05; done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== whyrefused trace 10.0.3.2:80 (3 hops, reverse DNS off), $runs runs"
: >"/tmp/$prefix.trace"; : >"/tmp/$prefix.wall"
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  on client "$binary" trace 10.0.3.2:80 --json --no-rdns |
    field 'd["path"]["elapsed_us"] / 1000 if d["path"]["reached"] and len(d["path"]["hops"]) == 3 else "wrong path"' >>"/tmp/$prefix.trace"
  echo $(( ($(date +%s%N) - start) / 1000000 )) >>"/tmp/$prefix.wall"
  sleep 1 # the routers' ICMP rate limit (a burst of 6, then 1 a second) refills
done
echo "trace: median $(median <"/tmp/$prefix.trace") ms; wall time with ip netns exec and process start, median $(median <"/tmp/$prefix.wall") ms"

for mode in trace-check no-trace; do
  extra=(); [ "$mode" = no-trace ] && extra=(--no-trace)
  : >"/tmp/$prefix.$mode"
  for _ in $(seq "$runs"); do
    on client "$binary" check 10.0.3.2:81 --timeout-ms 1000 --no-rdns --json "${extra[@]}" |
      field 'd["elapsed_us"] / 1000 if d["verdict"]["cause"] == "filtered" else "wrong cause"' >>"/tmp/$prefix.$mode" || true
    sleep 1
  done
done
with=$(median <"/tmp/$prefix.trace-check"); without=$(median <"/tmp/$prefix.no-trace")
echo "filtered check (timeout 1000 ms), $runs runs: with the trace median $with ms, without $without ms (goal: ≤ 1100 ms with)"
echo "  with the trace, slowest: $(sort -n "/tmp/$prefix.trace-check" | tail -1) ms"
rm -f /tmp/$prefix.*
