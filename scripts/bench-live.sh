#!/bin/sh
# Load test of the DynFW live page (internal/live): a real DynFW publisher
# (CURVE) feeds a hub in a separate server process, CLIENTS Server-Sent
# Events clients are connected to its HTTP server, and RATE events/s are
# published for SECONDS. Prints the delivery latency (publication to receipt)
# p50/p99, events received per client, and the server's heap, RSS and CPU.
#
#   scripts/bench-live.sh [CLIENTS [RATE [SECONDS]]]     defaults 1000 1000 30
set -eu
cd "$(dirname "$0")/.."
clients=${1:-1000}
rate=${2:-1000}
seconds=${3:-30}
bin=$(mktemp -d)/live.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./internal/live
# Each client holds one connection on each side of loopback.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
LIVE_BENCH=1 LIVE_BENCH_CLIENTS=$clients LIVE_BENCH_RATE=$rate LIVE_BENCH_SECONDS=$seconds \
	"$bin" -test.run '^TestBenchLive$' -test.v -test.timeout 30m
