"""Pack values with the real msgpack-python, for the Go byte-identity and
compatibility tests (see testenv.Packb).

Reads one JSON object per line from stdin and writes "<name> <hex>" per line.
An object with "kind" list, delta or event carries the fields of that DynFW
message; the dict is built in the reference publisher's key order. Any other
object carries a tagged value "v". Both may carry "opts", packb keyword
arguments. Tagged values keep the types JSON cannot express:

    ["nil"] ["bool", b] ["int", "decimal"] ["float", "uint64 bits as decimal"]
    ["str", s] ["bin", "hex"] ["ext", code, "hex"]
    ["array", [tagged...]] ["map", [[tagged key, tagged value], ...]]
"""

import json
import struct
import sys

import msgpack


def build(t):
    kind = t[0]
    if kind == "nil":
        return None
    if kind == "bool":
        return bool(t[1])
    if kind == "int":
        return int(t[1])
    if kind == "float":
        return struct.unpack(">d", struct.pack(">Q", int(t[1])))[0]
    if kind == "str":
        return t[1]
    if kind == "bin":
        return bytes.fromhex(t[1])
    if kind == "ext":
        return msgpack.ExtType(t[1], bytes.fromhex(t[2]))
    if kind == "array":
        return [build(e) for e in t[1]]
    if kind == "map":
        return {build(k): build(v) for k, v in t[1]}
    raise ValueError("unknown tag %r" % (kind,))


def payload(c):
    kind = c.get("kind", "raw")
    if kind == "list":
        return {"version": c["version"], "serial": c["serial"], "list": c["list"], "ts": c["ts"]}
    if kind == "delta":
        return {"serial": c["serial"], "delta": c["delta"], "ip": c["ip"], "ts": c["ts"]}
    if kind == "event":
        return {"event": c["event"], "ip": c["ip"], "ts": c["ts"]}
    if kind == "raw":
        return build(c["v"])
    raise ValueError("unknown kind %r" % (kind,))


for line in sys.stdin:
    case = json.loads(line)
    out = msgpack.packb(payload(case), **case.get("opts", {}))
    sys.stdout.write("%s %s\n" % (case["name"], out.hex()))
