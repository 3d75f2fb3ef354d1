package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/zmtp"
)

// cmdEmit pushes test events to a server's probe ingest, in the format a
// Sentinel minipot sends: a quick way to see the pipeline work.
func cmdEmit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sentinel emit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ingest := fs.String("ingest", "tcp://127.0.0.1:7088", "the server's probe ingest endpoint")
	ip := fs.String("ip", "", "attacker address (required)")
	typ := fs.String("type", "telnet", "minipot: telnet, ftp, smtp or http")
	action := fs.String("action", "login", "connect, login, invalid (or message for http)")
	user := fs.String("username", "root", "username of a login")
	pass := fs.String("password", "123456", "password of a login")
	count := fs.Int("count", 1, "how many events")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: sentinel emit --ip ADDRESS [options]\n\nPushes minipot events to a Sentinel server's ZMQ ingest, as a router's probe would.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	addr, err := netip.ParseAddr(*ip)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel emit: --ip: %v\n", err)
		return 2
	}
	push, err := zmtp.NewSocket(zmtp.PUSH, zmtp.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "sentinel emit: %v\n", err)
		return 1
	}
	defer push.Close() // lingers until the queue is written
	if err := push.Dial(*ingest); err != nil {
		fmt.Fprintf(stderr, "sentinel emit: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < *count; i++ {
		n := 4
		if *action == "login" {
			n = 5
		}
		b := msgpack.AppendMapHeader(nil, n)
		b = msgpack.AppendString(b, "ts")
		b = msgpack.AppendUint(b, uint64(time.Now().Unix()))
		b = msgpack.AppendString(b, "type")
		b = msgpack.AppendString(b, *typ)
		b = msgpack.AppendString(b, "ip")
		b = msgpack.AppendString(b, addr.String())
		b = msgpack.AppendString(b, "action")
		b = msgpack.AppendString(b, *action)
		if *action == "login" {
			b = msgpack.AppendString(b, "data")
			b = msgpack.AppendMapHeader(b, 2)
			b = msgpack.AppendString(b, "username")
			b = msgpack.AppendString(b, *user)
			b = msgpack.AppendString(b, "password")
			b = msgpack.AppendString(b, *pass)
		}
		if err := push.Send(ctx, zmtp.Message{[]byte("sentinel/collect/minipot"), b}); err != nil {
			fmt.Fprintf(stderr, "sentinel emit: cannot reach %s: %v\n", *ingest, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "sent %d %s_%s event(s) for %s to %s\n", *count, *typ, *action, addr, *ingest)
	return 0
}
