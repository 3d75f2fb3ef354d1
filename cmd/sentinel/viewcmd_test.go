package main

// Tests of `sentinel view`, run in this process against an SQLite file
// that the test fills as the ingest process would.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/greylist"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/testenv"
)

// viewProc is a `sentinel view` running in this process.
type viewProc struct {
	base string
	log  *lockedBuf
	stop func() int // cancels and returns the exit code
}

func startViewCmd(t *testing.T, args ...string) *viewProc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	p := &viewProc{base: "http://" + addr, log: &lockedBuf{}}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"view", "--http-listen", addr}, args...), io.Discard, p.log)
	}()
	stopped := false
	p.stop = func() int {
		stopped = true
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(20 * time.Second):
			t.Fatal("sentinel view did not stop")
			return -1
		}
	}
	t.Cleanup(func() {
		if !stopped {
			p.stop()
		}
		if t.Failed() {
			t.Logf("sentinel view log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case c := <-code:
			t.Fatalf("sentinel view exited with %d:\n%s", c, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel view did not start:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sha1Hex(pw string) string {
	s := sha1.Sum([]byte(pw))
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// rangeCount is the count /range/ reports for pw, 0 when absent.
func rangeCount(t *testing.T, base, pw string) int {
	t.Helper()
	h := sha1Hex(pw)
	resp, body := testenv.Get(t, base+"/range/"+h[:5])
	if resp.StatusCode != 200 {
		t.Fatalf("/range/%s: %d %s", h[:5], resp.StatusCode, body)
	}
	for _, line := range strings.Split(body, "\r\n") {
		if suffix, n, ok := strings.Cut(line, ":"); ok && suffix == h[5:] {
			c, _ := strconv.Atoi(n)
			return c
		}
	}
	return 0
}

// apiCount is the count and sources the reference API reports for pw.
func apiCount(t *testing.T, base, pw string) (uint64, []string) {
	t.Helper()
	h := strings.ToLower(sha1Hex(pw))
	resp, err := http.Post(base+"/passcheck/apiv1/", "application/json",
		strings.NewReader(`{"msg_type": "request", "hash": "`+h[:6]+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Data   []struct {
			Hash    string   `json:"hash"`
			Count   uint64   `json:"count"`
			Sources []string `json:"sources"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/passcheck/apiv1/: %d %v", resp.StatusCode, err)
	}
	for _, d := range out.Data {
		if d.Hash == h {
			return d.Count, d.Sources
		}
	}
	return 0, nil
}

// TestViewPasswordChecker: `sentinel view` serves the password checker
// from its own index, which follows the passwords that another process
// stores, each counted once however many passes and restarts there are;
// `sentinel passwords import` works on its data directory.
func TestViewPasswordChecker(t *testing.T) {
	db := filepath.Join(t.TempDir(), "stats.db")
	st, err := backend.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := filepath.Join(t.TempDir(), "view")
	args := []string{"--db", db, "--data", data, "--passwords-poll", "50ms", "--passwords-settle", "1s"}
	insertPasswords(t, st, "stored before the start", time.Now().Add(-time.Hour), 1)
	v := startViewCmd(t, args...)

	if n := rangeCount(t, v.base, "stored before the start"); n != 1 {
		t.Errorf("a password stored before the start: %d, want 1", n)
	}
	want := map[string]int{"stored before the start": 1}
	// Passwords stored while the view runs appear within a bounded
	// time; those already there do not change meanwhile.
	for i, pw := range []string{"alpha", "beta", "gamma"} {
		insertPasswords(t, st, pw, time.Now(), i+2)
		want[pw] = i + 2
		waitFor(t, 15*time.Second, pw+" in /range/", func() bool { return rangeCount(t, v.base, pw) > 0 })
		for p, n := range want {
			if got := rangeCount(t, v.base, p); got != n {
				t.Errorf("after %s: /range/ counts %q %d times, want %d", pw, p, got, n)
			}
		}
	}
	if n, src := apiCount(t, v.base, "beta"); n != 3 || strings.Join(src, ",") != "telnet" {
		t.Errorf("/passcheck/apiv1/: beta %d %v, want 3 [telnet]", n, src)
	}
	// The page, in the layout, with the navigation to it; no greylist.
	resp, page := testenv.Get(t, v.base+"/passcheck/")
	if resp.StatusCode != 200 || !strings.Contains(page, `<a href="/passcheck/" aria-current="page">Password check</a>`) ||
		strings.Contains(page, "/greylist-data/") {
		t.Errorf("/passcheck/: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := testenv.Get(t, v.base+"/greylist-data/"); resp.StatusCode != 404 {
		t.Errorf("/greylist-data/ without --greylist-dir: %d", resp.StatusCode)
	}
	if c := v.stop(); c != 0 {
		t.Fatalf("exit code %d", c)
	}

	// An HIBP import into the view's data directory, then a restart: the
	// imported hash is served and the stored ones are counted once.
	hibp := filepath.Join(t.TempDir(), "hibp.txt")
	os.WriteFile(hibp, []byte(sha1Hex("imported")+":7\n"+sha1Hex("alpha")+":100\n"), 0o644)
	var out, errOut bytes.Buffer
	if c := run(context.Background(), []string{"passwords", "import", "--data", data, hibp}, &out, &errOut); c != 0 {
		t.Fatalf("import: %d %s", c, errOut.String())
	}
	v = startViewCmd(t, args...)
	want["imported"] = 7
	want["alpha"] += 100 // the range API adds the imported count
	for p, n := range want {
		if got := rangeCount(t, v.base, p); got != n {
			t.Errorf("after the restart: /range/ counts %q %d times, want %d", p, got, n)
		}
	}
	if n, _ := apiCount(t, v.base, "alpha"); n != 2 {
		t.Errorf("/passcheck/apiv1/ alpha: %d, want the 2 honeypot attempts", n)
	}
}

// TestViewGreylist: --greylist-dir serves a greylist directory read-only,
// inside the site's layout, with the licence from [greylist].
func TestViewGreylist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "greylist")
	w, err := greylist.Open(dir, greylist.Options{LicenseURL: "https://example.org/terms", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	entries := []greylist.Entry{{Addr: parsePrefixMust(t, "192.0.2.7"), Tags: []string{"telnet"}}}
	if err := w.Snapshot(time.Now().Add(-time.Hour), entries); err != nil {
		t.Fatal(err)
	}
	w.Close()
	os.WriteFile(filepath.Join(dir, ".tmp-greylist-latest.csv-1"), []byte("a writer's temporary file"), 0o644)
	before := dirState(t, dir)
	cfg := filepath.Join(t.TempDir(), "view.toml")
	os.WriteFile(cfg, []byte("[greylist]\nlicense-url = \"https://example.org/terms\"\nattribution = \"Example <CERT>\"\n"), 0o644)
	v := startViewCmd(t, "--db", filepath.Join(t.TempDir(), "stats.db"), "--data", t.TempDir(), "--greylist-dir", dir, "--config", cfg)

	resp, page := testenv.Get(t, v.base+"/greylist-data/")
	if resp.StatusCode != 200 {
		t.Fatalf("/greylist-data/: %d", resp.StatusCode)
	}
	for _, s := range []string{
		`<nav class="nav"`, `<a href="/greylist-data/" aria-current="page">Greylist</a>`, `<a href="/passcheck/">Password check</a>`,
		`<button id="theme"`, "<h1>Greylist data</h1>",
		`<a class="gl-download" href="/greylist-data/greylist-latest.csv">`,
		"Published by Example &lt;CERT&gt; under", `<a href="https://example.org/terms" rel="license">`,
		`<a href="/greylist-data/LICENSE.txt">LICENSE.txt</a>`, "<code>Address,Tags</code>",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("/greylist-data/ lacks %q", s)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Error("inline script or style")
	}
	if resp, body := testenv.Get(t, v.base+"/greylist-data/greylist-latest.csv"); resp.StatusCode != 200 || resp.Header.Get("ETag") == "" ||
		body != "# For the terms of use see https://example.org/terms\nAddress,Tags\n192.0.2.7,telnet\n" {
		t.Errorf("latest CSV: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	year := time.Now().Add(-time.Hour).UTC().Format("2006")
	if resp, body := testenv.Get(t, v.base+"/greylist-data/archive/"+year+"/"); resp.StatusCode != 200 || !strings.Contains(body, "<h1>Greylist archive "+year+"</h1>") {
		t.Errorf("year page: %d", resp.StatusCode)
	}
	if c := v.stop(); c != 0 {
		t.Fatalf("exit code %d", c)
	}
	if after := dirState(t, dir); after != before {
		t.Errorf("sentinel view changed the greylist directory:\n%s\nwas\n%s", after, before)
	}
	// A directory that does not exist is an error, not created.
	missing := filepath.Join(t.TempDir(), "none")
	var errOut bytes.Buffer
	c := run(context.Background(), []string{"view", "--db", filepath.Join(t.TempDir(), "s.db"), "--data", t.TempDir(),
		"--greylist-dir", missing, "--http-listen", "127.0.0.1:0"}, io.Discard, &errOut)
	if _, err := os.Stat(missing); c != 1 || err == nil {
		t.Errorf("missing --greylist-dir: exit %d, created %v; %s", c, err == nil, errOut.String())
	}
}

func parsePrefixMust(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := parsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dirState lists every file under dir with its size and modification time.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

// TestViewShedsSlowClients: `sentinel view` serves through the hardened
// server: with short budgets, an idle keep-alive connection and a POST
// whose body stops arriving are closed by the server.
func TestViewShedsSlowClients(t *testing.T) {
	v := startViewCmd(t, "--db", filepath.Join(t.TempDir(), "stats.db"), "--data", t.TempDir(),
		"--http-idle-timeout", "100ms", "--http-read-timeout", "200ms")
	addr := strings.TrimPrefix(v.base, "http://")
	closed := func(c net.Conn, r io.Reader, what string) {
		t.Helper()
		if _, err := io.Copy(io.Discard, r); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: the server kept the connection open", what)
		}
	}
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	closed(idle, br, "idle keep-alive connection")

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(slow, "POST /passcheck/apiv1/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"pass")
	closed(slow, slow, "slow-body POST")
}

// TestViewSiteOptions: the operator's name, introduction, source and
// licence come from the config file and the flags; a licence link that is
// not http(s) stops the start with a clear error.
func TestViewSiteOptions(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "view.toml")
	os.WriteFile(cfg, []byte(`site-name = "Example Sentinel"
site-intro = "Attacks on our lab's routers."
data-attribution = "the Example lab"
data-license = "CC BY 4.0"
data-license-url = "https://creativecommons.org/licenses/by/4.0/"
`), 0o644)
	v := startViewCmd(t, "--db", filepath.Join(t.TempDir(), "stats.db"), "--data", t.TempDir(), "--config", cfg, "--site-name", "Lab Sentinel")
	resp, page := testenv.Get(t, v.base+"/?period=1w")
	if resp.StatusCode != 200 {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	for _, s := range []string{">Lab Sentinel</a>", "<title>Overview · Lab Sentinel</title>", "Attacks on our lab&#39;s routers.",
		`The statistics come from the Example lab and are licensed under <a href="https://creativecommons.org/licenses/by/4.0/" rel="license noreferrer">CC BY 4.0</a>.`} {
		if !strings.Contains(page, s) {
			t.Errorf("overview lacks %q", s)
		}
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"view", "--db", filepath.Join(t.TempDir(), "s.db"), "--data", t.TempDir(),
		"--http-listen", "127.0.0.1:0", "--data-license-url", "javascript:alert(1)"}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "licence URL must be an http or https URL") {
		t.Errorf("a javascript: licence link: exit %d, %s", code, stderr.String())
	}
}
