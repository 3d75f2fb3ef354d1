#!/usr/bin/python3
"""A DynFW publisher on libzmq, as the Turris server runs one: a CURVE server
whose certificate pair is written by pyzmq's create_certificates into the
directory given as argv[1]. It waits for one subscription (XPUB, which is
PUB on the wire), then publishes the messages given as JSON lines on stdin:
{"topic": "...", "payload": {...}} packed with msgpack-python, or
{"topic": "...", "raw": "<hex>"} sent as is."""
import json, sys
import msgpack, zmq, zmq.auth

certdir = sys.argv[1]
pub_file, secret_file = zmq.auth.create_certificates(certdir, "server")
public, secret = zmq.auth.load_certificate(secret_file)
ctx = zmq.Context()
s = ctx.socket(zmq.XPUB)
s.curve_server = True
s.curve_publickey = public
s.curve_secretkey = secret
s.setsockopt(zmq.LINGER, 2000)
s.bind("tcp://127.0.0.1:*")
print(json.dumps({"ev": "ready", "endpoint": s.getsockopt_string(zmq.LAST_ENDPOINT), "cert": pub_file}), flush=True)
sub = s.recv()
print(json.dumps({"ev": "subscribed", "topic": sub[1:].decode()}), flush=True)
for line in sys.stdin:
    m = json.loads(line)
    if "raw" in m:
        body = bytes.fromhex(m["raw"])
    else:
        body = msgpack.packb(m["payload"])
    s.send_multipart([m["topic"].encode(), body])
    print(json.dumps({"ev": "sent"}), flush=True)
s.close()
ctx.term()
