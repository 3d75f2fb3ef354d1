package greylist

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cache lifetimes. The latest files change once a day, so caches revalidate
// them after a few minutes (cheaply: a 304). An archived day never changes
// once it is over; today's archive file may still be replaced by a catch-up
// or a manual snapshot, so it is treated like the latest ones.
const (
	cacheLatest  = "public, max-age=300"
	cacheArchive = "public, max-age=31536000, immutable"
	cacheLicense = "public, max-age=86400"
	cacheIndex   = "public, max-age=60"
)

// Handler serves the store under URLPrefix (/greylist-data/); mount it on
// that path. It serves:
//
//	/greylist-data/                       index of the latest snapshot and the years
//	/greylist-data/archive/               index of every archived day
//	/greylist-data/archive/YYYY/          index of one year
//	/greylist-data/greylist-latest.{csv,json,txt}
//	/greylist-data/archive/YYYY/greylist-YYYY-MM-DD.{csv,json,txt}
//	/greylist-data/LICENSE.txt
//
// Files carry Content-Type, a strong ETag (the content's hash, computed once
// per file version), Last-Modified (the snapshot time) and Cache-Control,
// and answer conditional requests, HEAD and Range through http.ServeContent.
// Indexes are HTML pages or, with ?format=json or an Accept header that
// prefers application/json, the Catalog as JSON (for the year index,
// restricted to that year). The HTML is a small bare page (no scripts, no
// styles), or the site's page when SetLayout gave a layout.
//
// Any other path is 404, including every spelling of "..", encoded slashes
// and backslashes, and names that resolve through a symbolic link to
// outside the store's directory (see Open). Methods other than GET and HEAD
// are 405 on the paths above.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

type targetKind int

const (
	targetFile targetKind = iota
	targetIndex
	targetRedirect
)

// target is what a request path resolved to.
type target struct {
	kind   targetKind
	name   string // file name under the root, or redirect URL path
	ctype  string
	cache  string
	year   int  // year index; 0 for the others
	root   bool // the top index
	public bool // data that browsers on other origins may read (CORS)
}

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	t, ok := s.resolve(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if t.kind == targetRedirect {
		u := t.name
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if t.kind == targetIndex {
		s.serveIndex(w, r, t)
		return
	}
	s.serveFile(w, r, t)
}

// resolve maps a request to a target by recognising the few names that
// exist, rather than cleaning and joining an arbitrary path: nothing that is
// not spelt exactly as the store writes it can reach the filesystem.
func (s *Store) resolve(r *http.Request) (target, bool) {
	p := r.URL.Path
	if p+"/" == URLPrefix {
		return target{kind: targetRedirect, name: URLPrefix}, true
	}
	rest, ok := strings.CutPrefix(p, URLPrefix)
	// Encoded separators decode into Path as '/' (or stay '\'), which could
	// make a name that the store never wrote look like one that it did.
	raw := strings.ToLower(r.URL.RawPath)
	if !ok || strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return target{}, false
	}
	switch rest {
	case "":
		return target{kind: targetIndex, root: true}, true
	case archiveDir:
		return target{kind: targetRedirect, name: URLPrefix + archiveDir + "/"}, true
	case archiveDir + "/":
		return target{kind: targetIndex}, true
	case licenseName:
		return target{kind: targetFile, name: licenseName, ctype: Text.ContentType(), cache: cacheLicense}, true
	}
	if f, ok := strings.CutPrefix(rest, "greylist-latest."); ok && Format(f).valid() {
		return target{kind: targetFile, name: rest, ctype: Format(f).ContentType(), cache: cacheLatest, public: true}, true
	}
	inArchive, ok := strings.CutPrefix(rest, archiveDir+"/")
	if !ok {
		return target{}, false
	}
	yearStr, file, hasSlash := strings.Cut(inArchive, "/")
	y, ok := parseYear(yearStr)
	switch {
	case !ok:
		return target{}, false
	case !hasSlash:
		return target{kind: targetRedirect, name: URLPrefix + yearDir(y) + "/"}, true
	case file == "":
		return target{kind: targetIndex, year: y}, true
	}
	date, f, ok := parseArchiveFile(y, file)
	if !ok {
		return target{}, false
	}
	cache := cacheArchive
	if now := s.clock.Now().UTC(); date >= now.Format(dateLayout) {
		cache = cacheLatest
	}
	return target{kind: targetFile, name: rest, ctype: f.ContentType(), cache: cache, public: true}, true
}

func (s *Store) serveFile(w http.ResponseWriter, r *http.Request, t target) {
	f, err := s.root.Open(t.name)
	if err != nil {
		// Missing, or a link out of the directory (which os.Root refuses):
		// either way nothing is here for the client.
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("greylist file not served", "name", t.name, "err", err)
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	tag, err := s.etag(t.name, f, fi)
	if err != nil {
		s.log.Error("greylist file unreadable", "name", t.name, "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", t.ctype)
	h.Set("ETag", tag)
	h.Set("Cache-Control", t.cache)
	if t.public {
		// Public data without credentials: let browser tools fetch it.
		h.Set("Access-Control-Allow-Origin", "*")
	}
	http.ServeContent(w, r, t.name, fi.ModTime(), f)
}

func (s *Store) serveIndex(w http.ResponseWriter, r *http.Request, t target) {
	asJSON, ok := wantsJSON(r)
	if !ok {
		http.Error(w, "400 bad request: format must be json or html", http.StatusBadRequest)
		return
	}
	cat, err := s.Catalog()
	if err != nil {
		s.log.Error("greylist index", "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	if t.year != 0 {
		i := slices.IndexFunc(cat.Years, func(y Year) bool { return y.Year == t.year })
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		cat.Years = cat.Years[i : i+1]
	}
	var body bytes.Buffer
	h := w.Header()
	if asJSON {
		if err := json.NewEncoder(&body).Encode(cat); err != nil {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", JSON.ContentType())
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		page := s.newIndexPage(cat, t)
		if layout := s.layout.Load(); layout != nil {
			s.serveInLayout(w, r, *layout, page)
			return
		}
		if err := indexTemplate.ExecuteTemplate(&body, "bare", page); err != nil {
			s.log.Error("greylist index", "err", err)
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The page needs nothing but itself; say so, so that no injected
		// content could ever run or load.
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	}
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", cacheIndex)
	h.Set("ETag", etagOf(body.Bytes()))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body.Bytes()))
}

// wantsJSON decides an index's form: ?format=json or ?format=html first
// (links and scripts cannot always set headers), then whichever of
// application/json and text/html the Accept header ranks higher, HTML on a
// tie so that browsers (which send */*) get a page. ok is false for an
// unknown format.
func wantsJSON(r *http.Request) (asJSON, ok bool) {
	switch r.URL.Query().Get("format") {
	case "json":
		return true, true
	case "html":
		return false, true
	case "":
	default:
		return false, false
	}
	qJSON, qHTML := acceptQ(r.Header.Values("Accept"))
	return qJSON > qHTML, true
}

// acceptQ returns the quality that Accept gives application/json and
// text/html, each from its most specific matching range (RFC 9110 12.5.1).
func acceptQ(values []string) (qJSON, qHTML float64) {
	var specJSON, specHTML int
	set := func(spec int, q float64, bestSpec *int, bestQ *float64) {
		if spec > *bestSpec || (spec == *bestSpec && q > *bestQ) {
			*bestSpec, *bestQ = spec, q
		}
	}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(part, ";")
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && f >= 0 && f <= 1 {
						q = f
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/json":
				set(3, q, &specJSON, &qJSON)
			case "application/*":
				set(2, q, &specJSON, &qJSON)
			case "text/html":
				set(3, q, &specHTML, &qHTML)
			case "text/*":
				set(2, q, &specHTML, &qHTML)
			case "*/*":
				set(1, q, &specJSON, &qJSON)
				set(1, q, &specHTML, &qHTML)
			}
		}
	}
	return qJSON, qHTML
}

// Layout renders a page inside a site's layout: navigation, styles,
// footer. title is plain text; head and body are trusted markup, produced
// here by html/template. view.View.Wrap is one; it writes the whole
// response, headers (Content-Type, Content-Security-Policy) included.
type Layout func(w http.ResponseWriter, r *http.Request, title string, head, body template.HTML)

// SetLayout makes the HTML indexes render through layout (nil: back to
// the bare pages). The files and the JSON indexes are unaffected. Call it
// before the handler serves; it is safe to call concurrently all the same.
func (s *Store) SetLayout(layout Layout) {
	if layout == nil {
		s.layout.Store(nil)
		return
	}
	s.layout.Store(&layout)
}

// serveInLayout renders the index's content and hands it to layout. The
// response has no ETag: the layout decides the bytes (and their
// compression).
func (s *Store) serveInLayout(w http.ResponseWriter, r *http.Request, layout Layout, page indexPage) {
	var head, body bytes.Buffer
	if err := indexTemplate.ExecuteTemplate(&head, "head", page); err != nil {
		s.log.Error("greylist index", "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	if err := indexTemplate.ExecuteTemplate(&body, "content", page); err != nil {
		s.log.Error("greylist index", "err", err)
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", cacheIndex)
	// Both come from html/template, which escaped every value.
	layout(w, r, page.Title, template.HTML(head.String()), template.HTML(body.String()))
}

// recentDays is how many days the top index lists besides the years.
const recentDays = 7

// indexPage is what the HTML index shows, newest first, since people look
// for recent days.
type indexPage struct {
	Title   string
	Root    bool
	Year    int // the year index's year; 0 for the others
	Latest  *latestView
	License string // path of LICENSE.txt, empty when absent
	// LicenseURL, LicenseName and Attribution are the store's options:
	// the licence named in the files and whom to credit.
	LicenseURL, LicenseName, Attribution string
	// Next is when the next snapshot is due (nil: not known here), and
	// CurrentList the URL of the list as it is now (empty: none).
	Next        *timeView
	CurrentList string
	Years       []yearView
	Recent      []dayView // top index: the latest days
	Archive     string
	Up          string
}

type latestView struct {
	Time, ISO       string
	CSV, JSON, Text string // paths; empty when the file is missing
	// Count of entries, when HasCount.
	Count    int
	HasCount bool
}

type timeView struct{ Time, ISO string }

func newTimeView(t time.Time) *timeView {
	return &timeView{Time: t.UTC().Format("2006-01-02 15:04 UTC"), ISO: t.UTC().Format(time.RFC3339)}
}

type yearView struct {
	Year int
	Href string
	Days []dayView
}

type dayView struct {
	Date  string
	Links []link
}

type link struct{ Label, Href string }

func formatLinks(files map[Format]string) []link {
	var ls []link
	labels := map[Format]string{CSV: "CSV", JSON: "JSON", Text: "text"}
	for _, f := range formats {
		if p, ok := files[f]; ok {
			ls = append(ls, link{labels[f], p})
		}
	}
	return ls
}

func (s *Store) newIndexPage(c Catalog, t target) indexPage {
	p := indexPage{Title: "Greylist archive", Root: t.root, Year: t.year, License: c.License,
		LicenseURL: s.opts.LicenseURL, LicenseName: s.opts.License, Attribution: s.opts.Attribution,
		CurrentList: s.opts.CurrentListURL,
		Archive:     URLPrefix + archiveDir + "/", Up: URLPrefix}
	switch {
	case t.root:
		p.Title, p.Up = "Greylist data", ""
	case t.year != 0:
		p.Title += " " + strconv.Itoa(t.year)
		p.Up = URLPrefix + archiveDir + "/"
	}
	if l := c.Latest; l != nil {
		p.Latest = &latestView{
			Time: l.Time.UTC().Format("2006-01-02 15:04 UTC"),
			ISO:  l.Time.UTC().Format(time.RFC3339),
			CSV:  l.Files[CSV], JSON: l.Files[JSON], Text: l.Files[Text],
		}
		if l.Count != nil {
			p.Latest.Count, p.Latest.HasCount = *l.Count, true
		}
	}
	if c.Next != nil {
		p.Next = newTimeView(*c.Next)
	}
	for _, y := range slices.Backward(c.Years) {
		yv := yearView{Year: y.Year, Href: URLPrefix + yearDir(y.Year) + "/"}
		for _, d := range slices.Backward(y.Days) {
			dv := dayView{Date: d.Date, Links: formatLinks(d.Files)}
			yv.Days = append(yv.Days, dv)
			if t.root && len(p.Recent) < recentDays {
				p.Recent = append(p.Recent, dv)
			}
		}
		p.Years = append(p.Years, yv)
	}
	return p
}

// indexTemplate renders an index: "content" is the page's body, which
// "bare" wraps in a minimal document and a Layout in the site's; "head"
// is what the layout adds to the head. The markup uses no inline style or
// script (the bare page's CSP forbids them, and so does the site's); the
// classes are the site's (card, grid, facts, intro) and a few of its own
// (gl-*), which the bare page leaves unstyled.
var indexTemplate = template.Must(template.New("index").Parse(`
{{- define "bare" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
</head>
<body>
<h1>{{.Title}}</h1>
{{template "content" .}}
</body>
</html>
{{end}}

{{- define "head" -}}
<link rel="alternate" type="application/json" href="?format=json" title="This index as JSON">
{{- end}}

{{- define "links"}}{{range $i, $l := .}}{{if $i}} | {{end}}<a href="{{$l.Href}}">{{$l.Label}}</a>{{end}}{{end}}

{{- define "content" -}}
{{- if .Root}}
<p class="intro">Daily snapshots of the DynFW greylist: addresses seen attacking Sentinel probes, with tags that say how.
One snapshot is taken every UTC day and kept in the archive.</p>
<div class="grid gl">
<section class="card gl-latest">
<h2>Latest snapshot</h2>
{{- with .Latest}}
<p class="gl-count">{{if .HasCount}}<strong>{{.Count}} entr{{if eq .Count 1}}y{{else}}ies{{end}}</strong>, taken{{else}}Taken{{end}} <time datetime="{{.ISO}}">{{.Time}}</time>.</p>
{{- with .CSV}}
<p class="gl-main"><a class="gl-download" href="{{.}}">greylist-latest.csv</a></p>
{{- end}}
{{- if or .JSON .Text}}
<p>{{if .CSV}}Also as{{else}}As{{end}} {{with .JSON}}<a href="{{.}}">JSON</a>{{end}}{{if and .JSON .Text}} and {{end}}{{with .Text}}<a href="{{.}}">plain text</a>{{end}}.</p>
{{- end}}
{{- else}}
<p>No snapshot yet.</p>
{{- end}}
{{- with .Next}}
<p class="gl-next">Next snapshot <time datetime="{{.ISO}}">{{.Time}}</time>, then one every UTC day at that time.</p>
{{- end}}
{{- with .CurrentList}}
<p class="gl-current">The list changes all day: <a href="{{.}}">the current list</a> (JSON, as the
server's subscribers have it now) is between two snapshots.</p>
{{- end}}
</section>
<section class="card gl-archive">
<h2>Archive</h2>
{{- if .Years}}
<ul>
{{- range .Years}}
<li><a href="{{.Href}}">{{.Year}}</a>: {{len .Days}} day{{if ne (len .Days) 1}}s{{end}}</li>
{{- end}}
</ul>
<h3>Latest days</h3>
<ul class="gl-days">
{{- range .Recent}}
<li>{{.Date}}: {{template "links" .Links}}</li>
{{- end}}
</ul>
<p><a href="{{.Archive}}">Every archived day</a></p>
{{- else}}
<p>No archived days yet.</p>
{{- end}}
</section>
</div>
<section class="card gl-formats">
<h2>Formats</h2>
<dl class="facts">
<dt>CSV</dt>
<dd>The Turris Sentinel greylist format: a comment line
<code># For the terms of use see {{if eq .LicenseURL "LICENSE.txt"}}…{{else}}{{.LicenseURL}}{{end}}</code>, the header
<code>Address,Tags</code>, then one row per address or CIDR prefix. <code>Tags</code>
lists how the address attacked (<code>telnet</code>, <code>ftp</code>, <code>smtp</code>,
<code>http</code>, <code>haas</code>, <code>port_scan</code>, <code>ssh</code>, …), sorted and joined with
commas, the field quoted when there are several: <code>5.6.7.8,"ftp,telnet"</code>.
Lines end in LF.</dd>
<dt>JSON</dt>
<dd>One object, one entry per line:
<code>{"generated":"2024-03-10T00:00:00Z","license":"…","count":2,"entries":[{"address":"1.2.3.4","tags":["telnet"]},{"address":"10.0.0.0/8","tags":[]}]}</code></dd>
<dt>Plain text</dt>
<dd>One address or prefix per line and nothing else, for ipset, nftables
and router import scripts.</dd>
</dl>
<p>Single addresses have no prefix length, prefixes are in CIDR notation.
Every file carries <code>ETag</code> and <code>Last-Modified</code> (the snapshot time)
and answers conditional requests (<code>If-None-Match</code>,
<code>If-Modified-Since</code>) with 304 Not Modified, so a poller downloads a file
only when it changed, for example with curl, whose <code>-R</code> keeps the
server's time on the file that <code>-z</code> compares next time:</p>
<pre><code>curl -R -z greylist-latest.csv -o greylist-latest.csv https://SERVER/greylist-data/greylist-latest.csv</code></pre>
<p>This index is also available <a href="?format=json">as JSON</a>.</p>
</section>
{{- else}}
{{- range .Years}}
{{- if not $.Year}}
<h2><a href="{{.Href}}">{{.Year}}</a></h2>
{{- end}}
<ul class="gl-days">
{{- range .Days}}
<li>{{.Date}}: {{template "links" .Links}}</li>
{{- end}}
</ul>
{{- else}}
<p>No archived days yet.</p>
{{- end}}
<p>This index as <a href="?format=json">JSON</a>.{{with .Up}} <a href="{{.}}">Up</a>{{end}}</p>
{{- end}}
<p class="gl-licence">Published by {{.Attribution}}
{{- if .LicenseName}} under <a href="{{.LicenseURL}}" rel="license">{{.LicenseName}}</a>
{{- else if ne .LicenseURL "LICENSE.txt"}} under <a href="{{.LicenseURL}}" rel="license">{{.LicenseURL}}</a>{{end}}.
{{- with .License}} Terms of use: <a href="{{.}}">LICENSE.txt</a>.{{end}}</p>
{{- end}}
`))
