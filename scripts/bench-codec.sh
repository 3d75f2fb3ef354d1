#!/usr/bin/env bash
# Side-by-side codec benchmarks: dynfw (Go) against msgpack-python, the
# reference publisher's and clients' codec, in the same run. Medians of RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
py=${SENTINEL_PYTHON:-/usr/bin/python3}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) m=a[(NR+1)/2]; else m=(a[NR/2]+a[NR/2+1])/2; printf "%.4f\n", m}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
gob() { go test -run '^$' -bench "^Benchmark$1\$" -count "$runs" ./dynfw/ | awk '/ns\/op/ {for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") print $i}' | median; }
pyout=$("$py" scripts/bench/codec.py "$runs")
pyv() { echo "$pyout" | awk -v k="$1" '$1==k {print $2}'; }
printf '%-36s %12s %12s\n' "" "go (dynfw)" "msgpack-python"
printf '%-36s %9.1f ms %9.1f ms\n' "encode dynfw/list, 1M IPv4" "$(div "$(gob MarshalList1M)" 1e6)" "$(pyv list_pack_ms)"
printf '%-36s %9.1f ms %9.1f ms  (python: unpack only)\n' "decode dynfw/list, 1M IPv4" "$(div "$(gob DecodeList1M)" 1e6)" "$(pyv list_unpack_ms)"
printf '%-36s %12s %9.1f ms  (python: unpack + ipaddress)\n' "decode + validate addresses" "(included)" "$(pyv list_unpack_parse_ms)"
printf '%-36s %9.0f ns %9.0f ns\n' "encode dynfw/delta" "$(gob MarshalDelta)" "$(pyv delta_pack_ns)"
printf '%-36s %9.0f ns %9.0f ns  (go: with address validation)\n' "decode dynfw/delta" "$(gob DecodeDelta)" "$(pyv delta_unpack_ns)"
