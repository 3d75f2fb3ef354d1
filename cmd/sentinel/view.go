package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/live"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/view"
	"github.com/dynfw/sentinel/internal/viewstack"
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

// openViewStack opens the view's data path with the options of the
// command line. keyDefault is the session key file without
// --session-key-file ("": none); maintain says whether this process runs
// the rollups and retention.
func openViewStack(ctx context.Context, v *viewOptions, keyDefault string, maintain bool, explain func(context.Context, netip.Addr) (*scorecard.Explanation, error), links []view.Link, log *slog.Logger) (*viewstack.Stack, error) {
	keyFile := v.sessionKeyFile
	if keyFile == "" {
		keyFile = keyDefault
	}
	return viewstack.Open(ctx, viewstack.Options{DB: v.db, GeoIP: v.geoip, Redis: v.redis, SessionKeyFile: keyFile, Maintain: maintain,
		Explain: explain, Links: links, Logger: log, Site: v.site, TrustProxy: v.trustProxy,
		RateLimit: view.RateLimit{OnDemandPerMinute: float64(v.rateLimit), OnDemandBurst: v.rateBurst, TrustProxy: v.trustProxy}})
}

// follow feeds the live page from a DynFW publisher until ctx ends.
func follow(ctx context.Context, hub *live.Hub, endpoint, certPath string, log *slog.Logger) error {
	fc := live.FollowConfig{Endpoint: endpoint}
	if certPath != "" {
		key, err := live.LoadServerKey(certPath)
		if err != nil {
			return fmt.Errorf("--dynfw-cert: %w", err)
		}
		fc.ServerKey = key
	}
	go func() {
		if err := hub.Follow(ctx, fc); err != nil && ctx.Err() == nil {
			log.Error("live page stopped following the DynFW publisher", "endpoint", endpoint, "err", err)
		}
	}()
	return nil
}
