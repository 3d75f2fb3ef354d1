#!/usr/bin/python3
"""A libzmq CURVE subscriber of a DynFW server: prints every message as one
JSON line {"topic": ..., "payload": {...}}. argv: endpoint, server
certificate file."""
import json, sys
import msgpack, zmq, zmq.auth

endpoint, cert = sys.argv[1], sys.argv[2]
server_public, _ = zmq.auth.load_certificate(cert)
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
pub, sec = zmq.curve_keypair()
s.curve_serverkey = server_public
s.curve_publickey = pub
s.curve_secretkey = sec
s.setsockopt(zmq.SUBSCRIBE, b"dynfw/")
s.connect(endpoint)
while True:
    topic, payload = s.recv_multipart()
    msg = msgpack.unpackb(payload, raw=False)
    print(json.dumps({"topic": topic.decode(), "payload": msg}), flush=True)
