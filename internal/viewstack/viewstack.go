// Package viewstack builds Sentinel View's data path, the same for
// `sentinel run` (the view next to the server) and `sentinel view` (the web
// part alone): the statistics store, the stats engine with its optional
// shared Redis cache, the country database, the pages and the live page.
package viewstack

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
	"github.com/dynfw/sentinel/internal/geoip"
	"github.com/dynfw/sentinel/internal/live"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/view"
)

// Options configure the stack.
type Options struct {
	// DB is the statistics database: postgres://… or an SQLite file.
	DB string
	// GeoIP is a country database file; empty: the embedded table.
	GeoIP string
	// Redis is the URL of a cache shared by several view instances;
	// empty: in-process only.
	Redis string
	// SessionKeyFile holds the key of visitors' sessions (SessionKey);
	// empty: a key of this process only.
	SessionKeyFile string
	// Maintain says whether this process runs the rollups and retention.
	Maintain bool
	// Explain explains an address on its page; nil: no explanations.
	Explain func(context.Context, netip.Addr) (*scorecard.Explanation, error)
	// Links are the header's links to the pages beside the statistics.
	Links []view.Link
	// RateLimit, TrustProxy and Site are the view's (view.Options).
	RateLimit  view.RateLimit
	TrustProxy bool
	Site       view.Site
	Logger     *slog.Logger
}

// Stack is the view's data path: store → stats engine → pages.
type Stack struct {
	Store  store.Store
	Engine *stats.Engine
	Geo    geoip.DB
	Redis  *stats.Redis
	View   *view.View
	Hub    *live.Hub
}

// Open opens the store and builds the engine and the pages.
func Open(ctx context.Context, o Options) (*Stack, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	vs := &Stack{}
	var err error
	if vs.Store, err = backend.Open(ctx, o.DB, store.Options{}); err != nil {
		return nil, fmt.Errorf("statistics database: %w", err)
	}
	fail := func(err error) (*Stack, error) {
		vs.Close()
		return nil, err
	}
	if o.GeoIP != "" {
		if vs.Geo, err = geoip.Open(o.GeoIP); err != nil {
			return fail(err)
		}
	} else {
		vs.Geo = geoip.Default()
	}
	eo := stats.Options{Logger: log, Maintain: o.Maintain}
	if o.Redis != "" {
		if vs.Redis, err = stats.NewRedis(ctx, o.Redis); err != nil {
			return fail(err)
		}
		eo.Shared = vs.Redis
	}
	vs.Engine = stats.New(vs.Store, eo)
	var key []byte
	if o.SessionKeyFile != "" {
		if key, err = SessionKey(o.SessionKeyFile); err != nil {
			return fail(err)
		}
	} else {
		log.Warn("no --session-key-file: visitors' device lists are lost when the process restarts")
	}
	vs.View, err = view.New(view.Options{
		Source:           vs.Engine,
		Explain:          o.Explain,
		Devices:          vs.Store.Devices,
		SessionKey:       key,
		Logger:           log,
		RateLimit:        o.RateLimit,
		Site:             o.Site,
		GeoIPAttribution: Attribution(vs.Geo),
		Links:            o.Links,
		Countries:        vs.Geo,
		Networks:         asn.Lazy{},
	})
	if err != nil {
		return fail(err)
	}
	vs.Hub = live.New(live.Options{
		Logger: log, Countries: vs.Geo, Attribution: Attribution(vs.Geo), ClientAddr: view.ClientAddr(o.TrustProxy),
		MapSVG: func(counts map[string]int64) template.HTML { return vs.View.Map("Events by country", "events", counts) },
		Layout: func(w http.ResponseWriter, r *http.Request, p live.Page) { vs.View.Wrap(w, r, p.Title, p.Head, p.Body) },
	})
	return vs, nil
}

// Register mounts the view and the live page on mux.
func (vs *Stack) Register(mux *http.ServeMux) {
	vs.View.Register(mux)
	vs.Hub.Register(mux)
}

// Close closes what Open opened.
func (vs *Stack) Close() {
	if vs.Hub != nil {
		vs.Hub.Close()
	}
	if vs.Redis != nil {
		vs.Redis.Close()
	}
	if c, ok := vs.Geo.(io.Closer); ok {
		c.Close()
	}
	if vs.Store != nil {
		vs.Store.Close()
	}
}

// SessionKey reads the hex key in path, creating it (mode 0600) if
// missing.
func SessionKey(path string) ([]byte, error) {
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

// RemoteExplainer asks a sentinel server's API for the explanation of an
// address, for `sentinel view` running apart from the scorer.
func RemoteExplainer(base string) func(context.Context, netip.Addr) (*scorecard.Explanation, error) {
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

// Attribution is the credit the country database asks for.
func Attribution(db geoip.DB) string {
	if a, ok := db.(interface{ Attribution() string }); ok {
		return a.Attribution()
	}
	return geoip.Attribution
}
