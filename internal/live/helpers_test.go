package live

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ccMap is a deterministic Countries for tests.
type ccMap map[string]string

func (m ccMap) Country(a netip.Addr) string { return m[a.String()] }

var testCC = ccMap{"8.8.8.8": "US", "1.1.1.1": "AU", "2.2.2.2": "CZ", "3.3.3.3": "CZ", "45.155.205.30": "NL"}

func newTestHub(t *testing.T, o Options) (*Hub, *httptest.Server) {
	t.Helper()
	if o.Countries == nil {
		o.Countries = testCC
	}
	h := New(o)
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, srv
}

type sseEvent struct {
	ID, Event, Data string
	At              time.Time
}

func (e sseEvent) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(e.Data), v); err != nil {
		t.Fatalf("%s: %v in %q", e.Event, err, e.Data)
	}
}

// openSSE connects to the event stream and parses it into a channel,
// comments included (as Event ":comment").
func openSSE(t *testing.T, url string, hdr http.Header) (<-chan sseEvent, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != 200 {
		return nil, resp
	}
	ch := make(chan sseEvent, 100000)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					ev.At = time.Now()
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.Event = ":comment"
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					ev.ID = v
				case "event":
					ev.Event = v
				case "data":
					ev.Data += v
				}
			}
		}
	}()
	return ch, resp
}

// next returns the next event of one of the given types, skipping others.
func next(t *testing.T, ch <-chan sseEvent, within time.Duration, types ...string) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended while waiting for %v", types)
			}
			for _, ty := range types {
				if ev.Event == ty {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v within %v", types, within)
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pfx(s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a := netip.MustParseAddr(s)
		return netip.PrefixFrom(a, a.BitLen())
	}
	return p
}
