package view

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/testenv"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/api_golden.txt from the current code")

// goldenStore is a store with a fixed set of rows around testNow, with the
// attacker text the exports must carry intact or defused: markup, formula
// starts, separators, invalid UTF-8, U+2028.
func goldenStore(t testing.TB) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, filepath.Join(t.TempDir(), "golden.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	traps := [][2]string{{"minipot_telnet", "login"}, {"minipot_ftp", "login"}, {"minipot_http", "message"},
		{"fwlogs", "small_port_scan"}, {"haas", "logged"}, {"minipot_smtp", "invalid"}, {"minipot_telnet", "connect"}, {"x<y>&z", "a,b"}}
	countries := []string{"CN", "US", "RU", "CZ", "", "DE", "BR", "IN", "NL", "XK"}
	words := []string{"admin", "123456", xssPassword, xssUsername, csvPassword, "a;b,c\"d", "\xff\xfe", "line\u2028sep", "ř/+?éab>", "", "root", "-1", "x\ty"}
	toks := []string{token1, token2, "3000000000000000000000000000000000000000000000000000000000000003"}
	var b store.Batch
	span := 380 * 24 * time.Hour
	for i := range 3000 {
		// Deterministic spread: a third in the last hour, a third in the
		// last week, the rest over the year.
		var ago time.Duration
		switch i % 3 {
		case 0:
			ago = time.Duration(i*7919%3600) * time.Second
		case 1:
			ago = time.Duration(i*104729%(7*24*3600)) * time.Second
		default:
			ago = time.Duration(int64(i)*15485863%int64(span/time.Second)) * time.Second
		}
		when := testNow.Add(-ago)
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i * 31 % 37)})
		if i%5 == 0 {
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i*13%11))
		}
		tr := traps[i*7%len(traps)]
		c := countries[i*3%len(countries)]
		tok := toks[i%len(toks)]
		b.Incidents = append(b.Incidents, store.Incident{Time: when, Serial: "sn" + tok[:4], Token: tok, Trap: tr[0], Action: tr[1], IP: ip, Country: c})
		b.Passwords = append(b.Passwords, store.Password{Time: when.Add(-time.Duration(i%60) * time.Second), Trap: "minipot_telnet",
			Username: words[i*5%len(words)], Password: words[i*11%len(words)], IP: ip, Country: c})
		b.Ports = append(b.Ports, store.Port{Time: when, Port: []uint16{22, 23, 80, 443, 8080, 53, 5060}[i%7], Protocol: []string{"TCP", "UDP", "other"}[i%3], IP: ip})
	}
	if err := st.Insert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rollup(ctx, testNow); err != nil {
		t.Fatal(err)
	}
	return st
}

var csrfValue = regexp.MustCompile(`name="csrf" value="[^"]*"`)

// goldenRun asks every resource of the API, in JSON and CSV, for three
// periods, and the pages, and returns the answers in one text.
func goldenRun(t *testing.T, src Source) []byte {
	t.Helper()
	e := newEnv(t, func(o *Options) { o.Source = src; o.APIWait = time.Minute; o.PageWait = time.Minute })
	dev := e.client(false)
	resp, body := e.confirmAdd(dev, token1)
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("adding a device: %d %.300s", resp.StatusCode, body)
	}
	var out bytes.Buffer
	record := func(label string, c *http.Client, path string) {
		resp, body := e.get(c, path)
		h := resp.Header
		if label == "page" {
			// Pages are long: their digest, with the form's token out.
			body = csrfValue.ReplaceAllString(body, `name="csrf" value="X"`)
			body = fmt.Sprintf("sha256 %x", sha256.Sum256([]byte(body)))
		}
		fmt.Fprintf(&out, "=== %s %s\n%d %q %q %q\n%s\n", label, path, resp.StatusCode, h.Get("Content-Type"), h.Get("Cache-Control"), h.Get("Content-Disposition"), body)
	}
	for _, period := range []string{"1h", "1w", "1y"} {
		for _, name := range stats.Names() {
			q := url.Values{"name": {name}, "period": {period}}
			clients := []*http.Client{nil}
			switch stats.Catalog[name].Param {
			case stats.NeedsIP:
				q.Set("ip", "192.0.2.5")
			case stats.NeedsPassword:
				q.Set("password", xssPassword)
			case stats.NeedsDevices:
				clients = append(clients, dev)
			}
			for i, c := range clients {
				label := fmt.Sprintf("api session=%d", i)
				record(label, c, "/api/resource?"+q.Encode())
				q.Set("format", "csv")
				record(label, c, "/api/resource?"+q.Encode())
				q.Del("format")
			}
		}
		for _, page := range []string{"/", "/attackers/", "/passwords/", "/incidents/", "/ports/", "/devices/",
			"/attackers/details/ip/192.0.2.5", "/attackers/details/ip/2001:db8::3", "/passwords/details/" + encodePassword(xssPassword),
			"/passwords/details/" + encodePassword("admin")} {
			record("page", dev, page+"?period="+period)
		}
	}
	return out.Bytes()
}

// TestAPIGolden pins the bytes of /api/resource (JSON and CSV) and of the
// pages computed from a real store through the stats engine, and through
// a second engine that reads everything from the shared Redis cache and
// has an empty store of its own: the typed rows and their cache encoding
// must give the answers the view gave when it passed maps around.
func TestAPIGolden(t *testing.T) {
	st := goldenStore(t)
	now := func() time.Time { return testNow }
	got := goldenRun(t, stats.New(st, stats.Options{Now: now}))
	path := filepath.Join("testdata", "api_golden.txt")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	goldenDiff(t, "engine", got, want)

	ctx := context.Background()
	rc, err := stats.NewRedis(ctx, "redis://127.0.0.1:6379/14")
	if err != nil {
		testenv.Skip(t, "Redis on 127.0.0.1:6379 is unreachable: "+err.Error())
		return
	}
	defer rc.Close()
	if _, err := rc.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	defer rc.Clear(ctx)
	goldenDiff(t, "computing engine with Redis", goldenRun(t, stats.New(st, stats.Options{Now: now, Shared: rc})), want)
	empty, err := backend.Open(ctx, filepath.Join(t.TempDir(), "empty.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	reader := stats.New(empty, stats.Options{Now: now, Shared: rc})
	goldenDiff(t, "engine reading Redis", goldenRun(t, reader), want)
	if n := reader.Stats().Computed; n != 0 {
		t.Errorf("the reading engine computed %d results instead of reading them", n)
	}
}

func goldenDiff(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	gs, ws := strings.Split(string(got), "\n=== "), strings.Split(string(want), "\n=== ")
	for i := range min(len(gs), len(ws)) {
		if gs[i] != ws[i] {
			t.Fatalf("%s: answer %d differs from the golden file:\ngot:\n%.3000s\nwant:\n%.3000s", what, i, gs[i], ws[i])
		}
	}
	t.Fatalf("%s: %d answers, golden file has %d", what, len(gs), len(ws))
}

// BenchmarkAPI: /api/resource answers, JSON and CSV, of results the
// engine holds (one resource of each shape and the widest list).
func BenchmarkAPI(b *testing.B) {
	st := goldenStore(b)
	src := stats.New(st, stats.Options{Now: func() time.Time { return testNow }})
	v, err := New(Options{Source: src, RateLimit: RateLimit{Disabled: true}, Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	v.Register(mux)
	var reqs []*http.Request
	for _, name := range []string{"all_incidents_graph", "top_countries_by_incidents_graph", "top_combinations_by_usages_list_long", "all_countries_by_incidents_list"} {
		for _, f := range []string{"json", "csv"} {
			reqs = append(reqs, httptest.NewRequest("GET", "/api/resource?period=1w&name="+name+"&format="+f, nil))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, req := range reqs {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	}
}
