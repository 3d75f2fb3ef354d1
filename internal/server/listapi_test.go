package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/webserver"
)

type listAnswer struct {
	Version uint64   `json:"version"`
	Serial  uint64   `json:"serial"`
	Count   int      `json:"count"`
	List    []string `json:"list"`
}

// rawClient does not add Accept-Encoding or decompress, so that the test
// sees what the server sends.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func getList(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestListAPI: GET /api/v1/list is the last published list, with an ETag
// of its version and serial, 304 for a matching If-None-Match, gzip for
// clients that accept it, Cache-Control, a per-client rate limit (429 with
// Retry-After), and counters in /metrics.
func TestListAPI(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *Config) { c.ListRateLimit = 60 })
	core := ts.srv.Core()
	pub := core.Publisher()
	until := time.Now().Add(time.Hour)
	for _, a := range []string{"45.155.205.9", "2a00:1450::1", "45.155.205.10"} {
		key, _ := dynfw.ParseAddr(a, true)
		if err := core.Block(key, until, "test"); err != nil {
			t.Fatal(err)
		}
	}
	// The API follows the lists: wait for the one after the blocks.
	for p := pub.Published(); p.Serial < 3; p = pub.Published() {
		time.Sleep(10 * time.Millisecond)
	}
	url := ts.http + "/api/v1/list"
	resp, body := getList(t, url)
	var l listAnswer
	if err := json.Unmarshal(body, &l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v: %s", resp.StatusCode, err, body)
	}
	p := pub.Published()
	if l.Version != p.Version || l.Serial != 3 || l.Count != 3 || strings.Join(l.List, " ") != "45.155.205.9 45.155.205.10 2a00:1450::1" {
		t.Fatalf("list %+v", l)
	}
	etag := fmt.Sprintf(`"%d-3"`, p.Version)
	if resp.Header.Get("ETag") != etag || resp.Header.Get("Cache-Control") != "public, max-age=1" ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("headers %v", resp.Header)
	}
	resp, b := getList(t, url, "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 || resp.Header.Get("ETag") != etag {
		t.Fatalf("conditional GET: %d %v %q", resp.StatusCode, resp.Header, b)
	}
	resp, b = getList(t, url, "If-None-Match", `"1-1"`)
	if resp.StatusCode != 200 || !bytes.Equal(b, body) {
		t.Fatalf("stale ETag: %d", resp.StatusCode)
	}
	resp, b = getList(t, url, "Accept-Encoding", "gzip, deflate")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip: %d %v", resp.StatusCode, resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, body) {
		t.Fatalf("gzip body differs:\n%s\n%s", plain, body)
	}
	gzTag := resp.Header.Get("ETag")
	if gzTag == etag || !strings.HasPrefix(gzTag, strings.TrimSuffix(etag, `"`)) {
		t.Fatalf("gzip ETag %s", gzTag)
	}
	if resp, _ := getList(t, url, "Accept-Encoding", "gzip", "If-None-Match", gzTag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional gzip GET: %d", resp.StatusCode)
	}
	// Six requests so far; the burst is ten.
	limited := 0
	for i := 0; i < 10 && limited == 0; i++ {
		resp, _ := getList(t, url, "If-None-Match", etag)
		switch resp.StatusCode {
		case http.StatusNotModified:
		case http.StatusTooManyRequests:
			limited = i + 1
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if limited == 0 {
		t.Fatal("never rate-limited")
	}
	_, m := getList(t, ts.http+"/metrics")
	for _, want := range []string{`sentinel_http_list_requests_total{result="full"} 2`, `sentinel_http_list_requests_total{result="gzip"} 1`,
		`sentinel_http_list_requests_total{result="rate_limited"} 1`, "sentinel_http_connections "} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestHTTPIngestRejectsCounted: whole-request refusals of the HTTP ingest
// reach /metrics with their reason; trailing data is one of them. So do
// refused events of an accepted request, and the log holds nothing the
// sender typed.
func TestHTTPIngestRejectsCounted(t *testing.T) {
	logs := &syncBuffer{}
	ts := startServer(t, t.TempDir(), func(c *Config) { c.Logger = capturingLogger(logs) })
	js, _ := json.Marshal(evil)
	hostile := fmt.Sprintf(`[{"event":%s,"ip":"45.155.205.5"},{"event":"telnet_login","ip":%s,"password":%s},{"event":"telnet_login","ip":"45.155.205.6"}]`,
		js, js, js)
	if code, body := post(t, ts.http+"/api/v1/events", sensorToken, hostile); code != 202 || body["accepted"] != 1.0 || body["rejected"] != 2.0 {
		t.Fatalf("events with hostile fields: %d %s", code, body)
	}
	if code, _ := post(t, ts.http+"/api/v1/events", sensorToken, `{"event":"`+strings.Repeat("x", 10)+`",`+evil); code != 400 {
		t.Fatalf("hostile bad JSON: %d", code)
	}
	if code, _ := post(t, ts.http+"/api/v1/events", sensorToken, `{"event":"telnet_login","ip":"45.155.205.5"} and more`); code != 400 {
		t.Fatalf("trailing data: %d", code)
	}
	if code, _ := post(t, ts.http+"/api/v1/events", sensorToken, `{"event":`); code != 400 {
		t.Fatalf("bad JSON: %d", code)
	}
	if code, _ := post(t, ts.http+"/api/v1/events", sensorToken, "["+strings.Repeat(" ", 2<<20)+"]"); code != 413 {
		t.Fatalf("too large: %d", code)
	}
	if code, _ := post(t, ts.http+"/api/v1/events", "wrong-token-0123456789", `{}`); code != 401 {
		t.Fatalf("unauthorized: %d", code)
	}
	_, m := getList(t, ts.http+"/metrics")
	for _, want := range []string{"trailing_data", "too_large", "unauthorized"} {
		line := `sentinel_ingest_http_requests_rejected_total{reason="` + want + `"} 1`
		if !bytes.Contains(m, []byte(line)) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if !bytes.Contains(m, []byte(`sentinel_ingest_http_requests_rejected_total{reason="bad_json"} 2`)) {
		t.Error("the second bad JSON request is not counted")
	}
	if !bytes.Contains(m, []byte(`sentinel_ingest_http_requests_rejected_total{reason="bad_shape"} 0`)) {
		t.Error("the reasons without refusals are not listed")
	}
	for _, line := range []string{`sentinel_ingest_http_rejected_total{reason="bad_type"} 1`, `sentinel_ingest_http_rejected_total{reason="bad_address"} 1`} {
		if !bytes.Contains(m, []byte(line)) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if n := ts.srv.Core().Counters().Processed; n != 1 {
		t.Fatalf("%d events processed, want only the good one", n)
	}
	if !strings.Contains(logs.String(), "http ingest: events refused") || !strings.Contains(logs.String(), "reason=bad_json") {
		t.Errorf("the refusals are not logged:\n%s", logs)
	}
	assertNotLogged(t, logs.String())
}

// TestHTTPServerBudgets: the server's listener takes its timeouts and cap
// from Config.HTTP: an idle keep-alive connection is closed, a connection
// over the cap is refused and counted.
func TestHTTPServerBudgets(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *Config) {
		c.HTTP = webserver.Config{IdleTimeout: 100 * time.Millisecond, MaxConns: 1}
	})
	addr := strings.TrimPrefix(ts.http, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	// The one slot is taken: another connection is closed unanswered.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c2, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := io.Copy(io.Discard, c2); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("over the cap: %d bytes, %v", n, err)
	}
	// The idle connection is closed by the server.
	if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the idle keep-alive connection stayed open")
	}
	for ts.srv.httpSrv.Stats().Open > 0 {
		time.Sleep(time.Millisecond)
	}
	_, m := getList(t, ts.http+"/metrics")
	if !bytes.Contains(m, []byte("sentinel_http_connections_refused_total 1")) {
		t.Error("the refused connection is not counted")
	}
}
