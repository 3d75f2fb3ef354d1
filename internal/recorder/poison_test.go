package recorder_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/httpin"
	"github.com/dynfw/sentinel/internal/msgpack"
	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/recorder"
	"github.com/dynfw/sentinel/internal/scoring"
	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/store/storetest"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/dynfw/sentinel/internal/view"
	"github.com/dynfw/sentinel/zmtp"
)

const sensorToken = "sensor-token-0123456789"

// backends opens a fresh store of each kind.
var backends = map[string]func(t *testing.T) store.Store{
	"sqlite": func(t *testing.T) store.Store {
		return openDSN(t, filepath.Join(t.TempDir(), "stats.db"))
	},
	"postgres": func(t *testing.T) store.Store {
		return openDSN(t, storetest.PostgresSchema(t))
	},
}

func openDSN(t testing.TB, dsn string) store.Store {
	t.Helper()
	st, err := backend.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// signalSink passes events to the recorder and says how many arrived, so
// that the test waits on a channel rather than a clock.
type signalSink struct {
	rec *recorder.Recorder
	n   chan int
}

func (s signalSink) Events(evs []events.Event) {
	s.rec.Events(evs)
	s.n <- len(evs)
}

// pipeline is a Sentinel server (HTTP and ZMQ ingest) whose events a
// recorder writes into a store, with Sentinel View on the same listener.
type pipeline struct {
	t    *testing.T
	rec  *recorder.Recorder
	st   store.Store
	base string
	push *zmtp.Socket
	got  chan int
	// fed are the passwords the recorder gave the password checker.
	fedMu sync.Mutex
	fed   map[string]int64
}

func startPipeline(t *testing.T, st store.Store) *pipeline {
	t.Helper()
	srv, err := server.New(server.Config{
		DataDir:      t.TempDir(),
		DynfwListen:  []string{"tcp://127.0.0.1:0"},
		IngestListen: []string{"tcp://127.0.0.1:0"},
		HTTPListen:   "127.0.0.1:0",
		Scoring:      scoring.DefaultConfig(),
		HTTPTokens:   []httpin.Token{{Name: "tester", Token: sensorToken}},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, st: st, base: "http://" + srv.HTTPAddr().String(), got: make(chan int, 64), fed: map[string]int64{}}
	corpus, err := passwords.OpenCorpus(filepath.Join(t.TempDir(), "passwords.idx"), passwords.CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { corpus.Close() })
	corpus.Register(srv.Mux())
	p.rec = recorder.New(recorder.Options{Store: st, Probes: srv.Core().Probes(), Passwords: func(trap, pw string) {
		src, _ := passwords.ParseSource(trap)
		corpus.Add(pw, src)
		p.fedMu.Lock()
		p.fed[pw]++
		p.fedMu.Unlock()
	}})
	srv.Core().AddSink(signalSink{p.rec, p.got})
	v, err := view.New(view.Options{Source: stats.New(st, stats.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	v.Register(srv.Mux())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	if p.push, err = zmtp.NewSocket(zmtp.PUSH, zmtp.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.push.Close() })
	p.push.Dial("tcp://" + srv.IngestAddrs()[0].String())
	return p
}

// postJSON posts a raw JSON body to the HTTP ingest.
func (p *pipeline) postJSON(body string, accepted int) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.base+"/api/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sensorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct{ Accepted int }
	json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode != http.StatusAccepted || res.Accepted != accepted {
		p.t.Fatalf("POST: %d, %d accepted, want 202 and %d", resp.StatusCode, res.Accepted, accepted)
	}
}

// login sends a minipot telnet login through the ZMQ probe ingest, with
// the strings as raw msgpack str bytes.
func (p *pipeline) login(ip, username, password string) {
	p.t.Helper()
	b := msgpack.AppendMapHeader(nil, 5)
	for _, kv := range [][2]string{{"type", "telnet"}, {"ip", ip}, {"action", "login"}} {
		b = msgpack.AppendString(b, kv[0])
		b = msgpack.AppendString(b, kv[1])
	}
	b = msgpack.AppendString(b, "ts")
	b = msgpack.AppendUint(b, uint64(time.Now().Unix()))
	b = msgpack.AppendString(b, "data")
	b = msgpack.AppendMapHeader(b, 2)
	b = msgpack.AppendString(b, "username")
	b = msgpack.AppendString(b, username)
	b = msgpack.AppendString(b, "password")
	b = msgpack.AppendString(b, password)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.push.Send(ctx, zmtp.Message{[]byte("sentinel/collect/minipot"), b}); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns once n events reached the recorder.
func (p *pipeline) wait(n int) {
	p.t.Helper()
	timeout := time.After(30 * time.Second)
	for n > 0 {
		select {
		case k := <-p.got:
			n -= k
		case <-timeout:
			p.t.Fatalf("%d events never reached the recorder", n)
		}
	}
}

// credentials reads back every stored (username, password) pair.
func (p *pipeline) credentials() map[[2]string]int64 {
	p.t.Helper()
	now := time.Now()
	rows, err := p.st.Query(context.Background(), store.Query{Table: store.Passwords, From: now.Add(-time.Hour), To: now.Add(time.Hour),
		GroupBy: []store.Dim{store.DimUsername, store.DimPassword}})
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[[2]string]int64{}
	for _, r := range rows {
		out[[2]string{r.Keys[0], r.Keys[1]}] = r.Value
	}
	return out
}

// TestPoisonStringsThroughIngest is fault 5 of issue 10: a password with
// a NUL byte, one with invalid UTF-8 and one cut mid-character at the
// 1024-byte limit, and a username with a NUL, sent through the HTTP and
// the ZMQ ingest, used to fail every later insert into PostgreSQL (the
// batch went back to the head of the queue). Now they are stored as
// escaped text, the same on SQLite and PostgreSQL, the rows after them
// arrive, and the view shows what was stored.
func TestPoisonStringsThroughIngest(t *testing.T) {
	euro := strings.Repeat("€", 341) // 1023 bytes
	want := map[[2]string]int64{
		// HTTP: JSON \u0000 is a NUL; encoding/json already turns
		// invalid UTF-8 into U+FFFD; the 1024-byte cut falls inside
		// the 342nd "€".
		{"root", `a\x00b`}:         1,
		{"root", "pw\uFFFD\uFFFD"}: 1,
		{"root", euro}:             1,
		{`ro\x00ot`, "x"}:          1,
		// ZMQ: msgpack strings are raw bytes.
		{"root", `z\x00`}:                         1,
		{"root", `z\xff\xfe`}:                     1,
		{"root", "zz" + strings.Repeat("€", 340)}: 1,
		{`u\xc3`, "y"}:                            1,
		// Backslashes stay, but for one before "x" and two hex
		// digits; tabs and newlines stay.
		{`back\slash \\x5cx41 C:\x5cx41`, "tab\tnewline\n" + `\x0d\x1b[31m`}: 1,
		// Normal rows after the poison.
		{"admin", "hunter2"}: 2,
		{"guest", "guest"}:   1,
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := startPipeline(t, open(t))
			ctx := context.Background()
			p.postJSON(`[{"event":"telnet_login","ip":"192.0.2.1","username":"root","password":"a\u0000b"},`+
				`{"event":"telnet_login","ip":"192.0.2.1","username":"root","password":"pw`+"\xff\xfe"+`"},`+
				`{"event":"telnet_login","ip":"192.0.2.1","username":"root","password":"`+euro+`€"},`+
				`{"event":"telnet_login","ip":"192.0.2.1","username":"ro\u0000ot","password":"x"}]`, 4)
			p.login("192.0.2.2", "root", "z\x00")
			p.login("192.0.2.2", "root", "z\xff\xfe")
			p.login("192.0.2.2", "root", "zz"+strings.Repeat("€", 342))
			p.login("192.0.2.2", "u\xc3", "y")
			p.login("192.0.2.2", `back\slash \\x41 C:\x41`, "tab\tnewline\n\r\x1b[31m")
			p.wait(9)
			if err := p.rec.Flush(ctx); err != nil {
				t.Fatalf("flush after the poison strings: %v", err)
			}
			p.postJSON(`{"event":"telnet_login","ip":"192.0.2.3","username":"admin","password":"hunter2"}`, 1)
			p.login("192.0.2.4", "admin", "hunter2")
			p.login("192.0.2.4", "guest", "guest")
			p.wait(3)
			if err := p.rec.Flush(ctx); err != nil {
				t.Fatalf("flush of normal rows: %v", err)
			}
			if s := p.rec.Stats(); s.Inserted != 2*12 || s.Queued != 0 || s.Dropped != 0 || s.Failed != 0 {
				t.Errorf("recorder %+v, want 24 rows inserted (12 incidents, 12 passwords)", s)
			}
			got := p.credentials()
			for k, n := range want {
				if got[k] != n {
					t.Errorf("stored %q/%q %d times, want %d", k[0], k[1], got[k], n)
				}
			}
			for k, n := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("unexpected row %q/%q (%d)", k[0], k[1], n)
				}
			}

			// The password checker got the stored strings, and its
			// range API answers for them.
			stored := map[string]int64{}
			for k, n := range got {
				stored[k[1]] += n
			}
			p.fedMu.Lock()
			if fmt.Sprint(p.fed) != fmt.Sprint(stored) {
				t.Errorf("password checker fed %v, stored %v", p.fed, stored)
			}
			p.fedMu.Unlock()
			for _, pw := range []string{`a\x00b`, `z\xff\xfe`, euro} {
				h := passwords.HashPassword(pw)
				hx := strings.ToUpper(hex.EncodeToString(h[:]))
				_, body := testenv.Get(t, p.base+"/range/"+hx[:5])
				if !strings.Contains(body, hx[5:]+":1") {
					t.Errorf("range API does not know %q: %s", pw, body)
				}
			}

			// The view's API gives the stored strings back as they are.
			resp, err := http.Get(p.base + "/api/resource?name=top_combinations_by_usages_list_long&period=1h")
			if err != nil {
				t.Fatal(err)
			}
			var api struct {
				Data []struct {
					Username, Password string
					Count              int64
				}
			}
			err = json.NewDecoder(resp.Body).Decode(&api)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("API: %d %v", resp.StatusCode, err)
			}
			shown := map[[2]string]int64{}
			for _, d := range api.Data {
				shown[[2]string{d.Username, d.Password}] = d.Count
			}
			for k, n := range want {
				if shown[k] != n {
					t.Errorf("API shows %q/%q %d times, want %d", k[0], k[1], shown[k], n)
				}
			}
			// And the pages show them as text.
			resp, err = http.Get(p.base + "/passwords/?period=1h")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, pw := range []string{`a\x00b`, `z\x00`, `z\xff\xfe`} {
				if !strings.Contains(string(page), ">"+template.HTMLEscapeString(pw)+"<") {
					t.Errorf("passwords page does not show %q", pw)
				}
			}
			resp, err = http.Get(p.base + "/passwords/details/" + b64(`z\xff\xfe`) + "?period=1h")
			if err != nil {
				t.Fatal(err)
			}
			page, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(page), `<code>z\xff\xfe</code>`) {
				t.Errorf("password page: %d, %s", resp.StatusCode, page)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
