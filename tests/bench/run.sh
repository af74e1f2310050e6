#!/usr/bin/env bash
# The benchmarks behind the figures in the README: sizes, WebSocket round trip, CLI wall time.
# Only loopback is probed. Run through `./dev bench`.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release -p whyrefused --quiet
binary=target/release/whyrefused
wasm=$(ls -t target/release/build/whyrefused-*/out/page/whyrefused_frontend_bg.wasm | head -n 1)

echo "== sizes"
echo "wasm: $(stat -c %s "$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzipped"
echo "binary (release, page embedded): $(stat -c %s "$binary") bytes"

echo "== WebSocket round trip (1,000 checks of a closed loopback port)"
cargo bench -p whyrefused-tests --bench ws_roundtrip --quiet -- "${CHECKS:-1000}"

echo "== whyrefused check 127.0.0.1:PORT on a closed port, process start included"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hyperfine --warmup 5 --runs "${RUNS:-100}" -N --ignore-failure "$binary check 127.0.0.1:$port"

echo "== diagnosis in a namespace lab (root)"
bash tests/bench/diagnosis.sh

echo "== path trace: a 3-hop lab path, and a filtered check with and without the trace"
bash tests/bench/trace.sh

echo "== the firewall rule on the target host: the snapshot's added time with 1,000 rules (root)"
bash tests/bench/firewall.sh

echo "== port scans"
bash tests/bench/scan.sh

echo "== a scan through a lossy path (30% random loss each way) against nmap -sT -T4"
bash tests/bench/loss.sh

echo "== a check fanned out to a hub and 50 joined agents"
bash tests/bench/vantage.sh

echo "== Prometheus: probes per second through /probe, whyrefused against blackbox_exporter"
bash tests/bench/prometheus.sh

echo "== history: storage per watch round, a query over 100,000 results, size per 1,000"
bash tests/bench/history.sh

echo "== load: 1,000 concurrent sessions; 1,000 joined agents on one hub (fleet simulator)"
bash tests/bench/load.sh
