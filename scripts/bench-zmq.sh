#!/usr/bin/env bash
# Side-by-side transport benchmarks: this project's pure-Go ZMTP (zmtp/
# bench_test.go) against libzmq (scripts/bench/zmqbench.c, built against
# Debian's libzmq3-dev), in the same run on the same machine. Each figure is
# the median of RUNS runs (default 5). Needs gcc and libzmq3-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
msgs=${MSGS:-1000000}
list_bytes=14300000 # a dynfw/list of 1M IPv4 addresses

if ! [ -f /usr/include/zmq.h ]; then
  echo "bench-zmq: libzmq headers missing; apt-get install libzmq3-dev gcc" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/zmqbench" scripts/bench/zmqbench.c -lzmq -lpthread
go test -c -o "$work/zmtp.test" ./zmtp/

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) m=a[(NR+1)/2]; else m=(a[NR/2]+a[NR/2+1])/2; printf "%.4f\n", m}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(uname -sr)"
echo "libzmq $(pkg-config --modversion libzmq 2>/dev/null || echo '?'), $(go version | cut -d' ' -f3)"
echo

for mech in null curve; do
  gobench=NULL; [ $mech = curve ] && gobench=CURVE
  go_r=$(for i in $(seq "$runs"); do
    "$work/zmtp.test" -test.run '^$' -test.bench "PubSubThroughput/$gobench\$" -test.benchtime "${msgs}x" |
      awk '/msgs\/s/ {for (i=1;i<=NF;i++) if ($(i+1)=="msgs/s") print $i}'
  done | median)
  c_r=$(for i in $(seq "$runs"); do "$work/zmqbench" thr $mech "$msgs" | sed 's/.*msgs_per_s=//'; done | median)
  printf 'PUB->SUB small messages, %-5s  go %9.0f msg/s   libzmq %9.0f msg/s   ratio %.2f\n' "$mech" "$go_r" "$c_r" "$(div "$go_r" "$c_r")"
done

for mech in null curve; do
  gobench=NULL; [ $mech = curve ] && gobench=CURVE
  go_ms=$("$work/zmtp.test" -test.run '^$' -test.bench "ListLatency/$gobench\$" -test.benchtime "1x" -test.count "$runs" |
    awk '/ns\/op/ {for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") print $i/1e6}' | median)
  c_ms=$("$work/zmqbench" large $mech $list_bytes "$runs" | sed 's/.*ms=//' | tr ',' '\n' | median)
  printf '14.3 MB list latency,     %-5s  go %9.1f ms      libzmq %9.1f ms      ratio %.2f\n' "$mech" "$go_ms" "$c_ms" "$(div "$go_ms" "$c_ms")"
done

go_ms=$("$work/zmtp.test" -test.run '^$' -test.bench 'Fanout1000$' -test.benchtime 20x -test.count "$runs" |
  awk '/ns\/op/ {for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") print $i/1e6}' | median)
c_ms=$(for i in $(seq "$runs"); do "$work/zmqbench" fanout 1000 20 | sed 's/.*ms=//' | tr ',' '\n' | median; done | median)
printf 'one delta to 1000 CURVE subscribers  go %9.2f ms      libzmq %9.2f ms      ratio %.2f\n' "$go_ms" "$c_ms" "$(div "$go_ms" "$c_ms")"

echo
echo "stalled subscriber (go only): peak heap while publishing 1 KB messages"
"$work/zmtp.test" -test.run '^$' -test.bench 'StalledSubscriberMemory' -test.benchtime 1x |
  awk '/peak-heap-MB/ {for (i=1;i<=NF;i++) { if ($(i+1)=="peak-heap-MB") h=$i; if ($(i+1)=="dropped") d=$i }; split($1,n,"/"); sub(/-[0-9]+$/,"",n[2]); printf "  %7s messages: peak heap %5.1f MB, %s dropped for the stalled peer\n", n[2], h, d}'
