#!/usr/bin/env bash
# Lossy-path scan benchmark, in a namespace lab this script creates and removes: a client, a
# router that drops 30% of forwarded TCP packets at random in each direction (iptables'
# statistic match: this kernel has no netem), and a server with two open ports (700, 8080) in
# 1-1000,8080; every other port is closed (it answers with a reset when packets get through).
# RUNS rounds (default 5), each in the same minute: `whyrefused scan` and `nmap -sT -T4` of the
# same ports. Reports per run and in total: wall time, closed ports called filtered (timeout),
# open ports missed. Goal (issue 19): no open port missed over the runs, no more ports called
# filtered than nmap. Traffic stays inside the namespaces. Needs root, nmap and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${BINARY:-target/release/whyrefused}
[ -x "$binary" ] || cargo build --release -p whyrefused --quiet
command -v nmap >/dev/null || { echo "loss.sh needs nmap (apt-get install nmap)" >&2; exit 1; }
runs=${RUNS:-5}
ports=1-1000,8080

prefix="wrloss$$"
names=(client router server)
cleanup() { for n in "${names[@]}"; do ip netns del "$prefix-$n" 2>/dev/null || true; done; }
trap cleanup EXIT
on() { local host=$1; shift; ip netns exec "$prefix-$host" "$@"; }

for n in "${names[@]}"; do ip netns add "$prefix-$n"; on "$n" ip link set lo up; done
link() { # link HOST_A IF_A ADDRESS_A HOST_B IF_B ADDRESS_B
  ip link add "$2" netns "$prefix-$1" type veth peer name "$5" netns "$prefix-$4"
  on "$1" sh -c "ip addr add $3 dev $2 && ip link set $2 up"
  on "$4" sh -c "ip addr add $6 dev $5 && ip link set $5 up"
}
link client c0 10.0.1.1/24 router rw 10.0.1.254/24
link router re 10.0.2.254/24 server s0 10.0.2.1/24
on client ip route add default via 10.0.1.254
on server ip route add default via 10.0.2.254
on router sysctl -qw net.ipv4.ip_forward=1
on router iptables -A FORWARD -p tcp -d 10.0.2.1 -m statistic --mode random --probability 0.3 -j DROP
on router iptables -A FORWARD -p tcp -s 10.0.2.1 -m statistic --mode random --probability 0.3 -j DROP
ip netns exec "$prefix-server" python3 -c '
import socket, threading
def hold(port):
    s = socket.socket(); s.bind(("10.0.2.1", port)); s.listen(256)
    while True: s.accept()[0].close()
for port in (700, 8080): threading.Thread(target=hold, args=(port,), daemon=True).start()
threading.Event().wait()' &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; cleanup' EXIT
until on server ss -Hltn 'sport = :8080' | grep -q .; do sleep 0.05; done

# ours: filtered count and missed open ports from `scan --json --all`.
ours_counts() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
states = {r["port"]: r["state"] for r in d["results"]}
missed = [p for p in (700, 8080) if states.get(p) != "open"]
filtered = sum(1 for s in states.values() if s == "timeout")
print(filtered, len(missed), d.get("loss", {}).get("rate", 0))'
}
# nmap's grepable output: filtered ports listed or counted as ignored, and the open ones.
nmap_counts() {
  python3 -c '
import re, sys
text = sys.stdin.read()
line = next((l.split("Ports: ", 1)[1] for l in text.splitlines() if "Ports: " in l), "")
entries = [e for e in line.split(", ") if e]
opened = {int(e.split("/")[0]) for e in entries if "/open/" in e}
filtered = sum(1 for e in entries if "/filtered/" in e)
m = re.search(r"Ignored State: filtered \((\d+)\)", text)
filtered += int(m.group(1)) if m else 0
print(filtered, len({700, 8080} - opened))'
}

total_ours_ms=0; total_nmap_ms=0; ours_filtered=0; nmap_filtered=0; ours_missed=0; nmap_missed=0
echo "== scan of $ports through 30% random loss each way: whyrefused vs nmap -sT -T4, $runs runs"
for run in $(seq "$runs"); do
  start=$(date +%s%N)
  read -r f m rate < <(on client "$binary" scan 10.0.2.1 --ports "$ports" --timeout-ms 500 --json --all | ours_counts)
  ours_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  start=$(date +%s%N)
  read -r nf nm < <(on client nmap -sT -T4 -Pn -n -p "$ports" -oG - 10.0.2.1 | nmap_counts)
  nmap_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'run %d: whyrefused %6d ms, %3d filtered, %d open missed (loss estimate %s) | nmap %6d ms, %3d filtered, %d open missed\n' \
    "$run" "$ours_ms" "$f" "$m" "$rate" "$nmap_ms" "$nf" "$nm"
  total_ours_ms=$((total_ours_ms + ours_ms)); total_nmap_ms=$((total_nmap_ms + nmap_ms))
  ours_filtered=$((ours_filtered + f)); nmap_filtered=$((nmap_filtered + nf))
  ours_missed=$((ours_missed + m)); nmap_missed=$((nmap_missed + nm))
done
echo "total: whyrefused $total_ours_ms ms, $ours_filtered false filtered, $ours_missed open missed"
echo "       nmap -sT -T4 $total_nmap_ms ms, $nmap_filtered false filtered, $nmap_missed open missed"
echo "goal: 0 open missed, false filtered <= nmap's"
