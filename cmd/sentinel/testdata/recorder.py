#!/usr/bin/python3
"""A libzmq CURVE subscriber of a DynFW server that stays across server
restarts: prints every message as one JSON line {"topic": ..., "payload":
{...}}, and {"conn": "up"} or {"conn": "down"} when a connection to the
server completes its handshake or ends, so that a reader knows which list a
delta follows. argv: endpoint, server certificate file."""
import json, sys
import msgpack, zmq, zmq.auth
from zmq.utils.monitor import recv_monitor_message

endpoint, cert = sys.argv[1], sys.argv[2]
server_public, _ = zmq.auth.load_certificate(cert)
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
pub, sec = zmq.curve_keypair()
s.curve_serverkey = server_public
s.curve_publickey = pub
s.curve_secretkey = sec
s.setsockopt(zmq.RECONNECT_IVL, 10)
s.setsockopt(zmq.SUBSCRIBE, b"dynfw/list")
s.setsockopt(zmq.SUBSCRIBE, b"dynfw/delta")
mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
s.connect(endpoint)
poller = zmq.Poller()
poller.register(mon, zmq.POLLIN)
poller.register(s, zmq.POLLIN)
while True:
    poller.poll()
    # Connection events before each message: a message that follows a new
    # handshake must not be read as part of the old connection.
    while mon.poll(0):
        ev = recv_monitor_message(mon)
        up = ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        print(json.dumps({"conn": "up" if up else "down"}), flush=True)
    if s.poll(0):
        topic, payload = s.recv_multipart()
        msg = msgpack.unpackb(payload, raw=False)
        print(json.dumps({"topic": topic.decode(), "payload": msg}), flush=True)
