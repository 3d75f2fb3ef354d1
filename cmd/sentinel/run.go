package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/dynfw/sentinel/internal/recorder"
	"github.com/dynfw/sentinel/internal/scoring"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/server"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newRunOptions()
	if err := o.parse(args); err != nil {
		if errors.Is(err, config.ErrHelp) {
			o.usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 2
	}
	cfg, err := o.serverConfig()
	if err != nil {
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 2
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
	explain := func(_ context.Context, a netip.Addr) (*scoring.Explanation, error) {
		ex, ok := core.Explain(a)
		if !ok {
			return nil, nil
		}
		return &ex, nil
	}
	vs, err := openViewStack(ctx, &o.view, filepath.Join(o.data, "view-session.key"), true, explain, log)
	if err != nil {
		return nil, err
	}
	rec := recorder.New(recorder.Options{Store: vs.store, Probes: core.Probes(), Countries: vs.geo, Logger: log})
	core.AddSink(rec)
	vs.view.Register(srv.Mux())
	registerViewMetrics(srv, vs, rec)
	// The recorder outlives ctx: it writes what the server flushes while
	// it shuts down, then stops when stop cancels it.
	recCtx, cancelRec := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(recCtx) })
	wg.Go(func() { vs.engine.Run(ctx) })
	log.Info("sentinel view enabled", "db", redactDSN(o.view.db))
	return func() {
		cancelRec()
		wg.Wait()
		vs.close()
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
