package live

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/webserver"
)

// TestStreamOutlivesServerTimeouts: served by the hardened web server of
// sentinel run and view, whose read, write and idle timeouts are far
// shorter here than the stream's life, the event stream stays open and
// keeps delivering: the server's write timeout does not apply to it (the
// hub sets its own deadline per batch), nor do the read and idle timeouts.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	const budget = 100 * time.Millisecond
	h := New(Options{Countries: testCC})
	mux := http.NewServeMux()
	h.Register(mux)
	ws := webserver.New(webserver.Config{ReadHeaderTimeout: budget, ReadTimeout: budget, WriteTimeout: budget, IdleTimeout: budget,
		Logger: slog.New(slog.DiscardHandler)}, mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ws.Serve(ln); close(done) }()
	t.Cleanup(func() { h.Close(); ws.Close(); <-done })

	stream, _ := openSSE(t, "http://"+ln.Addr().String()+"/dynfw/events", nil)
	next(t, stream, time.Second, "snapshot")
	for i := range 3 {
		// Several budgets pass between frames: the server's deadlines
		// have expired by the time the next one is written.
		time.Sleep(3 * budget)
		h.ApplyEvent(dynfw.Event{Name: "telnet_login", Addr: netip.MustParseAddr("2.2.2.2")})
		var ev Event
		next(t, stream, 2*time.Second, "event").decode(t, &ev)
		if ev.Name != "telnet_login" {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if h.Clients() != 1 {
		t.Fatalf("%d streams", h.Clients())
	}
}
