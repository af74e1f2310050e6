#!/usr/bin/env bash
# Load benchmarks (issue 9): many clients at once, and many joined agents on one hub.
#
# 1. SESSIONS (default 1,000) concurrent WebSocket sessions to one release agent, each running
#    one check of a closed loopback port at the same moment: p50/p99 latency and the agent's
#    peak RSS (goal: p99 under 250 ms, RSS under 200 MiB). tests/benches/sessions.rs.
# 2. A fleet simulator (tests/src/bin/fleet.rs): one process opens AGENTS (default 1,000) real
#    joined-agent links to one hub, each answering with a real check of a closed loopback port;
#    a check fanned out to all of them: the overhead beyond the slowest vantage point's own check
#    (goal: under 500 ms) and the hub's RSS.
#
# Every session and link comes from 127.0.0.1, so the per-peer session cap (512 by default) is
# raised for them: SESSION_CAP_FLAGS. Only loopback is probed.
set -euo pipefail
cd "$(dirname "$0")/../.."

SESSION_CAP_FLAGS=${SESSION_CAP_FLAGS:---max-sessions 5000 --max-sessions-per-peer 5000}
sessions=${SESSIONS:-1000}
agents=${AGENTS:-1000}
runs=${RUNS:-5}
# One socket per session or link, on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "== $sessions concurrent sessions, one check each of a closed loopback port"
AGENT_FLAGS="$SESSION_CAP_FLAGS" cargo bench -p whyrefused-tests --bench sessions --quiet -- "$sessions" 2>/dev/null |
  grep -E 'concurrent sessions|panicked' || { echo "the sessions benchmark failed" >&2; exit 1; }

echo "== a check fanned out to a hub and $agents simulated agents (fleet simulator)"
cargo build --release --quiet -p whyrefused -p whyrefused-tests --bin fleet
release=${CARGO_TARGET_DIR:-target}/release
binary=$release/whyrefused
work=$(mktemp -d)
hub_pid=
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# One agent token per simulated agent (it registers under the token's name), and a client token.
AGENT_TOKEN_ROLE=:agent
client_secret="bench-client-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
{
  echo "bench:$client_secret"
  for i in $(seq "$agents"); do
    echo "fleet$i:fleet-secret-$i-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')$AGENT_TOKEN_ROLE"
  done
} >"$work/tokens"
grep '^fleet' "$work/tokens" >"$work/agent-tokens"
chmod 600 "$work/tokens" "$work/agent-tokens"

# shellcheck disable=SC2086
"$binary" serve --listen 127.0.0.1:0 --token-file "$work/tokens" $SESSION_CAP_FLAGS \
  >"$work/hub.out" 2>"$work/hub.log" &
hub_pid=$!
until grep -q 'http://' "$work/hub.out" 2>/dev/null; do sleep 0.05; done
hub=$(sed -n 's#.*http://\([^/]*\)/.*#\1#p' "$work/hub.out")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$release/fleet" "ws://$hub/ws" "$work/agent-tokens" "$client_secret" "127.0.0.1:$port" \
  "$agents" "$hub_pid" "$runs"
