package live

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/dynfw/sentinel/internal/geoip"
)

//go:embed templates/page.html
var templateFS embed.FS

//go:embed static/live.js static/live.css
var staticFS embed.FS

// Title is the page title.
const Title = "DynFW live"

// TopN is the number of rows of the country and event-type tables.
const TopN = 15

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"iso":   func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) },
	"clock": func(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05") },
	"cc": func(cc string) string {
		if cc == "" {
			return "??"
		}
		return cc
	},
	"name": func(cc string) string {
		if cc == "" {
			return "unknown country"
		}
		return geoip.Name(cc)
	},
}).ParseFS(templateFS, "templates/page.html"))

type row struct {
	Key, Name string
	N, Max    int64
}

func topRows(m map[string]int64, names bool) []row {
	rows := make([]row, 0, len(m))
	for k, v := range m {
		rows = append(rows, row{Key: k, N: v})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	rows = rows[:min(len(rows), TopN)]
	for i := range rows {
		if len(rows) > 0 {
			rows[i].Max = rows[0].N
		}
		if names {
			rows[i].Name = geoip.Name(rows[i].Key)
		}
	}
	return rows
}

type pageData struct {
	S           Snapshot
	Since       string
	Updated     string
	UpdatedISO  string
	Countries   []row
	Types       []row
	Map         template.HTML
	Attribution string
	Version     string
}

// staticVersion is a digest of the embedded assets, appended to their URLs
// so that browsers may cache them for long and still see a new release.
func staticVersion() string {
	h := sha256.New()
	for _, f := range []string{"static/live.js", "static/live.css"} {
		b, _ := staticFS.ReadFile(f)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// RenderPage returns the page's head elements and body for the current
// state, for callers that assemble the page themselves.
func (h *Hub) RenderPage() (Page, error) {
	s := h.Snapshot()
	d := pageData{S: s, Countries: topRows(s.Countries, true), Types: topRows(s.Types, false),
		Attribution: h.o.Attribution, Version: h.staticETag,
		Since: time.UnixMilli(s.Status.Since).UTC().Format("2006-01-02 15:04:05")}
	if s.Status.LastMessage > 0 {
		t := time.UnixMilli(s.Status.LastMessage).UTC()
		d.Updated, d.UpdatedISO = t.Format("2006-01-02 15:04:05"), t.Format(time.RFC3339)
	}
	if h.o.MapSVG != nil {
		d.Map = h.o.MapSVG(s.Countries)
	}
	var head, body bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&head, "head", d); err != nil {
		return Page{}, err
	}
	if err := pageTmpl.ExecuteTemplate(&body, "body", d); err != nil {
		return Page{}, err
	}
	// Both were produced by html/template from escaped data.
	return Page{Title: Title, Head: template.HTML(head.String()), Body: template.HTML(body.String())}, nil
}

// csp matches the site's policy: no inline script or style, nothing from
// other origins. The map is SVG with presentation attributes only.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (h *Hub) servePage(w http.ResponseWriter, r *http.Request) {
	p, err := h.RenderPage()
	if err != nil {
		h.log.Error("live: rendering page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	if h.o.Layout != nil {
		h.o.Layout(w, r, p)
		return
	}
	var buf bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&buf, "standalone", p); err != nil {
		h.log.Error("live: rendering page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (h *Hub) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var ctype string
	switch name {
	case "live.js":
		ctype = "text/javascript; charset=utf-8"
	case "live.css":
		ctype = "text/css; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	b, _ := staticFS.ReadFile("static/" + name)
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", `"`+h.staticETag+`"`)
	if r.URL.Query().Get("v") == h.staticETag {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
