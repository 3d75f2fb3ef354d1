#!/usr/bin/python3
"""Writes the seed corpus of FuzzFrameReader (testdata/fuzz/FuzzFrameReader/)
from what a real libzmq client sends, through Debian's python3-zmq. A plain
TCP server plays the other side: it answers with its greeting (and, for
NULL, its READY) and records the client's bytes.

Run it from the zmtp directory: /usr/bin/python3 testdata/capture-frames.py
"""
import os, socket, struct, zmq

OUT = "testdata/fuzz/FuzzFrameReader"

def greeting(mech, as_server):
    return (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 1]) + mech.ljust(20, b"\x00")
            + bytes([as_server]) + b"\x00" * 31)

def ready(socket_type):
    name, value = b"Socket-Type", socket_type
    body = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return bytes([0x04, len(body)]) + body

def capture(reply, client, want, after=None):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ctx = zmq.Context()
    s = client(ctx)
    s.connect("tcp://127.0.0.1:%d" % ls.getsockname()[1])
    c, _ = ls.accept()
    c.settimeout(2)
    c.sendall(reply)
    if after:
        after(s)
    got = b""
    while len(got) < want:
        try:
            b = c.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        got += b
    s.close(0)
    ctx.term()
    c.close()
    ls.close()
    return got

def curve_sub(ctx):
    s = ctx.socket(zmq.SUB)
    server_pub, _ = zmq.curve_keypair()
    s.curve_serverkey = server_pub
    s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
    return s

def push(ctx):
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 1000)
    return s

curve = capture(greeting(b"CURVE", 1), curve_sub, 64 + 2 + 200)
null = capture(greeting(b"NULL", 0) + ready(b"PULL"), push, 1 << 20,
               lambda s: s.send_multipart([b"sentinel/collect/minipot", b"\x93\xa4test\xa9192.0.2.1\xce\x65\x53\xf1\x00"]))
assert len(curve) == 266 and curve[64:66] == b"\x04\xc8", curve.hex()

def literal(b):
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in b'"\\' else "\\x%02x" % c for c in b) + '"'

os.makedirs(OUT, exist_ok=True)
for name, b in {
    "libzmq-greeting-curve": curve[:64],            # a greeting: no frame at all
    "libzmq-curve-hello": curve[64:],               # the HELLO command frame
    "libzmq-null-ready-two-frames": null[64:],      # READY, then topic (MORE) and body
}.items():
    with open(os.path.join(OUT, name), "w") as f:
        f.write("go test fuzz v1\n[]byte(%s)\n" % literal(b))
