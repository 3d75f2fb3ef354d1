package greylist

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// served is a store with three archived days (8, 9 and 10 March 2024, each
// taken at midnight) whose clock says it is noon on the 10th.
func served(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, _ := newStore(t, dir, Options{Clock: newFakeClock(march10.Add(12 * time.Hour)), LicenseURL: exampleLicense})
	for i := 2; i >= 0; i-- {
		if err := s.Snapshot(march10.AddDate(0, 0, -i), ipv4Entries(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	return s, dir
}

func do(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerFiles(t *testing.T) {
	s, dir := served(t)
	h := s.Handler()
	const (
		csv  = "text/csv; charset=utf-8"
		text = "text/plain; charset=utf-8"
	)
	for _, tc := range []struct {
		path, ctype, cache, modified string
	}{
		{"greylist-latest.csv", csv, cacheLatest, "Sun, 10 Mar 2024 00:00:00 GMT"},
		{"greylist-latest.json", "application/json", cacheLatest, "Sun, 10 Mar 2024 00:00:00 GMT"},
		{"greylist-latest.txt", text, cacheLatest, "Sun, 10 Mar 2024 00:00:00 GMT"},
		{"archive/2024/greylist-2024-03-08.csv", csv, cacheArchive, "Fri, 08 Mar 2024 00:00:00 GMT"},
		{"archive/2024/greylist-2024-03-09.json", "application/json", cacheArchive, "Sat, 09 Mar 2024 00:00:00 GMT"},
		// Today's archive may still be replaced.
		{"archive/2024/greylist-2024-03-10.txt", text, cacheLatest, "Sun, 10 Mar 2024 00:00:00 GMT"},
		{"LICENSE.txt", text, cacheLicense, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			want := readFile(t, dir, tc.path)
			rec := do(h, http.MethodGet, "/greylist-data/"+tc.path)
			hd := rec.Header()
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("status %d, body %d bytes, want 200 and %d bytes", rec.Code, rec.Body.Len(), len(want))
			}
			if hd.Get("Content-Type") != tc.ctype || hd.Get("Cache-Control") != tc.cache {
				t.Errorf("Content-Type %q, Cache-Control %q", hd.Get("Content-Type"), hd.Get("Cache-Control"))
			}
			if tc.modified != "" && hd.Get("Last-Modified") != tc.modified {
				t.Errorf("Last-Modified %q, want %q", hd.Get("Last-Modified"), tc.modified)
			}
			if hd.Get("ETag") != etagOf(want) {
				t.Errorf("ETag %q, want %q", hd.Get("ETag"), etagOf(want))
			}
			if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Accept-Ranges") != "bytes" {
				t.Errorf("headers %v", hd)
			}

			head := do(h, http.MethodHead, "/greylist-data/"+tc.path)
			if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("ETag") != hd.Get("ETag") ||
				head.Header().Get("Content-Length") != hd.Get("Content-Length") {
				t.Errorf("HEAD: %d, %d bytes, headers %v", head.Code, head.Body.Len(), head.Header())
			}
		})
	}
}

func TestHandlerConditionalAndRange(t *testing.T) {
	s, dir := served(t)
	h := s.Handler()
	const p = "/greylist-data/greylist-latest.csv"
	body := readFile(t, dir, "greylist-latest.csv")
	tag := etagOf(body)
	for _, tc := range []struct {
		name   string
		header []string
		status int
		body   []byte
	}{
		{"If-None-Match matches", []string{"If-None-Match", tag}, http.StatusNotModified, nil},
		{"If-None-Match among others", []string{"If-None-Match", `"old", ` + tag}, http.StatusNotModified, nil},
		{"If-None-Match star", []string{"If-None-Match", "*"}, http.StatusNotModified, nil},
		{"If-None-Match stale", []string{"If-None-Match", `"0123"`}, http.StatusOK, body},
		{"If-Modified-Since now", []string{"If-Modified-Since", "Sun, 10 Mar 2024 00:00:00 GMT"}, http.StatusNotModified, nil},
		{"If-Modified-Since before", []string{"If-Modified-Since", "Sat, 09 Mar 2024 23:59:59 GMT"}, http.StatusOK, body},
		// If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
		{"stale tag, fresh date", []string{"If-None-Match", `"0123"`, "If-Modified-Since", "Sun, 10 Mar 2024 00:00:00 GMT"}, http.StatusOK, body},
		{"Range", []string{"Range", "bytes=2-11"}, http.StatusPartialContent, body[2:12]},
		{"Range suffix", []string{"Range", "bytes=-5"}, http.StatusPartialContent, body[len(body)-5:]},
		{"Range unsatisfiable", []string{"Range", "bytes=999999-"}, http.StatusRequestedRangeNotSatisfiable, nil},
		{"If-Range current", []string{"Range", "bytes=0-3", "If-Range", tag}, http.StatusPartialContent, body[:4]},
		{"If-Range stale", []string{"Range", "bytes=0-3", "If-Range", `"0123"`}, http.StatusOK, body},
		{"If-Match stale", []string{"If-Match", `"0123"`}, http.StatusPreconditionFailed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, http.MethodGet, p, tc.header...)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.body != nil && !bytes.Equal(rec.Body.Bytes(), tc.body) {
				t.Errorf("body %q, want %q", rec.Body.Bytes(), tc.body)
			}
			if tc.status == http.StatusNotModified && (rec.Body.Len() != 0 || rec.Header().Get("ETag") != tag) {
				t.Errorf("304 with %d bytes, ETag %q", rec.Body.Len(), rec.Header().Get("ETag"))
			}
			if tc.status == http.StatusPartialContent && !strings.HasPrefix(rec.Header().Get("Content-Range"), "bytes ") {
				t.Errorf("Content-Range %q", rec.Header().Get("Content-Range"))
			}
		})
	}
}

// TestHandlerETagPerVersion checks that a file is hashed once per version:
// the tag is remembered for the file's identity (inode, size, mtime), and a
// new version (a snapshot, or a file replaced by hand) gets a new one.
func TestHandlerETagPerVersion(t *testing.T) {
	s, dir := served(t)
	// A second store on the same directory has hashed only the latest
	// files (at Open), so it hashes the archived file it serves.
	s2, _ := newStore(t, dir, Options{})
	h := s2.Handler()
	const p = "/greylist-data/archive/2024/greylist-2024-03-09.csv"
	file := filepath.Join(dir, "archive/2024/greylist-2024-03-09.csv")
	body := readFile(t, dir, "archive/2024/greylist-2024-03-09.csv")
	if got := do(h, http.MethodGet, p).Header().Get("ETag"); got != etagOf(body) {
		t.Fatalf("computed ETag %s, want %s", got, etagOf(body))
	}
	// Rewriting the bytes in place while keeping size and mtime is invisible
	// to the cache: proof that the second request did not hash again.
	fi, _ := os.Stat(file)
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("#"), int64(len(body)-2))
	f.Close()
	os.Chtimes(file, fi.ModTime(), fi.ModTime())
	if got := do(h, http.MethodGet, p).Header().Get("ETag"); got != etagOf(body) {
		t.Errorf("file hashed again: ETag %s", got)
	}
	// Replacing the file (a new inode, as every snapshot does) is a new
	// version.
	replaced := append(bytes.Clone(body), "9.9.9.9,telnet\n"...)
	tmp := file + ".new"
	os.WriteFile(tmp, replaced, 0o644)
	os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	os.Rename(tmp, file)
	if got := do(h, http.MethodGet, p).Header().Get("ETag"); got != etagOf(replaced) {
		t.Errorf("replaced file: ETag %s, want %s", got, etagOf(replaced))
	}
	// The first store primed its tags while writing and agrees.
	if got := do(s.Handler(), http.MethodGet, "/greylist-data/greylist-latest.json").Header().Get("ETag"); got != etagOf(readFile(t, dir, "greylist-latest.json")) {
		t.Errorf("primed ETag %s", got)
	}
}

func TestHandlerStatuses(t *testing.T) {
	s, _ := served(t)
	h := s.Handler()
	for _, tc := range []struct {
		method, target string
		status         int
		location       string
	}{
		{"GET", "/greylist-data", 301, "/greylist-data/"},
		{"GET", "/greylist-data/archive", 301, "/greylist-data/archive/"},
		{"GET", "/greylist-data/archive/2024?format=json", 301, "/greylist-data/archive/2024/?format=json"},
		{"POST", "/greylist-data/greylist-latest.csv", 405, ""},
		{"PUT", "/greylist-data/archive/2024/greylist-2024-03-08.csv", 405, ""},
		{"DELETE", "/greylist-data/LICENSE.txt", 405, ""},
		{"OPTIONS", "/greylist-data/", 405, ""},
		{"POST", "/greylist-data/nothing", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/greylist-datax/greylist-latest.csv", 404, ""},
		{"GET", "/greylist-data/greylist-latest.xml", 404, ""},
		{"GET", "/greylist-data/greylist-latest.CSV", 404, ""},
		{"GET", "/greylist-data/greylist-latest.csv/", 404, ""},
		{"GET", "/greylist-data/license.txt", 404, ""},
		{"GET", "/greylist-data/archive/2024/greylist-2024-03-07.csv", 404, ""},
		{"GET", "/greylist-data/archive/2024/greylist-2024-02-30.csv", 404, ""},
		{"GET", "/greylist-data/archive/2023/greylist-2024-03-08.csv", 404, ""},
		{"GET", "/greylist-data/archive/2024/greylist-2024-3-08.csv", 404, ""},
		{"GET", "/greylist-data/archive/2024/greylist-2024-03-08.csv.gz", 404, ""},
		{"GET", "/greylist-data/archive/2024/sub/greylist-2024-03-08.csv", 404, ""},
		{"GET", "/greylist-data/archive/24/", 404, ""},
		{"GET", "/greylist-data/archive/2019/", 404, ""},
		{"GET", "/greylist-data/?format=xml", 400, ""},
	} {
		rec := do(h, tc.method, tc.target)
		if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.target, rec.Code, rec.Header().Get("Location"), tc.status, tc.location)
		}
		if tc.status == 405 && rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.target, rec.Header().Get("Allow"))
		}
	}
}

func TestHandlerTraversal(t *testing.T) {
	s, dir := served(t)
	h := s.Handler()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644)
	os.WriteFile(filepath.Join(outside, "greylist-2019-01-01.csv"), []byte("SECRET"), 0o644)
	os.WriteFile(filepath.Join(dir, ".tmp-greylist-latest.csv-0011"), []byte("SECRET"), 0o644)
	// Links out of the store: a year directory, an archived file, the
	// latest file (relative link) and the licence (absolute link).
	rel, err := filepath.Rel(dir, filepath.Join(outside, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(outside, filepath.Join(dir, "archive/2019"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "archive/2024/greylist-2024-01-01.csv"))
	os.Remove(filepath.Join(dir, "greylist-latest.txt"))
	os.Symlink(rel, filepath.Join(dir, "greylist-latest.txt"))
	os.Remove(filepath.Join(dir, "LICENSE.txt"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "LICENSE.txt"))

	for _, target := range []string{
		"/greylist-data/../../../etc/passwd",
		"/greylist-data/archive/../LICENSE.txt",
		"/greylist-data/archive/2024/../../greylist-latest.csv",
		"/greylist-data/./greylist-latest.csv",
		"/greylist-data//greylist-latest.csv",
		"/greylist-data/%2e%2e/%2e%2e/etc/passwd",
		"/greylist-data/archive%2F2024%2Fgreylist-2024-03-08.csv",
		"/greylist-data/archive/2024%2fgreylist-2024-03-08.csv",
		"/greylist-data/archive%5C2024%5Cgreylist-2024-03-08.csv",
		`/greylist-data/archive\2024\greylist-2024-03-08.csv`,
		"/greylist-data/archive/2024/greylist-2024-03-08.csv%00",
		"/greylist-data/greylist-latest.csv%00.txt",
		"/greylist-data/.tmp-greylist-latest.csv-0011",
		"/greylist-data/archive/2019/greylist-2019-01-01.csv",
		"/greylist-data/archive/2019/",
		"/greylist-data/archive/2024/greylist-2024-01-01.csv",
		"/greylist-data/greylist-latest.txt",
		"/greylist-data/LICENSE.txt",
	} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			rec := do(h, m, target)
			if rec.Code != http.StatusNotFound || bytes.Contains(rec.Body.Bytes(), []byte("SECRET")) {
				t.Errorf("%s %s: %d %q, want 404", m, target, rec.Code, rec.Body.Bytes())
			}
		}
	}
	// The links are not listed either.
	rec := do(h, http.MethodGet, "/greylist-data/archive/?format=json")
	if bytes.Contains(rec.Body.Bytes(), []byte("2019")) || bytes.Contains(rec.Body.Bytes(), []byte("2024-01-01")) {
		t.Errorf("index lists links out of the store:\n%s", rec.Body.Bytes())
	}
}

func TestHandlerIndexJSON(t *testing.T) {
	s, _ := served(t)
	h := s.Handler()
	want, err := s.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target string
		header []string
	}{
		{"/greylist-data/?format=json", nil},
		{"/greylist-data/", []string{"Accept", "application/json"}},
		{"/greylist-data/archive/", []string{"Accept", "text/html;q=0.5, application/json"}},
		{"/greylist-data/archive/?format=json", []string{"Accept", "text/html"}},
	} {
		rec := do(h, http.MethodGet, tc.target, tc.header...)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Vary") != "Accept" {
			t.Fatalf("%s %v: %d %v", tc.target, tc.header, rec.Code, rec.Header())
		}
		var got Catalog
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if catalogString(got) != catalogString(want) {
			t.Errorf("%s: catalog\n%s\nwant\n%s", tc.target, catalogString(got), catalogString(want))
		}
	}
	// The documented shape, field by field.
	rec := do(h, http.MethodGet, "/greylist-data/archive/2024/?format=json")
	var raw map[string]any
	json.Unmarshal(rec.Body.Bytes(), &raw)
	latest, _ := raw["latest"].(map[string]any)
	years, _ := raw["years"].([]any)
	if latest["time"] != "2024-03-10T00:00:00Z" || len(years) != 1 || raw["license"] != "/greylist-data/LICENSE.txt" {
		t.Errorf("year index JSON:\n%s", rec.Body.Bytes())
	}
	day0 := years[0].(map[string]any)["days"].([]any)[0].(map[string]any)
	if day0["date"] != "2024-03-08" || day0["files"].(map[string]any)["json"] != "/greylist-data/archive/2024/greylist-2024-03-08.json" {
		t.Errorf("first day %v", day0)
	}
	// Empty store: latest is null, years an empty list.
	empty, _ := newStore(t, t.TempDir(), Options{})
	rec = do(empty.Handler(), http.MethodGet, "/greylist-data/?format=json")
	if got := strings.TrimSpace(rec.Body.String()); got != `{"latest":null,"license":"/greylist-data/LICENSE.txt","years":[]}` {
		t.Errorf("empty index %s", got)
	}
}

func TestHandlerIndexHTML(t *testing.T) {
	s, _ := served(t)
	h := s.Handler()
	for _, tc := range []struct {
		target  string
		accept  string
		want    []string
		notWant []string
	}{
		{"/greylist-data/", "", []string{
			"<title>Greylist data</title>",
			`<time datetime="2024-03-10T00:00:00Z">2024-03-10 00:00 UTC</time>`,
			`<a class="gl-download" href="/greylist-data/greylist-latest.csv">greylist-latest.csv</a>`,
			`Also as <a href="/greylist-data/greylist-latest.json">JSON</a> and <a href="/greylist-data/greylist-latest.txt">plain text</a>.`,
			`<li><a href="/greylist-data/archive/2024/">2024</a>: 3 days</li>`,
			`<li>2024-03-10: <a href="/greylist-data/archive/2024/greylist-2024-03-10.csv">CSV</a> | <a href="/greylist-data/archive/2024/greylist-2024-03-10.json">JSON</a> | <a href="/greylist-data/archive/2024/greylist-2024-03-10.txt">text</a></li>`,
			`<a href="/greylist-data/archive/">Every archived day</a>`,
			// The licence line, and the formats explained.
			`<a href="` + exampleLicense + `" rel="license">`,
			`<a href="/greylist-data/LICENSE.txt">LICENSE.txt</a>`,
			"<code># For the terms of use see " + exampleLicense + "</code>",
			"<code>Address,Tags</code>",
			`"entries":[{"address":"1.2.3.4","tags":["telnet"]}`,
			"One address or prefix per line",
			"<code>ETag</code> and <code>Last-Modified</code>",
			"curl -R -z greylist-latest.csv",
			`<a href="?format=json">as JSON</a>`,
		}, []string{"Up</a>"}},
		{"/greylist-data/archive/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", []string{
			"<title>Greylist archive</title>",
			`<li>2024-03-10: <a href="/greylist-data/archive/2024/greylist-2024-03-10.csv">CSV</a>`,
			`<li>2024-03-08: `,
		}, []string{"Latest snapshot"}},
		{"/greylist-data/archive/2024/?format=html", "application/json", []string{
			"<title>Greylist archive 2024</title>", `<a href="/greylist-data/archive/">Up</a>`,
		}, nil},
	} {
		rec := do(h, http.MethodGet, tc.target, "Accept", tc.accept)
		body := rec.Body.String()
		hd := rec.Header()
		if rec.Code != 200 || hd.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(hd.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("%s: %d %v", tc.target, rec.Code, hd)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q:\n%s", tc.target, w, body)
			}
		}
		for _, w := range append(tc.notWant, "<script", "<style", "style=") {
			if strings.Contains(body, w) {
				t.Errorf("%s contains %q", tc.target, w)
			}
		}
		if i, j := strings.Index(body, "2024-03-10:"), strings.Index(body, "2024-03-08:"); i > j {
			t.Errorf("%s: days not newest first", tc.target)
		}
		// Indexes are validated too.
		if again := do(h, http.MethodGet, tc.target, "Accept", tc.accept, "If-None-Match", hd.Get("ETag")); again.Code != http.StatusNotModified {
			t.Errorf("%s: revalidation %d, want 304", tc.target, again.Code)
		}
	}
	if rec := do(h, http.MethodHead, "/greylist-data/"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD index: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestIndexTemplateEscapes(t *testing.T) {
	evil := `"><script>alert(1)</script>`
	c := Catalog{
		License: "javascript:alert(1)",
		Latest:  &Latest{Time: march10, Files: map[Format]string{CSV: "javascript:alert(2)", JSON: evil}},
		Years:   []Year{{2024, []Day{{evil, map[Format]string{CSV: evil}}}}},
	}
	s := &Store{opts: Options{LicenseURL: "javascript:alert(3)", Attribution: evil}}
	for _, tg := range []target{{kind: targetIndex}, {kind: targetIndex, root: true}, {kind: targetIndex, year: 2024}} {
		for _, name := range []string{"bare", "content", "head"} {
			var b bytes.Buffer
			if err := indexTemplate.ExecuteTemplate(&b, name, s.newIndexPage(c, tg)); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), "<script>") || strings.Contains(b.String(), `href="javascript:`) {
				t.Errorf("%s %+v: not escaped:\n%s", name, tg, b.String())
			}
		}
	}
}

func TestAcceptQ(t *testing.T) {
	for _, tc := range []struct {
		accept string
		json   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json", true},
		{"Application/JSON", true},
		{"application/*", true},
		{"text/html, application/json", false},
		{"text/html;q=0.9, application/json", true},
		{"application/json;q=0.5, text/*;q=0.6", false},
		{"application/json; charset=utf-8; q=0.8, */*;q=0.9", false},
		{"application/json; charset=utf-8; q=0.8, */*;q=0.5", true},
		{"application/json;q=0", false},
		{"application/json;q=bogus", true},
		{"text/html, */*;q=0.1", false},
		{"*/*;q=0.1, application/json;q=0.2", true},
	} {
		req := httptest.NewRequest("GET", "/greylist-data/", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		if got, ok := wantsJSON(req); !ok || got != tc.json {
			t.Errorf("Accept %q: JSON %v, want %v", tc.accept, got, tc.json)
		}
	}
}

// TestHandlerBehindServeMux serves through a real server and ServeMux, as
// cmd/sentinel will, and sends raw request targets that a client library
// would clean.
func TestHandlerBehindServeMux(t *testing.T) {
	s, dir := served(t)
	mux := http.NewServeMux()
	mux.Handle(URLPrefix, s.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(raw string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = raw // sent as is
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get("/greylist-data/greylist-latest.csv"); resp.StatusCode != 200 || resp.Header.Get("ETag") != etagOf(readFile(t, dir, "greylist-latest.csv")) {
		t.Errorf("latest: %d %v", resp.StatusCode, resp.Header)
	}
	for _, raw := range []string{"/greylist-data/../../etc/passwd", "/greylist-data/archive/..%2f..%2fetc/passwd", "/greylist-data/archive%2f2024/"} {
		resp := get(raw)
		if resp.StatusCode == 200 {
			t.Errorf("%s: 200", raw)
		}
		if loc := resp.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
			t.Errorf("%s: redirect to %q", raw, loc)
		}
	}
}
