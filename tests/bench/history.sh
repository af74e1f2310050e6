#!/usr/bin/env bash
# History benchmarks (issue 11): what storing every result costs, and how fast it reads back.
#
#   1. A watch of 1,000 rounds at --every 10ms of a closed loopback port: the time each round
#      spends handing its result to the history (the summary's storage_us, p50/p99/max; goal:
#      p99 < 1 ms), and that all 1,000 were stored.
#   2. A history holding 100,000 results of one target (and 10,000 of another), each with a
#      real check report: the query `whyrefused history TARGET` runs (goal < 50 ms), the whole
#      command's wall time (hyperfine), and the database's size per 1,000 results.
#
# Only loopback is probed. Run through `./dev bench`, or alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release -p whyrefused --quiet
binary=$target_dir/release/whyrefused
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "-- a watch of 1,000 rounds at --every 10ms (127.0.0.1:$port, closed)"
start=$(date +%s.%N)
"$binary" watch "127.0.0.1:$port" --every 10ms --count 1000 --json --state-dir "$work/watch" \
  | tail -n 1 > "$work/summary.json" || true
end=$(date +%s.%N)
python3 - "$work/summary.json" "$start" "$end" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
storage = summary["storage_us"]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"rounds: {summary['rounds']} in {wall:.1f} s ({wall / summary['rounds'] * 1000:.1f} ms a round)")
print(f"storage per round: p50 {storage['p50']:.1f} us, p99 {storage['p99']:.1f} us, max {storage['max']:.1f} us (goal: p99 < 1000 us)")
PY
stored=$("$binary" history "127.0.0.1:$port" --limit 10000 --csv --state-dir "$work/watch" | tail -n +2 | wc -l)
echo "stored: $stored of 1000 rounds"

echo "-- 100,000 stored results of one target"
"$binary" check "127.0.0.1:$port" --json --no-history > "$work/report.json" || true
cargo bench -p whyrefused-tests --bench history --quiet -- "$work/big" "$work/report.json" 100000
hyperfine --warmup 3 --runs "${RUNS:-30}" -N \
  "$binary history 127.0.0.1:5432 --json --state-dir $work/big"
