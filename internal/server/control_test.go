package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/msgpack"
)

// recordingSink keeps every event the core hands to its sinks.
type recordingSink struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recordingSink) Events(evs []events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, evs...)
	r.mu.Unlock()
}

func (r *recordingSink) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// adminOps runs block, list, explain, unblock, clear and probes through
// c against ts, as the command line does.
func adminOps(t *testing.T, ts *testServer, c *control.Client) {
	t.Helper()
	ctx := context.Background()
	res, err := c.Block(ctx, control.AdminRequest{IP: "45.155.205.10", Duration: "2h", Reason: "abuse report"})
	if err != nil || !res.OK || res.Key != "45.155.205.10/32" || time.Until(res.Until) < time.Hour {
		t.Fatalf("block: %+v %v", res, err)
	}
	if _, err := c.Unblock(ctx, control.AdminRequest{IP: "45.155.205.11", Duration: "1h", Reason: "a partner"}); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	l, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Listed != 1 || len(l.Decisions) != 2 || !l.Decisions[0].Listed || l.Decisions[0].Key.String() != "45.155.205.10/32" ||
		l.Decisions[0].Override == nil || l.Decisions[0].Override.Kind != "block" ||
		l.Decisions[1].Listed || l.Decisions[1].Override == nil || l.Decisions[1].Override.Kind != "unblock" || l.Version == 0 {
		t.Fatalf("list %+v", l)
	}
	ex, err := c.Explain(ctx, netip.MustParseAddr("45.155.205.10"))
	if err != nil || ex == nil || !ex.Listed || ex.Override == nil || ex.Override.Reason != "abuse report" {
		t.Fatalf("explain: %+v %v", ex, err)
	}
	if ex, err := c.Explain(ctx, netip.MustParseAddr("45.155.205.99")); ex != nil || err != nil {
		t.Fatalf("explain of an unknown address: %+v %v", ex, err)
	}
	if _, err := c.Clear(ctx, "45.155.205.10"); err != nil {
		t.Fatalf("clear: %v", err)
	}
	if _, err := c.Clear(ctx, "45.155.205.10"); err == nil || !strings.Contains(err.Error(), "no override") {
		t.Fatalf("clear twice: %v", err)
	}
	if _, err := c.Block(ctx, control.AdminRequest{IP: "45.155.205.12"}); err == nil {
		t.Fatal("a block without a duration was accepted")
	}
	waitFor(t, "the block to end", func() bool { return len(ts.srv.Core().Publisher().State().List) == 0 })
	ps, err := c.Probes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		found = found || p.Name == "http:tester"
	}
	if !found {
		t.Fatalf("probes %+v: the HTTP sensor is missing", ps)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestControlSocket: the operator's commands on the control socket,
// without a token, and the socket's mode.
func TestControlSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir, func(c *Config) { c.AdminToken = "" })
	fi, err := os.Stat(control.SocketPath(dir))
	if err != nil || fi.Mode().Perm() != 0o600 || ts.srv.ControlPath() != control.SocketPath(dir) {
		t.Fatalf("socket %v %v", fi, err)
	}
	adminOps(t, ts, control.Local(dir))
}

// TestAdminOverHTTP: the same commands over HTTP with the token, and a
// clear word when the admin API is off or the token is wrong.
func TestAdminOverHTTP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, t.TempDir(), nil)
	c, err := control.Remote(ts.http, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	adminOps(t, ts, c)
	wrong, _ := control.Remote(ts.http, "nope")
	var e *control.Error
	if _, err := wrong.List(context.Background()); !errors.As(err, &e) || e.Status != 401 || !strings.Contains(e.Message, "wrong admin token") {
		t.Fatalf("wrong token: %v", err)
	}

	off := startServer(t, t.TempDir(), func(c *Config) { c.AdminToken = "" })
	c, _ = control.Remote(off.http, "anything")
	if _, err := c.Block(context.Background(), control.AdminRequest{IP: "45.155.205.10", Duration: "1h"}); !errors.As(err, &e) ||
		e.Status != 403 || !strings.Contains(e.Message, "admin API is disabled") || !strings.Contains(e.Message, "control socket") {
		t.Fatalf("disabled admin API: %v", err)
	}
}

// TestSecondServerRefuses: a second server on the same data directory
// refuses to start, and does not disturb the first; the socket goes when
// the server stops.
func TestSecondServerRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	_, err := New(Config{DataDir: dir, DynfwListen: []string{"tcp://127.0.0.1:0"}, Logger: ts.srv.log})
	if !errors.Is(err, control.ErrRunning) {
		t.Fatalf("second server: %v, want control.ErrRunning", err)
	}
	if err := control.Local(dir).Ping(context.Background()); err != nil {
		t.Fatalf("the first server stopped answering: %v", err)
	}
	ts.stop()
	if _, err := os.Stat(control.SocketPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after the stop: %v", err)
	}
	startServer(t, dir, nil) // and the directory is free again
}

// minipotAt is a minipot login placed at ts.
func minipotAt(ip string, ts time.Time) []byte {
	b := msgpack.AppendMapHeader(nil, 4)
	b = msgpack.AppendString(b, "ts")
	b = msgpack.AppendInt(b, ts.Unix())
	b = msgpack.AppendString(b, "type")
	b = msgpack.AppendString(b, "telnet")
	b = msgpack.AppendString(b, "ip")
	b = msgpack.AppendString(b, ip)
	b = msgpack.AppendString(b, "action")
	b = msgpack.AppendString(b, "connect")
	return b
}

// TestEmitLocal: a probe message on the control channel is parsed as a
// probe's, placed at its ts within the window, refused outside it, and
// attributed to the device its topic names.
func TestEmitLocal(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	ts := startServer(t, t.TempDir(), func(c *Config) { c.AdminToken = "" })
	ts.srv.Core().AddSink(sink)
	c := control.Local(ts.dir)
	ctx := context.Background()
	past := time.Now().Add(-5 * time.Hour).Truncate(time.Second)
	res, err := c.Emit(ctx, control.EmitRequest{Topic: "minipot", Payload: minipotAt("45.155.205.20", past)})
	if err != nil || res.Accepted != 1 || res.Refused != 0 {
		t.Fatalf("emit: %+v %v", res, err)
	}
	res, err = c.Emit(ctx, control.EmitRequest{Topic: "minipot", Payload: minipotAt("45.155.205.21", time.Now().Add(-control.MaxPast-time.Hour))})
	if err != nil || res.Accepted != 0 || res.Refused != 1 || !strings.Contains(res.Errors[0], "outside the accepted window") {
		t.Fatalf("emit too old: %+v %v", res, err)
	}
	res, _ = c.Emit(ctx, control.EmitRequest{Topic: "minipot", Payload: []byte{0xc1}})
	if res.Refused != 1 || res.Accepted != 0 {
		t.Fatalf("emit of garbage: %+v", res)
	}
	token := devicetoken.FromBytes([28]byte{1, 2, 3})
	res, _ = c.Emit(ctx, control.EmitRequest{Topic: mqtt.DataTopic("", "0000000A00000B0C", token, "minipot"), Payload: minipotAt("45.155.205.22", time.Now())})
	if res.Accepted != 1 {
		t.Fatalf("emit for a device: %+v", res)
	}
	res, _ = c.Emit(ctx, control.EmitRequest{Topic: mqtt.DataTopic("", "0000000A00000B0C", token[:63]+"x", "minipot"), Payload: minipotAt("45.155.205.23", time.Now())})
	if res.Refused != 1 || !strings.Contains(res.Errors[0], "device_token") {
		t.Fatalf("emit with a bad token: %+v", res)
	}
	evs := sink.all()
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	if got := time.Unix(0, evs[0].Time); !got.Equal(past) || evs[0].Addr.String() != "45.155.205.20" || evs[0].Source != events.FromAdmin {
		t.Fatalf("placed event at %v (%+v), want %v", got, evs[0], past)
	}
	p, _ := ts.srv.Core().Probes().Get(evs[1].Probe)
	if p.Serial != "0000000A00000B0C" || p.Token != token {
		t.Fatalf("device event from probe %+v", p)
	}
	ps, _ := c.Probes(ctx)
	var got []string
	for _, p := range ps {
		if p.Events > 0 {
			got = append(got, fmt.Sprintf("%s %s %d", p.Serial, p.Token, p.Events))
		}
	}
	if want := []string{"  1", "0000000A00000B0C " + devicetoken.Fingerprint(token) + " 1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("probes with events %q, want %q", got, want)
	}
}
