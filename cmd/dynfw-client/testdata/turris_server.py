#!/usr/bin/python3
"""A DynFW publisher that behaves like the Turris server, on libzmq: a CURVE
server PUB socket, a dynfw/list every --list-interval, a dynfw/delta per
change with a serial shared by lists and deltas, dynfw/event messages, and
serial or version resets on demand. It is driven by JSON lines on stdin and
answers each with one JSON line on stdout.

  {"op": "add", "ips": [...]}     add addresses, one delta each
  {"op": "del", "ips": [...]}     remove addresses, one delta each
  {"op": "lose", "n": N}          the next N deltas change the state but are not sent
  {"op": "dup"}                   send the last delta again
  {"op": "reset", "version": V}   new version (default: now), serial back to 0
  {"op": "events", "n": N}        N dynfw/event messages
  {"op": "stop"}                  close the socket: the server disappears
  {"op": "start"}                 bind again on the same port
  {"op": "list"}                  send a list now
  {"op": "state"}                 print version, serial and the addresses
"""
import argparse, json, os, sys, time
import msgpack, zmq, zmq.auth

ap = argparse.ArgumentParser()
ap.add_argument("certdir")
ap.add_argument("--list-interval", type=float, default=1.0)
ap.add_argument("--initial", type=int, default=0, help="start with N generated IPv4 addresses")
ap.add_argument("--initial-file", help="start with the addresses in this file, one per line")
ap.add_argument("--bind", default="127.0.0.1", help="address to listen on")
args = ap.parse_args()

pub_file, secret_file = zmq.auth.create_certificates(args.certdir, "server")
public, secret = zmq.auth.load_certificate(secret_file)
ctx = zmq.Context()
sock = None
port = 0

def bind():
    global sock, port
    sock = ctx.socket(zmq.PUB)
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100000)
    sock.bind("tcp://%s:%s" % (args.bind, port if port else "*"))
    port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])

bind()
version = int(time.time())
serial = 0
addrs = set()
if args.initial:
    addrs = {"%d.%d.%d.%d" % (11 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255) for i in range(args.initial)}
if args.initial_file:
    with open(args.initial_file) as f:
        addrs = {l.strip() for l in f if l.strip()}
lose = 0
last_delta = None

def out(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()

def send(topic, payload):
    if sock is not None:
        sock.send_multipart([topic.encode(), msgpack.packb(payload)])

def send_list():
    send("dynfw/list", {"version": version, "serial": serial, "list": sorted(addrs), "ts": int(time.time())})

def delta(op, ip):
    global serial, lose, last_delta
    serial += 1
    if op == "positive":
        addrs.add(ip)
    else:
        addrs.discard(ip)
    last_delta = {"serial": serial, "delta": op, "ip": ip, "ts": int(time.time())}
    if lose > 0:
        lose -= 1
        return
    send("dynfw/delta", last_delta)

out(ev="ready", port=port, cert=pub_file)
poller = zmq.Poller()
poller.register(sys.stdin.fileno(), zmq.POLLIN)
next_list = time.time() + args.list_interval
buf = b""
while True:
    timeout = max(0, next_list - time.time())
    ready = dict(poller.poll(timeout * 1000))
    if time.time() >= next_list:
        send_list()
        next_list = time.time() + args.list_interval
    if sys.stdin.fileno() not in ready:
        continue
    chunk = os.read(sys.stdin.fileno(), 65536)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "add":
            for ip in cmd["ips"]:
                delta("positive", ip)
        elif op == "del":
            for ip in cmd["ips"]:
                delta("negative", ip)
        elif op == "lose":
            lose = cmd["n"]
        elif op == "dup":
            send("dynfw/delta", last_delta)
        elif op == "reset":
            version = cmd.get("version", int(time.time()) + 1)
            serial = 0
        elif op == "events":
            for i in range(cmd["n"]):
                send("dynfw/event", {"event": "telnet_login", "ip": "198.51.100.%d" % (i % 250), "ts": int(time.time())})
        elif op == "stop":
            sock.close()
            sock = None
        elif op == "start":
            bind()
        elif op == "list":
            send_list()
        if op == "state":
            out(ev="state", version=version, serial=serial, addrs=sorted(addrs))
        else:
            out(ev="ok", op=op, serial=serial)
if sock is not None:
    sock.close()
ctx.term()
