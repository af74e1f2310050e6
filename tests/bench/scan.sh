#!/usr/bin/env bash
# Port-scan benchmarks (issue: "faster than nmap and RustScan, and honest about every port").
#
#   1. All 65,535 ports of 127.0.0.1 with three listeners: whyrefused vs `nmap -sT -p- -T5` (and
#      RustScan when installed), run alternately, RUNS times each: median wall time, median peak
#      memory (max RSS), and whether the open ports are identical.
#   2. 10,000 DROP-ed ports in a network namespace, 1 s timeout and one retry: total wall time.
#
# Only loopback and the namespaces this script creates are probed; nmap runs with -n (no reverse
# DNS, which would leave the machine). Run through `./dev bench`, or alone (root for part 2).
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=${RUNS:-9}
cargo build --release -p whyrefused --quiet
binary=$PWD/target/release/whyrefused
work=$(mktemp -d)
listeners_pid=
cleanup() {
  [ -n "$listeners_pid" ] && kill "$listeners_pid" 2>/dev/null || true
  ip netns del wrbench-client 2>/dev/null || true
  ip netns del wrbench-server 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Three listeners; their ports are written to $work/open.
python3 - "$work/open" <<'EOF' &
import socket, sys, time
sockets = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(128); sockets.append(s)
with open(sys.argv[1], "w") as f:
    f.write("\n".join(str(s.getsockname()[1]) for s in sockets) + "\n")
time.sleep(3600)
EOF
listeners_pid=$!
while [ ! -s "$work/open" ]; do sleep 0.05; done

# measure NAME COMMAND...: appends "seconds kilobytes" to $work/NAME.times, output to $work/NAME.out
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$name.out" 2>/dev/null || true
  cat "$work/time" >>"$work/$name.times"
}

open_ports_whyrefused() {
  python3 -c 'import json,sys; print("\n".join(str(r["port"]) for r in json.load(open(sys.argv[1]))["results"] if r["state"]=="open"))' "$1" | sort -n
}
open_ports_nmap() { grep -oE '[0-9]+/open' "$1" | cut -d/ -f1 | sort -n; }
open_ports_rustscan() { grep -oE 'Open 127\.0\.0\.1:[0-9]+' "$1" | cut -d: -f2 | sort -n; }

echo "== all 65,535 ports of 127.0.0.1, $runs runs each, alternating"
rustscan=$(command -v rustscan || true)
for _ in $(seq "$runs"); do
  measure whyrefused "$binary" scan 127.0.0.1 --ports 1-65535 --json
  measure nmap nmap -sT -p- -T5 -n -Pn -oG - 127.0.0.1
  [ -n "$rustscan" ] && measure rustscan "$rustscan" -a 127.0.0.1 -r 1-65535 -b 4500 -g --no-config
done

summary() {
  python3 - "$1" <<'EOF'
import statistics, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
seconds = [r[0] for r in rows]; mib = [r[1] / 1024 for r in rows]
print(f"median {statistics.median(seconds):.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}), "
      f"peak memory median {statistics.median(mib):.1f} MiB")
EOF
}
printf '%-12s ' whyrefused; summary "$work/whyrefused.times"
printf '%-12s ' "nmap -sT"; summary "$work/nmap.times"
[ -n "$rustscan" ] && { printf '%-12s ' rustscan; summary "$work/rustscan.times"; }
[ -z "$rustscan" ] && echo "rustscan    not installed: skipped"
python3 - "$work/whyrefused.times" "$work/nmap.times" <<'EOF'
import statistics, sys
ours, theirs = (statistics.median(float(l.split()[0]) for l in open(p) if l.strip()) for p in sys.argv[1:])
print(f"ratio       whyrefused / nmap = {ours / theirs:.2f}")
EOF
open_ports_whyrefused "$work/whyrefused.out" >"$work/ours.open"
open_ports_nmap "$work/nmap.out" >"$work/nmap.open"
if cmp -s "$work/ours.open" "$work/nmap.open"; then
  echo "open ports  identical ($(wc -l <"$work/ours.open") open, the 3 listeners included: $(tr '\n' ' ' <"$work/open"))"
else
  echo "open ports  DIFFER:"; diff "$work/ours.open" "$work/nmap.open" || true
fi
if [ -n "$rustscan" ]; then
  open_ports_rustscan "$work/rustscan.out" >"$work/rustscan.open"
  cmp -s "$work/ours.open" "$work/rustscan.open" && echo "rustscan    same open ports" || echo "rustscan    different open ports"
fi

if [ "$(id -u)" != 0 ]; then
  echo "== 10,000 DROP-ed ports: skipped (needs root for network namespaces)"
  exit 0
fi
echo "== 10,000 DROP-ed ports in a namespace, --timeout-ms 1000, --retries 1"
ip netns add wrbench-client
ip netns add wrbench-server
ip link add wrb0 netns wrbench-client type veth peer name wrb1 netns wrbench-server
ip -n wrbench-client addr add 10.0.9.1/24 dev wrb0
ip -n wrbench-server addr add 10.0.9.2/24 dev wrb1
for ns in wrbench-client wrbench-server; do ip -n "$ns" link set lo up; done
ip -n wrbench-client link set wrb0 up
ip -n wrbench-server link set wrb1 up
ip netns exec wrbench-server iptables -A INPUT -p tcp --dport 20000:29999 -j DROP
for _ in 1 2 3; do
  measure drop ip netns exec wrbench-client "$binary" scan 10.0.9.2 --ports 20000-29999 \
    --timeout-ms 1000 --retries 1 --json
done
printf '%-12s ' "10k DROP"; summary "$work/drop.times"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("            counts:", {k: v for k, v in d["counts"].items() if v}, "window", d["window"])' "$work/drop.out"
