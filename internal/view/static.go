package view

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

//go:embed templates
var templateFS embed.FS

type asset struct {
	data  []byte
	ctype string
	etag  string
}

// assets are the files under /static/, read once. Their URLs carry a
// content hash (staticURL), so they can be cached for a year and still
// change with a new build.
var assets = func() map[string]asset {
	out := map[string]asset{}
	entries, err := staticFS.ReadDir("static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		switch path.Ext(e.Name()) {
		case ".md", ".tsv":
			ct = "text/plain; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		}
		out[e.Name()] = asset{data: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return out
}()

// staticURL is the versioned URL of a static file.
func staticURL(name string) string {
	a := assets[name]
	return "/static/" + name + "?v=" + strings.Trim(a.etag, `"`)
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[strings.TrimPrefix(r.URL.Path, "/static/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}

// parseTemplates builds one template set per page: the layout and the
// shared partials, plus the page's "content".
func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(labelFuncs).ParseFS(templateFS, "templates/layout.html", "templates/widgets.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"stats", "attacker", "password", "devices", "deviceadd", "error", "wrapped"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}
