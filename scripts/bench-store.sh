#!/bin/sh
# Benchmarks the statistics store (internal/store) on SQLite and PostgreSQL:
#   1. BenchmarkInsert: events/s in batches of 1000 incidents (+ passwords
#      and ports);
#   2. TestBenchView: SENTINEL_BENCH_EVENTS incidents (default 1M; the
#      target size is 10M) spread over one year with realistic skew, then a
#      rollup, then every query of every period of the view, with p50/p95
#      per query and the database size.
#
# Usage: scripts/bench-store.sh [sqlite|postgres|all] (default all)
# Env:   SENTINEL_BENCH_EVENTS=10000000  size of the view benchmark
#        SENTINEL_BENCH_RUNS=5  timed runs per query (default 15)
#        SENTINEL_TEST_POSTGRES=postgres://...  server for PostgreSQL
#        (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable;
#        each run uses a fresh schema, dropped afterwards)
set -eu
cd "$(dirname "$0")/.."
which=${1:-all}
export SENTINEL_BENCH_STORE=1
: "${SENTINEL_BENCH_EVENTS:=1000000}"
export SENTINEL_BENCH_EVENTS

run() {
	pkg=$1
	echo "== $pkg: BenchmarkInsert"
	go test -run '^$' -bench BenchmarkInsert -benchtime 10s "./internal/store/$pkg/"
	echo "== $pkg: view queries over $SENTINEL_BENCH_EVENTS incidents"
	go test -run '^TestBenchView$' -v -timeout 6h "./internal/store/$pkg/" |
		sed -n 's/^ *bench.go:[0-9]*: //p; /^--- /p; /^ok\|^FAIL/p'
}

case $which in
sqlite | postgres) run "$which" ;;
all)
	run sqlite
	run postgres
	;;
*)
	echo "usage: $0 [sqlite|postgres|all]" >&2
	exit 2
	;;
esac
