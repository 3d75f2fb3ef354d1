package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynfw/sentinel/internal/asn"
	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/live"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/view"
)

// viewOptions are the options of Sentinel View, shared by `sentinel run`
// (which serves the view next to the server) and `sentinel view` (the web
// part alone, on a shared PostgreSQL).
type viewOptions struct {
	db             string
	geoip          string
	redis          string
	sessionKeyFile string
	trustProxy     bool
	rateLimit      int
	rateBurst      int
	// dynfwURL and dynfwCert: the DynFW publisher the live page follows.
	dynfwURL, dynfwCert string
	// site: the operator's name for the instance and the statistics'
	// source and licence.
	site view.Site
}

func (v *viewOptions) register(s *config.Options, dbDefault, dbUsage string) {
	s.String(&v.db, "db", nil, dbDefault, dbUsage)
	s.String(&v.geoip, "geoip", nil, "", "country database: a MaxMind or DB-IP .mmdb file, or tor's geoip text format (default: the embedded table)")
	s.String(&v.redis, "redis", nil, "", "Redis URL of a cache shared by several view instances, e.g. redis://127.0.0.1:6379/0 (default: in-process only)")
	s.String(&v.sessionKeyFile, "session-key-file", nil, "", "file holding the 32-byte key that encrypts visitors' sessions (hex); created if missing; share it between view instances")
	s.Bool(&v.trustProxy, "trust-proxy", nil, false, "take the client address from X-Forwarded-For (behind a reverse proxy only)")
	s.String(&v.dynfwURL, "dynfw-url", nil, "", "DynFW publisher the live page /dynfw/ follows, e.g. tcp://sentinel.turris.cz:7087 (sentinel run: its own publisher)")
	s.String(&v.dynfwCert, "dynfw-cert", nil, "", "public certificate of that publisher (zcert, e.g. the Turris dynfw.pub); empty: no CURVE")
	s.Int(&v.rateLimit, "rate-limit", nil, view.DefaultOnDemandPerMinute, "computations on demand per minute for one client address (IPv6: /64): a page costs one per resource with a parameter it shows (an attacker's, a password's, a visitor's devices)")
	s.Int(&v.rateBurst, "rate-limit-burst", nil, view.DefaultOnDemandBurst, "computations on demand a client may make at once before --rate-limit applies (a browsing session)")
	s.String(&v.site.Name, "site-name", nil, view.DefaultSiteName, "name of this instance in the pages' header and titles")
	s.String(&v.site.Intro, "site-intro", nil, "", "introduction on the overview (default: a neutral sentence)")
	s.String(&v.site.Attribution, "data-attribution", nil, "", "where the statistics come from, shown as \"The statistics come from …\" in the footer (empty: not said)")
	s.String(&v.site.License, "data-license", nil, "", "licence of the statistics, e.g. \"CC BY-NC-SA 4.0\", in the footer (empty: none claimed)")
	s.String(&v.site.LicenseURL, "data-license-url", nil, "", "link of that licence (http or https)")
}

// viewStack is the view's data path: store → stats engine → pages.
type viewStack struct {
	store  store.Store
	engine *stats.Engine
	geo    geoip.DB
	redis  *stats.Redis
	view   *view.View
	hub    *live.Hub
}

// openViewStack opens the store and builds the engine and the pages.
// maintain says whether this process runs the rollups and retention.
func openViewStack(ctx context.Context, v *viewOptions, keyDefault string, maintain bool, explain func(context.Context, netip.Addr) (*scorecard.Explanation, error), links []view.Link, log *slog.Logger) (*viewStack, error) {
	vs := &viewStack{}
	var err error
	if vs.store, err = backend.Open(ctx, v.db, store.Options{}); err != nil {
		return nil, fmt.Errorf("statistics database: %w", err)
	}
	fail := func(err error) (*viewStack, error) {
		vs.close()
		return nil, err
	}
	if v.geoip != "" {
		if vs.geo, err = geoip.Open(v.geoip); err != nil {
			return fail(err)
		}
	} else {
		vs.geo = geoip.Default()
	}
	eo := stats.Options{Logger: log, Maintain: maintain}
	if v.redis != "" {
		if vs.redis, err = stats.NewRedis(ctx, v.redis); err != nil {
			return fail(err)
		}
		eo.Shared = vs.redis
	}
	vs.engine = stats.New(vs.store, eo)
	keyFile := v.sessionKeyFile
	if keyFile == "" {
		keyFile = keyDefault
	}
	var key []byte
	if keyFile != "" {
		if key, err = sessionKey(keyFile); err != nil {
			return fail(err)
		}
	} else {
		log.Warn("no --session-key-file: visitors' device lists are lost when the process restarts")
	}
	vs.view, err = view.New(view.Options{
		Source:           vs.engine,
		Explain:          explain,
		Devices:          vs.store.Devices,
		SessionKey:       key,
		Logger:           log,
		RateLimit:        view.RateLimit{OnDemandPerMinute: float64(v.rateLimit), OnDemandBurst: v.rateBurst, TrustProxy: v.trustProxy},
		Site:             v.site,
		GeoIPAttribution: attribution(vs.geo),
		Links:            links,
		Countries:        vs.geo,
		Networks:         asn.Lazy{},
	})
	if err != nil {
		return fail(err)
	}
	vs.hub = live.New(live.Options{
		Logger: log, Countries: vs.geo, Attribution: attribution(vs.geo), ClientAddr: view.ClientAddr(v.trustProxy),
		MapSVG: func(counts map[string]int64) template.HTML { return vs.view.Map("Events by country", "events", counts) },
		Layout: func(w http.ResponseWriter, r *http.Request, p live.Page) { vs.view.Wrap(w, r, p.Title, p.Head, p.Body) },
	})
	return vs, nil
}

// register mounts the view and the live page on mux.
func (vs *viewStack) register(mux *http.ServeMux) {
	vs.view.Register(mux)
	vs.hub.Register(mux)
}

// follow feeds the live page from a DynFW publisher until ctx ends.
func (vs *viewStack) follow(ctx context.Context, endpoint, certPath string, log *slog.Logger) error {
	fc := live.FollowConfig{Endpoint: endpoint}
	if certPath != "" {
		key, err := live.LoadServerKey(certPath)
		if err != nil {
			return fmt.Errorf("--dynfw-cert: %w", err)
		}
		fc.ServerKey = key
	}
	go func() {
		if err := vs.hub.Follow(ctx, fc); err != nil && ctx.Err() == nil {
			log.Error("live page stopped following the DynFW publisher", "endpoint", endpoint, "err", err)
		}
	}()
	return nil
}

func (vs *viewStack) close() {
	if vs.hub != nil {
		vs.hub.Close()
	}
	if vs.redis != nil {
		vs.redis.Close()
	}
	if c, ok := vs.geo.(io.Closer); ok {
		c.Close()
	}
	if vs.store != nil {
		vs.store.Close()
	}
}

// sessionKey reads the hex key in path, creating it (mode 0600) if
// missing.
func sessionKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("session key %s: want 64 hex digits", path)
	}
	return key, nil
}

// remoteExplainer asks a sentinel server's API for the explanation of an
// address, for `sentinel view` running apart from the scorer.
func remoteExplainer(base string) func(context.Context, netip.Addr) (*scorecard.Explanation, error) {
	base = strings.TrimRight(base, "/")
	client := &http.Client{Timeout: 3 * time.Second}
	return func(ctx context.Context, a netip.Addr) (*scorecard.Explanation, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/addresses/"+url.PathEscape(a.String()), nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", base, resp.Status)
		}
		var ex scorecard.Explanation
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ex); err != nil {
			return nil, fmt.Errorf("%s: %w", base, err)
		}
		return &ex, nil
	}
}

// attribution is the credit the country database asks for.
func attribution(db geoip.DB) string {
	if a, ok := db.(interface{ Attribution() string }); ok {
		return a.Attribution()
	}
	return geoip.Attribution
}
