package live

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
)

func TestSnapshotThenChanges(t *testing.T) {
	h, srv := newTestHub(t, Options{CountryInterval: 10 * time.Millisecond})
	h.ApplyList(3, 100, []netip.Prefix{pfx("1.1.1.1"), pfx("2.2.2.2")})
	h.SetState(StateConnected, 0)
	h.ApplyEvent(dynfw.Event{Name: "ftp_connect", Addr: netip.MustParseAddr("8.8.8.8")})
	h.ApplyDelta(dynfw.Delta{Serial: 101, Op: dynfw.Negative, Addr: pfx("2.2.2.2")})
	time.Sleep(50 * time.Millisecond) // let the batch of US go out before we connect

	stream, resp := openSSE(t, srv.URL+"/dynfw/events", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	first := next(t, stream, time.Second, "snapshot", "event", "delta", "status", "countries")
	if first.Event != "snapshot" {
		t.Fatalf("first frame %q", first.Event)
	}
	var s Snapshot
	first.decode(t, &s)
	if s.Status.Version != 3 || s.Status.Serial != 101 || s.Status.Size != 1 || s.Status.State != StateConnected ||
		len(s.Events) != 1 || s.Events[0].CC != "US" || len(s.Deltas) != 1 || s.Deltas[0].Op != "-" ||
		s.Total != 1 || s.Countries["US"] != 1 || s.Types["ftp_connect"] != 1 || s.Names["US"] == "" {
		t.Fatalf("snapshot %+v", s)
	}
	// The snapshot does not carry the list itself.
	if strings.Contains(first.Data, "1.1.1.1") {
		t.Fatal("snapshot contains the list")
	}

	h.ApplyEvent(dynfw.Event{Name: "telnet_login", Addr: netip.MustParseAddr("2.2.2.2")})
	var ev Event
	next(t, stream, time.Second, "event").decode(t, &ev)
	if ev.Name != "telnet_login" || ev.CC != "CZ" {
		t.Fatalf("event %+v", ev)
	}
	var c Counts
	next(t, stream, time.Second, "countries").decode(t, &c)
	if c.Total != 2 || c.Countries["CZ"] != 1 || c.Types["telnet_login"] != 1 || len(c.Countries) != 1 {
		t.Fatalf("countries %+v (only the changed entries are sent)", c)
	}
}

func TestKeepRecent(t *testing.T) {
	h := New(Options{Countries: testCC})
	defer h.Close()
	for i := range 100 {
		h.ApplyEvent(dynfw.Event{Name: fmt.Sprint("e", i), Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})})
		h.ApplyDelta(dynfw.Delta{Serial: uint64(i + 1), Op: dynfw.Positive, Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 32)})
	}
	s := h.Snapshot()
	if len(s.Events) != Recent || s.Events[0].Name != "e99" || s.Events[Recent-1].Name != "e70" {
		t.Fatalf("events %v", s.Events)
	}
	if len(s.Deltas) != Recent || s.Deltas[0].Serial != 100 || s.Status.Size != 100 || s.Total != 100 || s.Unknown != 100 {
		t.Fatalf("deltas %v status %+v", s.Deltas, s.Status)
	}
}

// TestCountersBounded: hostile event names cannot grow the counters
// without bound, and are cut and cleaned.
func TestCountersBounded(t *testing.T) {
	h := New(Options{Countries: testCC})
	defer h.Close()
	for i := range 2 * maxKeys {
		h.ApplyEvent(dynfw.Event{Name: fmt.Sprint("name-", i), Addr: netip.MustParseAddr("8.8.8.8")})
	}
	h.ApplyEvent(dynfw.Event{Name: "a\x00b\xffc" + strings.Repeat("x", 200), Addr: netip.MustParseAddr("8.8.8.8")})
	s := h.Snapshot()
	if len(s.Types) > maxKeys || s.Types["other"] < maxKeys {
		t.Fatalf("%d types, other %d", len(s.Types), s.Types["other"])
	}
	if n := s.Events[0].Name; len(n) > maxNameLen || !strings.HasPrefix(n, "a?b?c") {
		t.Fatalf("name %q", n)
	}
}

func TestLastEventIDGetsSnapshot(t *testing.T) {
	h, srv := newTestHub(t, Options{})
	h.ApplyEvent(dynfw.Event{Name: "x", Addr: netip.MustParseAddr("8.8.8.8")})
	stream, _ := openSSE(t, srv.URL+"/dynfw/events", http.Header{"Last-Event-ID": {"12345"}})
	first := next(t, stream, time.Second, "snapshot", "event")
	if first.Event != "snapshot" {
		t.Fatalf("first frame %q", first.Event)
	}
}

func TestHeartbeat(t *testing.T) {
	_, srv := newTestHub(t, Options{Heartbeat: 50 * time.Millisecond, CountryInterval: 10 * time.Millisecond})
	stream, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	next(t, stream, time.Second, "snapshot")
	next(t, stream, time.Second, ":comment")
}

func TestLimits(t *testing.T) {
	var mu sync.Mutex
	addr := "a"
	_, srv := newTestHub(t, Options{MaxClients: 2, MaxPerAddr: 1, ClientAddr: func(*http.Request) string {
		mu.Lock()
		defer mu.Unlock()
		return addr
	}})
	s1, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	next(t, s1, time.Second, "snapshot")
	if _, resp := openSSE(t, srv.URL+"/dynfw/events", nil); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second from one address: %d", resp.StatusCode)
	}
	mu.Lock()
	addr = "b"
	mu.Unlock()
	s2, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	next(t, s2, time.Second, "snapshot")
	mu.Lock()
	addr = "c"
	mu.Unlock()
	if _, resp := openSSE(t, srv.URL+"/dynfw/events", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %d", resp.StatusCode)
	}
}

func TestPeerKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":          "192.0.2.1",
		"[2001:db8:1:2:3::4]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:1":    "192.0.2.9",
		"[fe80::1%eth0]:1":        "fe80::/64",
		"not an address":          "not an address",
	} {
		if got := peerKey(&http.Request{RemoteAddr: in}); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestCloseEndsStreams: Close (for http.Server.RegisterOnShutdown) ends
// every stream, so a graceful shutdown does not wait for browsers.
func TestCloseEndsStreams(t *testing.T) {
	h, srv := newTestHub(t, Options{})
	stream, _ := openSSE(t, srv.URL+"/dynfw/events", nil)
	next(t, stream, time.Second, "snapshot")
	h.Close()
	select {
	case _, ok := <-stream:
		for ok {
			_, ok = <-stream
		}
	case <-time.After(2 * time.Second):
		t.Fatal("stream still open after Close")
	}
	waitFor(t, time.Second, "no clients", func() bool { return h.Clients() == 0 })
}
