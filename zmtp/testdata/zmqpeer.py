#!/usr/bin/python3
"""A libzmq peer (through pyzmq) driven by JSON lines on stdin, for the
interop tests of the zmtp package. Every answer and event is one JSON line
on stdout."""
import argparse, hashlib, json, sys, threading, time
import zmq
from zmq.utils.monitor import recv_monitor_message

ap = argparse.ArgumentParser()
ap.add_argument("--type", required=True)
ap.add_argument("--bind")
ap.add_argument("--connect")
ap.add_argument("--curve-server-secret")   # Z85; makes this peer a CURVE server
ap.add_argument("--curve-server-key")      # Z85; makes this peer a CURVE client of that server
ap.add_argument("--heartbeat-ivl", type=int, default=0)
ap.add_argument("--heartbeat-timeout", type=int, default=0)
ap.add_argument("--heartbeat-ttl", type=int, default=0)
ap.add_argument("--maxmsgsize", type=int, default=-1)
ap.add_argument("--xpub-verbose", action="store_true")
args = ap.parse_args()

out_lock = threading.Lock()
def emit(**kw):
    with out_lock:
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()

ctx = zmq.Context()
s = ctx.socket(getattr(zmq, args.type))
s.setsockopt(zmq.LINGER, 1000)
s.setsockopt(zmq.RCVHWM, 0)
s.setsockopt(zmq.SNDHWM, 0)
if args.maxmsgsize >= 0:
    s.setsockopt(zmq.MAXMSGSIZE, args.maxmsgsize)
if args.heartbeat_ivl:
    s.setsockopt(zmq.HEARTBEAT_IVL, args.heartbeat_ivl)
    s.setsockopt(zmq.HEARTBEAT_TIMEOUT, args.heartbeat_timeout or args.heartbeat_ivl)
if args.heartbeat_ttl:
    s.setsockopt(zmq.HEARTBEAT_TTL, args.heartbeat_ttl)
if args.xpub_verbose:
    s.setsockopt(zmq.XPUB_VERBOSE, 1)
if args.curve_server_secret:
    s.curve_server = True
    s.curve_secretkey = args.curve_server_secret.encode()
    s.curve_publickey = zmq.curve_public(args.curve_server_secret.encode())
elif args.curve_server_key:
    pub, sec = zmq.curve_keypair()
    s.curve_serverkey = args.curve_server_key.encode()
    s.curve_publickey = pub
    s.curve_secretkey = sec
    emit(ev="client-key", key=pub.decode())

mon = s.get_monitor_socket()
names = {getattr(zmq, n): n for n in dir(zmq) if n.startswith("EVENT_")}
def monitor():
    try:
        while True:
            try:
                m = recv_monitor_message(mon)
            except zmq.ZMQError:
                return
            if m["event"] == zmq.EVENT_MONITOR_STOPPED:
                return
            emit(ev="monitor", event=names.get(m["event"], str(m["event"])).replace("EVENT_", ""), value=m["value"])
    finally:
        # ctx.term() below waits for every socket of the context, this one too.
        mon.close(0)
monitor_thread = threading.Thread(target=monitor, daemon=True)
monitor_thread.start()

if args.bind:
    s.bind(args.bind)
    emit(ev="ready", endpoint=s.getsockopt_string(zmq.LAST_ENDPOINT))
if args.connect:
    s.connect(args.connect)
    emit(ev="ready", endpoint=args.connect)

def frame_json(f):
    if len(f) > 256:
        return {"len": len(f), "sha256": hashlib.sha256(f).hexdigest()}
    return {"hex": f.hex()}

def payload(size):
    # Byte i is (i * 7) mod 256, the same pattern the Go tests generate.
    block = bytes((i * 7) & 0xff for i in range(256))
    return (block * (size // 256 + 1))[:size]

for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "sub":
        s.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(cmd["topic"]))
    elif op == "unsub":
        s.setsockopt(zmq.UNSUBSCRIBE, bytes.fromhex(cmd["topic"]))
    elif op == "send":
        frames = [bytes.fromhex(f) for f in cmd["frames"]]
        for _ in range(cmd.get("count", 1)):
            s.send_multipart(frames)
        emit(ev="sent")
    elif op == "send_big":
        s.send_multipart([bytes.fromhex(cmd["topic"]), payload(cmd["size"])])
        emit(ev="sent")
    elif op == "recv":
        n = cmd.get("n", 1)
        deadline = time.time() + cmd.get("timeout", 5000) / 1000.0
        for _ in range(n):
            left = int((deadline - time.time()) * 1000)
            if left <= 0 or not s.poll(left):
                emit(ev="timeout")
                break
            frames = s.recv_multipart()
            emit(ev="msg", frames=[frame_json(f) for f in frames])
    elif op == "sleep":
        time.sleep(cmd["ms"] / 1000.0)
        emit(ev="slept")
    elif op == "quit":
        break
s.disable_monitor()
monitor_thread.join()
s.close()
ctx.term()
emit(ev="bye")
