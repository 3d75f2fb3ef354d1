package server

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynfw/sentinel/dynfw"
)

// APIHandlers are the server's own HTTP routes: the publisher's
// certificate, the list, explanations and the admin actions.
type APIHandlers struct {
	Core       *Core
	DataDir    string
	AdminToken string
	// List serves GET /api/v1/list (see listAPI).
	List http.Handler
}

// Register adds the routes to mux.
func (h *APIHandlers) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /dynfw.pub", h.cert)
	mux.Handle("GET /api/v1/list", h.List)
	mux.HandleFunc("GET /api/v1/addresses/{addr...}", h.explain)
	mux.HandleFunc("POST /api/v1/admin/block", h.adminAction("block"))
	mux.HandleFunc("POST /api/v1/admin/unblock", h.adminAction("unblock"))
	mux.HandleFunc("POST /api/v1/admin/clear", h.adminAction("clear"))
}

// cert serves the public certificate, exactly the file clients download
// with --cert-url.
func (h *APIHandlers) cert(w http.ResponseWriter, r *http.Request) {
	path := filepath.Join(h.DataDir, "dynfw.key")
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, "certificate not available", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `inline; filename="dynfw.pub"`)
	http.ServeContent(w, r, "dynfw.pub", fi.ModTime(), f)
}

func (h *APIHandlers) explain(w http.ResponseWriter, r *http.Request) {
	p, err := dynfw.ParseAddr(r.PathValue("addr"), false)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not an IP address"})
		return
	}
	ex, ok := h.Core.Explain(p.Addr())
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no events from this address"})
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

type adminRequest struct {
	// IP is an address or a prefix.
	IP string `json:"ip"`
	// Duration ("6h", "7d" is not Go syntax: use "168h") or Until
	// (RFC 3339); block and unblock need one of them.
	Duration string    `json:"duration"`
	Until    time.Time `json:"until"`
	Reason   string    `json:"reason"`
}

func (h *APIHandlers) adminAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if h.AdminToken == "" || !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(h.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sentinel-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
			return
		}
		var req adminRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
			return
		}
		key, err := dynfw.ParseAddr(req.IP, true)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ip: " + err.Error()})
			return
		}
		until := req.Until
		if req.Duration != "" {
			d, err := time.ParseDuration(req.Duration)
			if err != nil || d <= 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "duration: want e.g. 6h"})
				return
			}
			until = time.Now().Add(d)
		}
		if action != "clear" && !until.After(time.Now()) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a duration or a future until is required"})
			return
		}
		if len(req.Reason) > 200 {
			req.Reason = req.Reason[:200]
		}
		var err2 error
		switch action {
		case "block":
			err2 = h.Core.Block(key, until, req.Reason)
		case "unblock":
			err2 = h.Core.Unblock(key, until, req.Reason)
		case "clear":
			err2 = h.Core.Clear(key)
		}
		if err2 != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err2.Error()})
			return
		}
		resp := map[string]any{"ok": true, "action": action, "key": key.String()}
		if action != "clear" {
			resp["until"] = until.UTC().Format(time.RFC3339)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
