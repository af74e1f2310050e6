#!/usr/bin/env bash
# History benchmarks (issue 11): what storing every result costs, and how fast it reads back.
#
#   1. A watch of 1,000 rounds at --every 10ms of a closed loopback port: the time each round
#      spends handing its result to the history (the summary's storage_us, p50/p99/max; goal:
#      p99 < 1 ms), and that all 1,000 were stored.
#   2. A history holding 100,000 results of one target (and 10,000 of another), each with the
#      real report of a check (the file made by whyrefused itself, the rows copied by Python's
#      sqlite3): `whyrefused history TARGET --json` end to end, process start included (goal:
#      the query < 50 ms), the same through an agent's API, and the file's size per 1,000.
#
# Only loopback is probed. Run through `./dev bench`, or alone (BINARY=path skips the build).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${BINARY:-}" ]; then
  cargo build --release -p whyrefused --quiet
  BINARY=${CARGO_TARGET_DIR:-target}/release/whyrefused
fi
work=$(mktemp -d)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)

echo "-- a watch of 1,000 rounds at --every 10ms (127.0.0.1:$port, closed)"
start=$(date +%s.%N)
"$BINARY" watch "127.0.0.1:$port" --every 10ms --count 1000 --json --state-dir "$work/watch" \
  | tail -n 1 > "$work/summary.json" || true
end=$(date +%s.%N)
python3 - "$work/summary.json" "$start" "$end" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
storage = summary["storage_us"]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"rounds: {summary['rounds']} in {wall:.1f} s ({wall / summary['rounds'] * 1000:.1f} ms a round)")
print(f"storage added per round: p50 {storage['p50']:.1f} us, p99 {storage['p99']:.1f} us, "
      f"max {storage['max']:.1f} us (goal: p99 < 1000 us)")
PY
stored=$("$BINARY" history "127.0.0.1:$port" --limit 10000 --csv --state-dir "$work/watch" | tail -n +2 | wc -l)
echo "stored: $stored of 1000 rounds"

echo "-- 100,000 stored results of one target"
mkdir -p "$work/big"
"$BINARY" check "127.0.0.1:$port" --state-dir "$work/big" > /dev/null || true
python3 - "$work/big/history.sqlite" <<'PY'
import random, sqlite3, string, sys, time
db = sqlite3.connect(sys.argv[1])
row = db.execute("SELECT kind, host, port, input, started_ms, finished_ms, vantage, asked_by, source, "
                 "watch, cause, reachable, connect_us, summary, report FROM results").fetchone()
db.execute("DELETE FROM results")
letters = "0123456789abcdefghjkmnpqrstvwxyz"
now = int(time.time() * 1000)
count = 110_000
start = time.time()
def rows():
    for n in range(count):
        other = n % 11 == 10  # one in eleven of another target
        port = 80 if other else 5432
        at = now - (count - n) * 1000
        yield ("".join(random.choices(letters, k=10)), row[0], "127.0.0.1", port, f"127.0.0.1:{port}",
               at, at + 12, *row[6:])
db.executemany("INSERT INTO results (id, kind, host, port, input, started_ms, finished_ms, vantage, "
               "asked_by, source, watch, cause, reachable, connect_us, summary, report) VALUES "
               "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(f"filled {count} results ({len(row[14])} bytes of report JSON each) in {time.time() - start:.1f} s")
PY
size=$(stat -c %s "$work/big/history.sqlite")
python3 -c "print(f'file: {$size / 1e6:.1f} MB for 110,000 results: {$size / 110:.0f} bytes per 1,000 ({$size / 110 / 1e6:.2f} MB)')"
hyperfine --warmup 3 --runs "${RUNS:-30}" -N \
  "$BINARY history 127.0.0.1:5432 --json --state-dir $work/big" \
  "$BINARY history 127.0.0.1:5432 --since 1h --json --state-dir $work/big"
api_port=$(free_port)
"$BINARY" serve --listen "127.0.0.1:$api_port" --state-dir "$work/big" > /dev/null 2>&1 &
agent_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$api_port/api/results?limit=1" > /dev/null && break; sleep 0.1; done
hyperfine --warmup 3 --runs "${RUNS:-30}" -N \
  "curl -sf http://127.0.0.1:$api_port/api/results?target=127.0.0.1:5432"
