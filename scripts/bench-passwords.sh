#!/usr/bin/env bash
# Password index benchmark (internal/passwords):
#   1. builds an index of N random SHA-1 hashes (default 100M) with the
#      external-sort Builder; reports build time, file size and peak RSS;
#   2. times range lookups of random 5-hex prefixes in process, on one core
#      (GOMAXPROCS=1, pinned): the Corpus lookup alone, the range handler
#      without the network (lookup + rendering), and with Add-Padding; once
#      on a cold mapping (page cache warm, page tables not) first;
#   3. serves the range API (net/http) on loopback pinned to CPU 0 with
#      GOMAXPROCS=1 and loads it from CPU 1 with a raw-socket HTTP/1.1
#      keep-alive client: p50/p99 latency, requests/s, and requests per
#      second of server CPU time (the "per core" figure).
# Targets: p99 < 1 ms, >= 20k req/s per core.
#
# Environment: N (hashes), DURATION (per measurement, default 10s),
# PWBENCH_DIR (work directory; default a new one under /var/tmp, removed at
# the end unless KEEP=1; an existing index there is reused unless
# REBUILD=1), MEM (sort buffer MiB, default 256).
# Needs about 57 bytes of disk per hash during the build (5.7 GB for 100M).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-100000000}
dur=${DURATION:-10s}
mem=${MEM:-256}
if [ -n "${PWBENCH_DIR:-}" ]; then
  dir=$PWBENCH_DIR
  mkdir -p "$dir"
else
  dir=$(mktemp -d /var/tmp/pwbench.XXXXXX)
fi
spid=
cleanup() {
  if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; fi
  if [ -z "${PWBENCH_DIR:-}" ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
# Pin to one CPU where possible (taskset execs, so $! is the server's pid).
cpu0=() cpu1=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then cpu0=(taskset -c 0) cpu1=(taskset -c 1); fi

bin=$dir/pwbench
go build -o "$bin" ./internal/passwords/internal/pwbench
idx=$dir/pw.idx
echo "== build: $n random hashes ($(nproc) CPUs, sort buffer ${mem} MiB, in $dir)"
if [ ! -f "$idx" ] || [ "${REBUILD:-0}" = 1 ]; then
  "$bin" build -n "$n" -out "$idx" -tmp "$dir" -mem "$mem"
else
  echo "reusing $idx ($(stat -c %s "$idx") bytes)"
fi

echo "== lookup alone, 1 core, cold mapping (first touch of each page faults)"
GOMAXPROCS=1 "${cpu0[@]}" "$bin" lookup -index "$idx" -d "$dur" -mode index -workers 1 -cold
for mode in index handler padded; do
  echo "== lookup alone, 1 core, warm mapping, mode $mode"
  GOMAXPROCS=1 "${cpu0[@]}" "$bin" lookup -index "$idx" -d "$dur" -mode "$mode" -workers 1
done

echo "== HTTP on loopback: server on CPU 0 (GOMAXPROCS=1), load generator on CPU 1"
out=$dir/serve.out
GOMAXPROCS=1 "${cpu0[@]}" "$bin" serve -index "$idx" >"$out" &
spid=$!
for _ in $(seq 100); do grep -q '^addr=' "$out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^addr=//p' "$out")
[ -n "$addr" ] || { echo "server did not start" >&2; exit 1; }
for c in 1 4 16; do
  echo "-- $c connection(s)"
  GOMAXPROCS=1 "${cpu1[@]}" "$bin" load -addr "$addr" -c "$c" -d "$dur" -server-pid "$spid"
done
echo "-- 4 connections, Add-Padding: true"
GOMAXPROCS=1 "${cpu1[@]}" "$bin" load -addr "$addr" -c 4 -d "$dur" -server-pid "$spid" -pad
# Open loop: the target load (20k requests/s on the server's one core)
# offered at a fixed rate by many connections, latency timed from each
# request's scheduled start.
for c in 16 64; do
  echo "-- open loop, 20000 requests/s over $c connections"
  GOMAXPROCS=1 "${cpu1[@]}" "$bin" load -addr "$addr" -c "$c" -d "$dur" -server-pid "$spid" -rate 20000
done
