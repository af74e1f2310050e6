#!/usr/bin/env bash
# Vantage-point fan-out benchmark (issue: "Vantage points"): a hub and AGENTS agents joined to it
# (real processes on loopback), one check fanned out to every vantage point with
# `check --via … --from all`, timed from the CLI's start until every result and the
# cross-vantage verdict arrived. RUNS runs; prints the median wall time, the median of the
# slowest vantage point's own check time, and their difference: the fan-out's cost.
# Goal: the fan-out costs under 300 ms beyond the probe's own time.
#
# Only loopback is probed (a listener this script owns). BINARY= picks a build (default: release).
set -euo pipefail
cd "$(dirname "$0")/../.."

agents=${AGENTS:-50}
runs=${RUNS:-9}
if [ -z "${BINARY:-}" ]; then
  cargo build --release -p whyrefused --quiet
  BINARY=$PWD/target/release/whyrefused
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Token files must be their owner's alone; the hub holds the client token and one agent token a
# joined agent, and each agent's own file starts with its agent token.
umask 077
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
echo "bench:$(secret)" >"$work/tokens"
for i in $(seq "$agents"); do
  echo "agent$i:$(secret):agent" | tee -a "$work/tokens" >"$work/agent$i.tokens"
done
"$BINARY" serve --listen 127.0.0.1:0 --token-file "$work/tokens" >"$work/hub.out" 2>"$work/hub.log" &
pids+=($!)
until grep -q 'http://' "$work/hub.out" 2>/dev/null; do sleep 0.05; done
hub=$(sed -n 's#.*http://\([^/]*\)/.*#\1#p' "$work/hub.out")

for i in $(seq "$agents"); do
  "$BINARY" serve --listen 127.0.0.1:0 --token-file "$work/agent$i.tokens" \
    --join "ws://$hub" --allow-loopback >/dev/null 2>"$work/agent$i.log" &
  pids+=($!)
done

online() {
  "$BINARY" agents --via "ws://$hub" --token-file "$work/tokens" --json |
    python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin) if a["online"]))'
}
deadline=$((SECONDS + 60))
until [ "$(online)" -eq $((agents + 1)) ]; do
  [ $SECONDS -lt $deadline ] || { echo "only $(online) of $((agents + 1)) vantage points came online" >&2; exit 1; }
  sleep 0.2
done

# The target: an open loopback port this script owns.
python3 - "$work/port" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept(); c.close()
PY
pids+=($!)
until [ -s "$work/port" ]; do sleep 0.05; done
port=$(cat "$work/port")

echo "== a check of 127.0.0.1:$port from $((agents + 1)) vantage points (hub + $agents agents), $runs runs"
for run in $(seq "$runs"); do
  start=$(date +%s%N)
  "$BINARY" check "127.0.0.1:$port" --via "ws://$hub" --token-file "$work/tokens" --from all --json >"$work/out.json" || true
  end=$(date +%s%N)
  python3 - "$work/out.json" $(((end - start) / 1000)) "$agents" <<'PY' | tee -a "$work/runs"
import json, sys
out, wall_us, agents = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
vantages = out["vantages"]
done = [v for v in vantages if v["report"].get("outcome") == "completed"]
assert len(done) == agents + 1, f"{len(done)} of {agents + 1} vantage points completed"
probe_us = max(v["report"]["elapsed_us"] for v in done)
print(f"{wall_us / 1000:.1f} {probe_us / 1000:.1f} {(wall_us - probe_us) / 1000:.1f} {out['verdict']['cause']}")
PY
done

python3 - "$work/runs" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
median = lambda i: statistics.median(float(r[i]) for r in rows)
print(f"median wall {median(0):.1f} ms · slowest vantage point's own check {median(1):.1f} ms · "
      f"fan-out cost {median(2):.1f} ms (goal: under 300 ms)")
PY
