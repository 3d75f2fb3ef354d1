package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/passwords/feed"
	"github.com/dynfw/sentinel/internal/recorder"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/journal"
	"github.com/dynfw/sentinel/internal/scorecard"
	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/internal/view"
)

const runSynopsis = "Usage: sentinel run [options]"

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newRunOptions()
	if err := o.parse(args); err != nil {
		if errors.Is(err, config.ErrHelp) {
			o.usage(stdout)
			return 0
		}
		return usageError(stderr, "sentinel run", runSynopsis, err)
	}
	cfg, err := o.serverConfig()
	if err != nil {
		return usageError(stderr, "sentinel run", runSynopsis, err)
	}
	log := newLogger(o.verbose, o.logFormat, stderr)
	cfg.Logger = log
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		fmt.Fprintf(stderr, "sentinel run: data directory: %v\n", err)
		return 1
	}
	log.Info("sentinel starting", "version", version, "data", o.data)
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		if errors.Is(err, control.ErrRunning) {
			fmt.Fprintf(stderr, "sentinel run: stop it first, or give this one another --data; sentinel list --data %s talks to it\n", o.data)
		}
		if errors.Is(err, journal.ErrNoState) {
			fmt.Fprintf(stderr, "sentinel run: nothing was published. Restore %s from a backup (the files that do not verify are in %s),\n"+
				"or start once with --accept-empty-state to publish an empty list under a new version.\n",
				filepath.Join(o.data, "journal"), filepath.Join(o.data, "journal", journal.QuarantineDir))
		}
		return 1
	}
	if !o.noView {
		stop, err := startView(ctx, o, srv, log)
		if err != nil {
			fmt.Fprintf(stderr, "sentinel run: %v\n", err)
			srv.Close()
			return 1
		}
		defer stop()
	}
	logURLs(log, srv, !o.noView)
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 1
	}
	return 0
}

// startView records the server's events into the statistics store and
// serves Sentinel View on the server's HTTP listener. stop, called after
// the server has stopped, writes the last queued rows and closes the store.
func startView(ctx context.Context, o *runOptions, srv *server.Server, log *slog.Logger) (stop func(), err error) {
	if o.view.db == "" {
		o.view.db = filepath.Join(o.data, "stats.db")
	}
	core := srv.Core()
	explain := func(_ context.Context, a netip.Addr) (*scorecard.Explanation, error) {
		ex, ok := core.Explain(a)
		if !ok {
			return nil, nil
		}
		return &ex, nil
	}
	links := []view.Link{{Label: "DynFW live", Href: "/dynfw/"}, {Label: "Password check", Href: "/passcheck/"}, {Label: "Greylist", Href: "/greylist-data/"}}
	vs, err := openViewStack(ctx, &o.view, filepath.Join(o.data, "view-session.key"), true, explain, links, log)
	if err != nil {
		return nil, err
	}
	// The live page follows this server's own publisher, as any DynFW
	// client would, unless told to follow another.
	endpoint, cert := o.view.dynfwURL, o.view.dynfwCert
	if endpoint == "" {
		endpoint, cert = localEndpoint(srv), filepath.Join(o.data, "dynfw.key")
	}
	if err := follow(ctx, vs.Hub, endpoint, cert, log); err != nil {
		vs.Close()
		return nil, err
	}
	srv.OnShutdown(vs.Hub.Close)
	// The recorder adds what arrives from now on; the replay covers what
	// was stored before, to the end of this second.
	pw, err := feed.Open(ctx, o.data, feed.Options{Store: vs.Store, Logger: log, Live: true})
	if err != nil {
		vs.Close()
		return nil, err
	}
	corpus := pw.Corpus()
	rec := recorder.New(recorder.Options{Store: vs.Store, Probes: core.Probes(), Countries: vs.Geo, Logger: log,
		Rejected: rejectedRows(srv.Metrics()),
		Passwords: func(trap, pw string) {
			src, _ := passwords.ParseSource(trap)
			corpus.Add(pw, src)
		}})
	core.AddSink(rec)
	vs.Register(srv.Mux())
	srv.Greylist().SetLayout(vs.View.Wrap)
	corpus.Register(srv.Mux())
	corpus.RegisterPages(srv.Mux(), vs.View.Wrap)
	vs.View.SetPasswords(corpus)
	registerViewMetrics(srv, vs, rec)
	// The recorder outlives ctx: it writes what the server flushes while
	// it shuts down, then stops when stop cancels it.
	recCtx, cancelRec := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(recCtx) })
	wg.Go(func() { vs.Engine.Run(ctx) })
	wg.Go(func() { pw.Run(ctx) })
	log.Info("sentinel view enabled", "db", redactDSN(o.view.db))
	return func() {
		cancelRec()
		wg.Wait()
		pw.Close()
		vs.Close()
	}, nil
}

// redactDSN hides a database password in logs.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// localEndpoint is a loopback endpoint of the server's own publisher.
func localEndpoint(srv *server.Server) string {
	for _, a := range srv.Core().Publisher().Addrs() {
		if ta, ok := a.(*net.TCPAddr); ok {
			host := "127.0.0.1"
			if ta.IP.To4() == nil && !ta.IP.IsUnspecified() {
				host = "::1"
			}
			return "tcp://" + net.JoinHostPort(host, strconv.Itoa(ta.Port))
		}
	}
	return "tcp://127.0.0.1:7087"
}

// logURLs says where to go: the pages, the metrics, the DynFW publisher
// with the client's command line, the probe ingest and the control socket,
// at the addresses actually bound.
func logURLs(log *slog.Logger, srv *server.Server, view bool) {
	if a := srv.HTTPAddr(); a != nil {
		base, all := server.LocalURL("http", a)
		if all {
			log.Info("http listens on all interfaces: other hosts reach it at this host's addresses", "addr", a.String())
		}
		if view {
			log.Info("open Sentinel View", "url", base+"/", "live", base+"/dynfw/", "passwords", base+"/passcheck/", "greylist", base+"/greylist-data/")
		}
		log.Info("metrics and certificate", "metrics", base+"/metrics", "cert", base+"/dynfw.pub")
		for _, p := range srv.Core().Publisher().Addrs() {
			ep, all := server.LocalURL("tcp", p)
			u, _ := url.Parse(ep)
			log.Info("DynFW publisher", "endpoint", ep, "all_interfaces", all,
				"client", "dynfw-client -s "+u.Hostname()+" -p "+u.Port()+" --cert-url "+base+"/dynfw.pub")
		}
	}
	for _, a := range srv.IngestAddrs() {
		ep, all := server.LocalURL("tcp", a)
		log.Info("probe ingest", "endpoint", ep, "all_interfaces", all)
	}
	log.Info("operator commands", "socket", srv.ControlPath(), "try", "sentinel list --data "+filepath.Dir(srv.ControlPath()))
}
