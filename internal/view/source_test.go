package view

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
)

// Attacker-controlled strings the fake source returns.
const (
	xssPassword = `<script>alert(1)</script>`
	xssUsername = `"><img src=x onerror=alert(1)>`
	csvPassword = `=cmd|' /C calc'!A0`
)

var testNow = time.Date(2025, 1, 20, 12, 0, 0, 0, time.UTC)

// fakeSource returns realistic data for every catalogue resource and
// records the requests.
type fakeSource struct {
	mu    sync.Mutex
	reqs  []stats.Request
	err   map[string]error // by resource name
	block bool             // wait for ctx to end
	empty bool             // return empty shapes
}

func (f *fakeSource) requests(name string) []stats.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []stats.Request
	for _, r := range f.reqs {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeSource) Fetch(ctx context.Context, fe stats.Fetch) (stats.Result, error) {
	req := fe.Request
	f.mu.Lock()
	req.DeviceTokens = slices.Clone(req.DeviceTokens)
	f.reqs = append(f.reqs, req)
	err := f.err[req.Name]
	f.mu.Unlock()
	if err != nil {
		return stats.Result{}, err
	}
	if f.block {
		<-ctx.Done()
		return stats.Result{}, ctx.Err()
	}
	res, p := fe.Resource, fe.Period
	out := stats.Result{Name: req.Name, Resource: res, Period: p, Computed: testNow}
	if f.empty {
		switch res.Shape {
		case stats.Graph:
			out.Graph = []stats.GraphPoint{}
		case stats.MultiGraph:
			out.Multi = stats.TopSeries{Labels: []string{}, Buckets: []string{}, Counts: [][]int64{}}
		case stats.List:
			out.List = []stats.ListRow{}
		case stats.Map:
			out.Countries = map[string]int64{}
		}
		return out, nil
	}
	end := testNow.Truncate(p.Bucket)
	buckets := p.Buckets(end.Add(-p.Span), end)
	switch res.Shape {
	case stats.Graph:
		pts := make([]stats.GraphPoint, len(buckets))
		for i, b := range buckets {
			pts[i] = stats.GraphPoint{Bucket: p.BucketLabel(b), Count: int64((i*37)%50 + i)}
		}
		out.Graph = pts
	case stats.MultiGraph:
		labels := groupLabels(res.GroupBy)
		g := stats.TopSeries{Labels: labels}
		for bi, b := range buckets {
			g.Buckets = append(g.Buckets, p.BucketLabel(b))
			row := make([]int64, len(labels))
			for i := range labels {
				row[i] = int64((bi+1)*(len(labels)-i) + i)
			}
			g.Counts = append(g.Counts, row)
		}
		out.Multi = g
	case stats.List:
		var rows []stats.ListRow
		for i := range 5 {
			row := stats.ListRow{Count: int64(1000 / (i + 1))}
			for _, f := range res.Fields {
				row.Fields = append(row.Fields, fieldValue(f, i))
			}
			rows = append(rows, row)
		}
		out.List = rows
	case stats.Map:
		out.Countries = map[string]int64{"CN": 12000, "US": 3100, "CZ": 42, "RU": 900, "XK": 3}
	case stats.Seen:
		out.Seen = &stats.SeenData{First: end.Add(-p.Span / 2), Last: end}
	}
	return out, nil
}

func groupLabels(dims []store.Dim) []string {
	switch dims[0] {
	case store.DimCountry:
		return []string{"CN", "US", "RU", "DE", "CZ", "BR", "IN"}
	case store.DimTrap:
		return []string{"minipot_telnet", "minipot_http", "fwlogs"}
	case store.DimAction:
		return []string{"connect", "login", "small_port_scan"}
	case store.DimPassword:
		return []string{"123456", xssPassword, "admin", csvPassword}
	case store.DimProtocol:
		return []string{"TCP/22", "TCP/23", "UDP/53"}
	}
	return []string{"a", "b"}
}

func fieldValue(f string, i int) string {
	vals := map[string][]string{
		"country":  {"CN", "US", "", "CZ", "XK"},
		"ip":       {"192.0.2.1", "2001:db8::1", "198.51.100.7", "203.0.113.9", "192.0.2.200"},
		"password": {xssPassword, "123456", csvPassword, "a-very-long-password-indeed", "admin"},
		"username": {xssUsername, "root", "admin", "-", "user"},
		"source":   {"minipot_telnet", "minipot_http", "fwlogs", "minipot_smtp", "minipot_ftp"},
		"action":   {"login", "connect", "small_port_scan", "message", "invalid"},
		"port":     {"TCP/22", "TCP/23", "UDP/53", "TCP/80", "TCP/443"},
	}
	if v, ok := vals[f]; ok {
		return v[i%len(v)]
	}
	return fmt.Sprint(f, i)
}

// testEnv is a view on an httptest server.
type testEnv struct {
	t   *testing.T
	v   *View
	src *fakeSource
	srv *httptest.Server
}

func newEnv(t testing.TB, mod func(*Options)) *testEnv {
	src := &fakeSource{}
	o := Options{Source: src, SessionKey: make([]byte, 32), Now: func() time.Time { return testNow },
		RateLimit: RateLimit{Disabled: true}}
	o.Devices = func(ctx context.Context, tokens []string) ([]store.Device, error) {
		var out []store.Device
		for _, t := range tokens {
			if t[0] == '1' {
				out = append(out, store.Device{Serial: "0000000A0000" + t[60:], Token: t,
					FirstSeen: testNow.Add(-48 * time.Hour), LastSeen: testNow.Add(-time.Hour)})
			}
		}
		return out, nil
	}
	if mod != nil {
		mod(&o)
	}
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	v.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tt, _ := t.(*testing.T)
	return &testEnv{t: tt, v: v, src: src, srv: srv}
}

// client returns a client with its own cookie jar that does not follow
// redirects unless follow is set.
func (e *testEnv) client(follow bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}
