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
	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/ingest/local"
	"github.com/dynfw/sentinel/internal/server/core"
)

// APIHandlers are the server's own HTTP routes: the publisher's
// certificate, the list, explanations and the admin actions.
type APIHandlers struct {
	Core *core.Core
	// Local is the ingest path of the messages the operator emits.
	Local      *local.Ingest
	DataDir    string
	AdminToken string
	// List serves GET /api/v1/list (see listAPI).
	List http.Handler
}

// Register adds the routes of the HTTP listener to mux: the admin routes
// need the admin token.
func (h *APIHandlers) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /dynfw.pub", h.cert)
	mux.Handle("GET /api/v1/list", h.List)
	mux.HandleFunc("GET "+control.PathExplain+"{addr...}", h.explain)
	h.registerAdmin(mux, h.requireToken)
}

// RegisterLocal adds the routes of the control socket (package control)
// to mux: the same admin routes, without a token, since the socket's
// permissions decide who may connect, and the explanations.
func (h *APIHandlers) RegisterLocal(mux *http.ServeMux) {
	mux.HandleFunc("GET "+control.PathExplain+"{addr...}", h.explain)
	h.registerAdmin(mux, func(f http.HandlerFunc) http.HandlerFunc { return f })
}

func (h *APIHandlers) registerAdmin(mux *http.ServeMux, guard func(http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc("POST "+control.PathBlock, guard(h.adminAction("block")))
	mux.HandleFunc("POST "+control.PathUnblock, guard(h.adminAction("unblock")))
	mux.HandleFunc("POST "+control.PathClear, guard(h.adminAction("clear")))
	mux.HandleFunc("GET "+control.PathList, guard(h.list))
	mux.HandleFunc("GET "+control.PathProbes, guard(h.probes))
	mux.HandleFunc("POST "+control.PathEmit, guard(h.emit))
}

// requireToken lets a request through with the admin token only. Without
// a token configured the admin API is off on the HTTP listener, and the
// answer says so and where the commands work instead.
func (h *APIHandlers) requireToken(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.AdminToken == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the admin API is disabled on this listener (sentinel run has no --admin-token); " +
				"on the server's host, the command line (sentinel list, block, unblock, ...) uses the control socket in the data directory"})
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(h.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sentinel-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin token (Authorization: Bearer <--admin-token>)"})
			return
		}
		next(w, r)
	}
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

func (h *APIHandlers) adminAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req control.AdminRequest
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
		resp := control.AdminResult{OK: true, Action: action, Key: key.String()}
		if action != "clear" {
			resp.Until = until.UTC().Truncate(time.Second)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// list answers control.PathList.
func (h *APIHandlers) list(w http.ResponseWriter, r *http.Request) {
	ps := h.Core.Publisher().Stats()
	res := control.List{Version: ps.Version, Serial: ps.Serial, Decisions: []control.Decision{}}
	for _, ex := range h.Core.Decisions(time.Now()) {
		if ex.Listed {
			res.Listed++
		}
		res.Decisions = append(res.Decisions, control.Decision{Key: ex.Key, Listed: ex.Listed, Reason: ex.Reason, Since: ex.Since,
			EarliestEnd: ex.EarliestEnd, Score: ex.Score, Tags: ex.Tags, Override: ex.Override})
	}
	writeJSON(w, http.StatusOK, res)
}

// probes answers control.PathProbes.
func (h *APIHandlers) probes(w http.ResponseWriter, r *http.Request) {
	out := []control.Probe{}
	for _, p := range h.Core.ProbeStats() {
		cp := control.Probe{Name: p.Name, Serial: p.Serial, Events: p.Events, LastSeen: p.LastSeen}
		if p.Token != "" {
			cp.Token = devicetoken.Fingerprint(p.Token)
		}
		out = append(out, cp)
	}
	writeJSON(w, http.StatusOK, out)
}

// emit answers control.PathEmit.
func (h *APIHandlers) emit(w http.ResponseWriter, r *http.Request) {
	var req control.EmitRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, h.Local.Emit(req.Topic, req.Payload, time.Now()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
