#!/usr/bin/python3
"""msgpack-python side of scripts/bench-codec.sh: pack and unpack a dynfw/list
of 1M IPv4 addresses and a delta, as the reference publisher and clients do.
Prints medians in milliseconds (list) and nanoseconds (delta)."""
import ipaddress, statistics, sys, time
import msgpack

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
addrs = ["%d.%d.%d.%d" % (1 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255) for i in range(1_000_000)]
lst = {"version": 1763800000, "serial": 1, "list": addrs, "ts": 1763800000}
delta = {"serial": 123456, "delta": "positive", "ip": "203.0.113.77", "ts": 1763800000}

def med(f, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

packed = msgpack.packb(lst)
print("list_pack_ms %.1f" % (1e3 * med(lambda: msgpack.packb(lst), runs)))
print("list_unpack_ms %.1f" % (1e3 * med(lambda: msgpack.unpackb(packed), runs)))
print("list_unpack_parse_ms %.1f" % (1e3 * med(lambda: [ipaddress.ip_address(a) for a in msgpack.unpackb(packed)["list"]], 3)))
dp = msgpack.packb(delta)
n = 200000
print("delta_pack_ns %.0f" % (1e9 * med(lambda: [msgpack.packb(delta) for _ in range(n)], runs) / n))
print("delta_unpack_ns %.0f" % (1e9 * med(lambda: [msgpack.unpackb(dp) for _ in range(n)], runs) / n))
