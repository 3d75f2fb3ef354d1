package greylist

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakeLayout records what the handler hands to a layout and writes a page
// recognisable as the site's.
type fakeLayout struct {
	calls      int
	title      string
	head, body template.HTML
}

func (l *fakeLayout) render(w http.ResponseWriter, r *http.Request, title string, head, body template.HTML) {
	l.calls++
	l.title, l.head, l.body = title, head, body
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'")
	fmt.Fprintf(w, "<!DOCTYPE html><nav>SITE</nav><h1>%s</h1>%s", template.HTMLEscapeString(title), body)
}

func TestHandlerIndexLayout(t *testing.T) {
	s, dir := served(t)
	h := s.Handler()
	l := &fakeLayout{}
	s.SetLayout(l.render)
	for _, tc := range []struct {
		target, title string
		want          []string
	}{
		{"/greylist-data/", "Greylist data", []string{
			`<a class="gl-download" href="/greylist-data/greylist-latest.csv">greylist-latest.csv</a>`,
			`<a href="/greylist-data/archive/2024/">2024</a>: 3 days`,
			`<a href="` + exampleLicense + `" rel="license">`,
			`<a href="/greylist-data/LICENSE.txt">LICENSE.txt</a>`,
			"<code>Address,Tags</code>", "curl -R -z",
		}},
		{"/greylist-data/archive/", "Greylist archive", []string{`<li>2024-03-08: <a href="/greylist-data/archive/2024/greylist-2024-03-08.csv">CSV</a>`}},
		{"/greylist-data/archive/2024/", "Greylist archive 2024", []string{`<li>2024-03-09: `, `<a href="/greylist-data/archive/">Up</a>`}},
	} {
		before := l.calls
		rec := do(h, http.MethodGet, tc.target)
		if rec.Code != 200 || l.calls != before+1 {
			t.Fatalf("%s: %d, layout called %d times", tc.target, rec.Code, l.calls-before)
		}
		if l.title != tc.title || !strings.HasPrefix(rec.Body.String(), "<!DOCTYPE html><nav>SITE</nav>") {
			t.Errorf("%s: title %q, page %.60q", tc.target, l.title, rec.Body.String())
		}
		body := string(l.body)
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body lacks %q:\n%s", tc.target, w, body)
			}
		}
		// A fragment for the site's page: no document of its own, no
		// heading (the layout writes the title), no inline script or style.
		for _, w := range []string{"<html", "<body", "<h1", "<script", "<style", "style="} {
			if strings.Contains(body, w) || strings.Contains(string(l.head), w) {
				t.Errorf("%s: fragment contains %q", tc.target, w)
			}
		}
		if strings.HasSuffix(tc.target, "/2024/") && strings.Contains(body, "<h2") {
			t.Errorf("%s: the year repeated under the title", tc.target)
		}
		if !strings.Contains(string(l.head), `<link rel="alternate" type="application/json" href="?format=json"`) {
			t.Errorf("%s: head %q", tc.target, l.head)
		}
		hd := rec.Header()
		if hd.Get("Content-Security-Policy") != "default-src 'self'" || hd.Get("Vary") != "Accept" || hd.Get("Cache-Control") != cacheIndex {
			t.Errorf("%s: headers %v", tc.target, hd)
		}
	}
	// JSON indexes, files and errors do not go through the layout.
	calls := l.calls
	if rec := do(h, http.MethodGet, "/greylist-data/?format=json"); rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("JSON index: %d %v", rec.Code, rec.Header())
	}
	if rec := do(h, http.MethodGet, "/greylist-data/greylist-latest.csv"); rec.Body.String() != string(readFile(t, dir, "greylist-latest.csv")) {
		t.Error("latest CSV changed by the layout")
	}
	if rec := do(h, http.MethodGet, "/greylist-data/archive/2019/"); rec.Code != 404 {
		t.Errorf("missing year: %d", rec.Code)
	}
	if l.calls != calls {
		t.Errorf("layout called %d times for JSON, files and errors", l.calls-calls)
	}
	// Without a layout, the bare page again.
	s.SetLayout(nil)
	rec := do(h, http.MethodGet, "/greylist-data/")
	if l.calls != calls || !strings.HasPrefix(rec.Body.String(), "<!DOCTYPE html>\n<html") ||
		!strings.Contains(rec.Body.String(), "<h1>Greylist data</h1>") || rec.Header().Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("bare page after SetLayout(nil): %d calls\n%.200s", l.calls-calls, rec.Body.String())
	}
}

// Operator-supplied strings reach the layout's body escaped too.
func TestHandlerIndexLayoutEscapes(t *testing.T) {
	evil := `"><script>alert(1)</script>`
	s, _ := newStore(t, t.TempDir(), Options{Attribution: evil, LicenseURL: "javascript:alert(1)//" + evil})
	l := &fakeLayout{}
	s.SetLayout(l.render)
	do(s.Handler(), http.MethodGet, "/greylist-data/")
	body := string(l.body)
	if l.calls != 1 || strings.Contains(body, "<script>") || strings.Contains(body, `href="javascript:`) {
		t.Errorf("not escaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, "No snapshot yet") {
		t.Errorf("attribution or empty state missing:\n%s", body)
	}
}

// tree describes every entry under dir: name, mode, size, mtime.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s %v %d %d", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "greylist")
	w, _ := newStore(t, dir, Options{LicenseURL: exampleLicense})
	if err := w.Snapshot(march10, ipv4Entries(5)); err != nil {
		t.Fatal(err)
	}
	// What a writer may leave, and what Open would repair: a temporary
	// file, a missing LICENSE.txt.
	os.WriteFile(filepath.Join(dir, tmpPrefix+"greylist-latest.csv-0123"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(dir, "archive", "2024", tmpPrefix+"x"), []byte("partial"), 0o644)
	os.Remove(filepath.Join(dir, licenseName))
	before := tree(t, dir)

	r, _ := newStore(t, dir, Options{ReadOnly: true, Clock: newFakeClock(march10.Add(time.Hour))})
	h := r.Handler()
	if rec := do(h, http.MethodGet, "/greylist-data/greylist-latest.csv"); rec.Code != 200 || rec.Body.String() != string(readFile(t, dir, "greylist-latest.csv")) {
		t.Errorf("latest CSV: %d", rec.Code)
	}
	if rec := do(h, http.MethodGet, "/greylist-data/LICENSE.txt"); rec.Code != 404 {
		t.Errorf("LICENSE.txt: %d, want 404 (not written)", rec.Code)
	}
	rec := do(h, http.MethodGet, "/greylist-data/")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "LICENSE.txt") || !strings.Contains(rec.Body.String(), "2024-03-10") {
		t.Errorf("index: %d\n%s", rec.Code, rec.Body.String())
	}
	if err := r.Snapshot(march10.Add(time.Hour), ipv4Entries(1)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Snapshot: %v, want ErrReadOnly", err)
	}
	if err := r.Run(context.Background(), 0, func() []Entry { return nil }); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Run: %v, want ErrReadOnly", err)
	}
	if after := tree(t, dir); after != before {
		t.Errorf("a read-only store changed its directory:\n%s\nwas\n%s", after, before)
	}
	// What the writer does next shows at once.
	if err := w.Snapshot(march10.AddDate(0, 0, 1), ipv4Entries(7)); err != nil {
		t.Fatal(err)
	}
	if rec := do(h, http.MethodGet, "/greylist-data/greylist-latest.txt"); rec.Body.String() != string(readFile(t, dir, "greylist-latest.txt")) {
		t.Error("the writer's new snapshot is not served")
	}
	// An empty directory stays empty; a missing one is an error, not
	// created.
	empty := t.TempDir()
	newStore(t, empty, Options{ReadOnly: true})
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("read-only Open wrote %v", ents)
	}
	missing := filepath.Join(t.TempDir(), "nothing")
	if s, err := Open(missing, Options{ReadOnly: true}); err == nil {
		s.Close()
		t.Error("a missing directory was accepted")
	}
	if exists(missing, ".") {
		t.Error("read-only Open created the directory")
	}
}
