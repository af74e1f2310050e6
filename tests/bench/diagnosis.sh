#!/usr/bin/env bash
# Benchmark and comparison for diagnosis, in a namespace lab this script creates and removes:
#  1. verdict time (process start included) for a closed port (with liveness and nearby-port
#     probes) and for a filtered port (timeout 1000 ms);
#  2. a table: each lab scenario, whyrefused's cause, and nmap -sT --reason's state.
# Traffic stays inside the namespaces. Needs root, hyperfine, nmap, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${BINARY:-target/release/whyrefused}
[ -x "$binary" ] || cargo build --release -p whyrefused --quiet

prefix="wrbench$$"
client="$prefix-client"; server="$prefix-server"; router="$prefix-router"
cleanup() { for ns in "$client" "$server" "$router"; do ip netns del "$ns" 2>/dev/null || true; done; }
trap cleanup EXIT

for ns in "$client" "$server" "$router"; do ip netns add "$ns"; ip netns exec "$ns" ip link set lo up; done
ip link add wrc0 netns "$client" type veth peer name wrs0 netns "$server"
ip netns exec "$client" sh -c 'ip addr add 10.0.1.1/24 dev wrc0 && ip link set wrc0 up'
ip netns exec "$server" sh -c 'ip addr add 10.0.1.2/24 dev wrs0 && ip link set wrs0 up'
ip link add wrc1 netns "$client" type veth peer name wrr0 netns "$router"
ip netns exec "$client" sh -c 'ip addr add 10.0.3.1/24 dev wrc1 && ip link set wrc1 up && ip route add 10.0.4.0/24 via 10.0.3.254'
ip netns exec "$router" sh -c 'ip addr add 10.0.3.254/24 dev wrr0 && ip link set wrr0 up && ip route add unreachable 10.0.4.0/24 && sysctl -qw net.ipv4.ip_forward=1'

# The server: port 80 open, 81 closed, 82 DROP, 83 REJECT tcp-reset, 84 REJECT port-unreachable,
# 85 REJECT admin-prohibited, 86 accepts and closes at once.
ip netns exec "$server" python3 - <<'PY' &
import socket, threading
def serve(port, close):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.0.1.2", port)); s.listen(64); held = []
    while True:
        c, _ = s.accept()
        if close: c.close()
        else: held.append(c)
for port, close in ((80, False), (86, True)):
    threading.Thread(target=serve, args=(port, close), daemon=True).start()
threading.Event().wait(600)
PY
server_pid=$!
trap 'kill $server_pid 2>/dev/null; cleanup' EXIT
ip netns exec "$server" sh -c '
  iptables -A INPUT -p tcp --dport 82 -j DROP
  iptables -A INPUT -p tcp --dport 83 -j REJECT --reject-with tcp-reset
  iptables -A INPUT -p tcp --dport 84 -j REJECT --reject-with icmp-port-unreachable
  iptables -A INPUT -p tcp --dport 85 -j REJECT --reject-with icmp-admin-prohibited'
# The lab's DNS server (dnsmasq on the server) and the client's resolver configuration.
ip netns exec "$server" /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts \
  --bind-interfaces --listen-address=10.0.1.2 --local=/lab/ --host-record=web.lab,10.0.1.2 \
  --txt-record=noaddr.lab,none --pid-file=/tmp/$prefix-dnsmasq.pid &
dns_pid=$!
mkdir -p "/etc/netns/$client"
printf 'nameserver 10.0.1.2\noptions timeout:1 attempts:1\n' >"/etc/netns/$client/resolv.conf"
trap 'kill $server_pid $dns_pid 2>/dev/null; rm -rf "/etc/netns/$client"; cleanup' EXIT
sleep 0.5

run() { ip netns exec "$client" "$@"; }

echo "== verdict time, process start included (hyperfine, client namespace)"
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --ignore-failure \
  -n "closed port (liveness + nearby ports)" "ip netns exec $client $binary check 10.0.1.2:81" \
  -n "filtered port, --timeout-ms 1000" "ip netns exec $client $binary check 10.0.1.2:82 --timeout-ms 1000" \
  -n "open port (after-connect watch included)" "ip netns exec $client $binary check 10.0.1.2:80" \
  -n "NXDOMAIN (system resolver + nameserver asked directly)" "ip netns exec $client $binary check nosuch.lab:80" \
  --export-markdown /tmp/whyrefused-diagnosis-times.md >/dev/null
cat /tmp/whyrefused-diagnosis-times.md

echo
echo "== scenarios: whyrefused's cause vs nmap -sT --reason"
echo "| scenario | target | whyrefused cause | nmap -sT state (reason) |"
echo "|---|---|---|---|"
scenario() {
  local name=$1 host=$2 port=$3
  local cause nmap_state
  cause=$( (run "$binary" check "$host:$port" --timeout-ms 1000 --json || true) \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["verdict"]["cause"])')
  nmap_state=$(run nmap -sT -Pn -n --reason -p "$port" --max-retries 1 --host-timeout 10s "$host" 2>/dev/null \
    | awk -v p="$port/tcp" '$1==p {print $2" ("$4")"}')
  echo "| $name | $host:$port | $cause | ${nmap_state:-?} |"
}
scenario "service listening" 10.0.1.2 80
scenario "nothing listening" 10.0.1.2 81
scenario "firewall DROP" 10.0.1.2 82
scenario "REJECT tcp-reset" 10.0.1.2 83
scenario "REJECT icmp-port-unreachable" 10.0.1.2 84
scenario "REJECT icmp-admin-prohibited" 10.0.1.2 85
scenario "accepts, then closes at once" 10.0.1.2 86
scenario "no route" 10.9.9.9 80
scenario "router: no route (unreachable route)" 10.0.4.9 80
scenario "name does not exist" nosuch.lab 80
scenario "name without addresses" noaddr.lab 80
