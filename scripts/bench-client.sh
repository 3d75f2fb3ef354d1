#!/usr/bin/env bash
# Side-by-side client benchmarks in a private network namespace: dynfw-client
# applying a full list of N IPv4 addresses (received from a libzmq publisher
# that behaves like the Turris server) through its nftables and ipset
# backends, against `nft -f` and `ipset restore` (+ swap) of the same list;
# the client's peak and steady memory holding 1M addresses; a burst of 1,000
# deltas. Needs root, python3-zmq, python3-msgpack, nftables, ipset and GNU
# time. SIZES (default "100000 1000000") and RUNS (default 3) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"100000 1000000"}
runs=${RUNS:-3}
py=${SENTINEL_PYTHON:-/usr/bin/python3}
ns=dynfwbench-$$
work=$(mktemp -d)
cleanup() {
  [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
nsx() { ip netns exec "$ns" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) m=a[(NR+1)/2]; else m=(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }
CGO_ENABLED=0 go build -trimpath -o "$work/dynfw-client" ./cmd/dynfw-client

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(uname -sr); $(nft --version); $(ipset --version | head -1)"
printf '%-34s %10s %10s %14s\n' "" "median s" "peak RSS" "peer median s"

# start_server N: a publisher in the namespace with N addresses.
start_server() {
  "$py" - "$1" > "$work/list.txt" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print("%d.%d.%d.%d" % (11 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255))
PY
  rm -rf "$work/certs"; mkdir -p "$work/certs"
  mkfifo "$work/srv.in" 2>/dev/null || true
  nsx "$py" scripts/../cmd/dynfw-client/testdata/turris_server.py "$work/certs" --initial-file "$work/list.txt" --list-interval 0.5 < "$work/srv.in" > "$work/srv.out" &
  srv_pid=$!
  exec 9> "$work/srv.in"
  for _ in $(seq 100); do grep -q ready "$work/srv.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' "$work/srv.out" | head -1)
  cert=$(sed -n 's/.*"cert": "\([^"]*\)".*/\1/p' "$work/srv.out" | head -1)
}
stop_server() { exec 9>&-; wait "$srv_pid" 2>/dev/null || true; srv_pid=; }

client_args() { echo -s 127.0.0.1 -p "$port" -c "$cert" --key-dir "$work/keys" --start-timeout 30s; }

for n in $sizes; do
  start_server "$n"
  for backend in nftables ipset; do
    times=(); rss=()
    for r in $(seq "$runs"); do
      /usr/bin/time -f "%M" -o "$work/time" ip netns exec "$ns" env ${CLIENT_ENV:-} "$work/dynfw-client" $(client_args) --backend "$backend" --once 2> "$work/client.log"
      times+=("$(sed -n 's/.*msg="list applied".* took=\([0-9.]*\)\(m\?s\).*/\1 \2/p' "$work/client.log" | awk '{ if ($2=="ms") print $1/1000; else print $1 }')")
      rss+=("$(cat "$work/time")")
    done
    t=$(printf '%s\n' "${times[@]}" | median)
    m=$(printf '%s\n' "${rss[@]}" | median)
    # The peer, on the same list.
    peer=()
    for r in $(seq "$runs"); do
      if [ "$backend" = nftables ]; then
        { echo "add table inet peer"; echo "add set inet peer s { type ipv4_addr; size $((n * 2)); }"; echo "flush set inet peer s";
          awk 'BEGIN{printf "add element inet peer s { "} {printf "%s%s", (NR>1?", ":""), $1} END{print " }"}' "$work/list.txt"; } > "$work/peer.nft"
        s=$(date +%s.%N); nsx nft -f "$work/peer.nft"; e=$(date +%s.%N)
        nsx nft delete table inet peer
      else
        { echo "create peer-tmp hash:ip maxelem $((n * 2)) hashsize $((n / 2))"; sed 's/^/add peer-tmp /' "$work/list.txt";
          echo "create peer hash:ip maxelem $((n * 2)) -exist"; echo "swap peer-tmp peer"; echo "destroy peer-tmp"; } > "$work/peer.ipset"
        s=$(date +%s.%N); nsx ipset restore < "$work/peer.ipset"; e=$(date +%s.%N)
        nsx ipset destroy peer
      fi
      peer+=("$(echo "$s $e" | awk '{print $2 - $1}')")
    done
    p=$(printf '%s\n' "${peer[@]}" | median)
    peername="nft -f"; [ "$backend" = ipset ] && peername="ipset restore+swap"
    printf '%-34s %10s %7.1f MB %10s (%s)\n' "$n IPv4 full list, $backend" "$t" "$(echo "$m" | awk '{print $1/1024}')" "$p" "$peername"
  done
  if [ "$n" = "$(echo $sizes | awk '{print $NF}')" ]; then
    # Steady state holding the list, then a burst of 1,000 deltas.
    ip netns exec "$ns" "$work/dynfw-client" $(client_args) --backend nftables -v 2> "$work/steady.log" &
    cpid=$!
    for _ in $(seq 600); do grep -q 'msg="list applied"' "$work/steady.log" && break; sleep 0.1; done
    sleep 2
    pid=$(pgrep -f "$work/dynfw-client" | head -1)
    steady=$(awk '/VmRSS/ {print $2/1024}' /proc/"$pid"/status)
    hwm=$(awk '/VmHWM/ {print $2/1024}' /proc/"$pid"/status)
    ips=$("$py" -c 'import json; print(json.dumps(["198.18.%d.%d" % (i >> 8, i & 255) for i in range(1000)]))')
    echo "{\"op\":\"add\",\"ips\":$ips}" >&9
    sleep 3
    burst=$(sed -n 's/.*msg="deltas applied" deltas=\([0-9]*\).* took=\([0-9.]*\)\(µs\|ms\|s\).*/\1 \2 \3/p' "$work/steady.log" |
      awk '{ t=$2; if ($3=="µs") t/=1000; else if ($3=="s") t*=1000; n+=$1; s+=t; b++ } END {printf "%d deltas in %d batches, %.2f ms in the firewall", n, b, s}')
    kill "$cpid"; wait "$cpid" 2>/dev/null || true
    printf 'client holding %s IPv4 (nftables): RSS %.1f MB (peak %.1f MB)\n' "$n" "$steady" "$hwm"
    echo "burst of 1,000 deltas: $burst"
  fi
  stop_server
done
