# Sourced by the lab benchmarks: namespaces named "$prefix-HOST" for each of "${names[@]}"
# (both set by the caller before sourcing), removed on exit; `on HOST CMD...` runs a command in
# one; `link HOST_A IF_A ADDRESS_A HOST_B IF_B ADDRESS_B` joins two with a veth pair. Traffic
# stays inside them. Needs root.
cleanup() { for n in "${names[@]}"; do ip netns del "$prefix-$n" 2>/dev/null || true; done; }
trap cleanup EXIT
on() { local host=$1; shift; ip netns exec "$prefix-$host" "$@"; }
for n in "${names[@]}"; do ip netns add "$prefix-$n"; on "$n" ip link set lo up; done
link() {
  ip link add "$2" netns "$prefix-$1" type veth peer name "$5" netns "$prefix-$4"
  on "$1" sh -c "ip addr add $3 dev $2 && ip link set $2 up"
  on "$4" sh -c "ip addr add $6 dev $5 && ip link set $5 up"
}
