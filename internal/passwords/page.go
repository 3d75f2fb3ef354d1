package passwords

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"strconv"
)

//go:embed templates/page.html static/passcheck.js
var pageFS embed.FS

var (
	pageTmpl = template.Must(template.ParseFS(pageFS, "templates/page.html"))
	pageJS   = must(pageFS.ReadFile("static/passcheck.js"))
	jsTag    = func() string { s := sha256.Sum256(pageJS); return hex.EncodeToString(s[:6]) }()
)

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// Layout renders a page body inside a site's layout (view.View.Wrap).
type Layout func(w http.ResponseWriter, r *http.Request, title string, head, body template.HTML)

// RegisterPages mounts the checker page at /passcheck/, its script, and
// the API documentation at /passcheck/apiv1/doc, rendered through layout.
func (c *Corpus) RegisterPages(mux *http.ServeMux, layout Layout) {
	render := func(w http.ResponseWriter, r *http.Request, title, name string) {
		st := c.Stats()
		data := map[string]any{"Version": jsTag, "Hashes": strconv.FormatUint(st.FileHashes+uint64(st.LiveHashes), 10)}
		var head, body bytes.Buffer
		if err := pageTmpl.ExecuteTemplate(&head, "head", data); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		if err := pageTmpl.ExecuteTemplate(&body, name, data); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		layout(w, r, title, template.HTML(head.String()), template.HTML(body.String()))
	}
	mux.HandleFunc("GET /passcheck/{$}", func(w http.ResponseWriter, r *http.Request) {
		render(w, r, "Password check", "body")
	})
	mux.HandleFunc("GET /passcheck/apiv1/doc", func(w http.ResponseWriter, r *http.Request) {
		render(w, r, "Password check APIs", "doc")
	})
	mux.HandleFunc("GET /passcheck/static/passcheck.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Write(pageJS)
	})
}
