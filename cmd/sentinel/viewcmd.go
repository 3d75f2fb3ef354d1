package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/greylist"
	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
	"github.com/dynfw/sentinel/internal/view"
	"github.com/dynfw/sentinel/internal/webserver"
)

const viewUsage = `Usage: sentinel view --db URL [options]

Serves Sentinel View (statistics pages, /api/resource, the password checker
and, with --greylist-dir, the greylist) from a database that ` + "`sentinel run\n--db`" + ` fills. [greylist] in the config file sets license-url and
attribution, as for the server.
`

// cmdView runs Sentinel View alone against a shared database: ingest and
// several view instances can run on different machines.
func cmdView(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		vo          viewOptions
		listen      string
		ho          httpOptions
		explainURL  string
		maintain    bool
		verbose     bool
		logFormat   string
		cfgFile     string
		data        string
		greylistDir string
		grey        greylistSection
		pwPoll      time.Duration
		pwSettle    time.Duration
	)
	s := config.New("sentinel view", "SENTINEL_")
	s.String(&cfgFile, "config", nil, "", "config file (TOML)")
	vo.register(s, "", "statistics database: postgres://user@host/db (required), or an SQLite file another process writes")
	s.String(&listen, "http-listen", nil, ":8080", "HTTP listener of the web view")
	ho.register(s)
	s.String(&explainURL, "explain-url", nil, "", "base URL of a sentinel server whose /api/v1/addresses explains attackers on their pages")
	s.Bool(&maintain, "maintain", nil, false, "also run rollups and retention (normally the ingest process does; running both is harmless)")
	s.String(&data, "data", nil, defaultViewDataDir(), "data directory of this view: the password checker's index passwords.idx (created if missing; not the server's)")
	s.String(&greylistDir, "greylist-dir", nil, "", "greylist directory to serve read-only at /greylist-data/, e.g. a shared copy of the server's <data>/greylist (empty: no greylist)")
	s.Duration(&pwPoll, "passwords-poll", nil, 10*time.Second, "how often the password checker reads new passwords from the database")
	s.Duration(&pwSettle, "passwords-settle", nil, 30*time.Second, "how long after its time a password row is read; rows stored later than that may be missed")
	s.Bool(&verbose, "verbose", []string{"v"}, false, "debug logging")
	s.String(&logFormat, "log-format", nil, "text", "log format: text or json")
	s.Section("greylist", &grey)
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, viewUsage+"\nOptions:\n")
		s.Usage(w)
	}
	if code, ok := parseOptions("sentinel view", viewUsage, s, printUsage, args, "config", "", stdout, stderr); !ok {
		return code
	}
	if vo.db == "" {
		return usageError(stderr, "sentinel view", viewUsage, errors.New("--db is required"))
	}
	if pwPoll <= 0 || pwSettle < 0 {
		return usageError(stderr, "sentinel view", viewUsage, errors.New("--passwords-poll must be positive and --passwords-settle not negative"))
	}
	log := newLogger(verbose, logFormat, stderr)
	var explain = remoteExplainer(explainURL)
	if explainURL == "" {
		explain = nil
	}
	var links []view.Link
	if vo.dynfwURL != "" {
		links = append(links, view.Link{Label: "DynFW live", Href: "/dynfw/"})
	}
	links = append(links, view.Link{Label: "Password check", Href: "/passcheck/"})
	if greylistDir != "" {
		links = append(links, view.Link{Label: "Greylist", Href: greylist.URLPrefix})
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		fmt.Fprintf(stderr, "sentinel view: data directory: %v\n", err)
		return 1
	}
	vs, err := openViewStack(ctx, &vo, "", maintain, explain, links, log)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel view: %v\n", err)
		return 1
	}
	defer vs.close()
	mux := http.NewServeMux()
	vs.register(mux)
	// The password checker: an index of this view's own, kept current
	// from the password rows that the ingest process stores.
	tail := &corpusTail{store: vs.store, log: log, poll: pwPoll, settle: pwSettle, compact: 15 * time.Minute, now: time.Now}
	if err := tail.open(ctx, data); err != nil {
		fmt.Fprintf(stderr, "sentinel view: %v\n", err)
		return 1
	}
	defer tail.corpus.Close()
	tail.corpus.Register(mux)
	tail.corpus.RegisterPages(mux, vs.view.Wrap)
	vs.view.SetPasswords(tail.corpus)
	if greylistDir != "" {
		gs, err := greylist.Open(greylistDir, greylist.Options{ReadOnly: true, LicenseURL: grey.LicenseURL,
			Attribution: grey.Attribution, Logger: log})
		if err != nil {
			fmt.Fprintf(stderr, "sentinel view: --greylist-dir: %v\n", err)
			return 1
		}
		defer gs.Close()
		gs.SetLayout(vs.view.Wrap)
		mux.Handle(greylist.URLPrefix, gs.Handler())
	}
	if vo.dynfwURL != "" {
		if err := vs.follow(ctx, vo.dynfwURL, vo.dynfwCert, log); err != nil {
			fmt.Fprintf(stderr, "sentinel view: %v\n", err)
			return 2
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel view: %v\n", err)
		return 1
	}
	log.Info("sentinel view listening", "addr", ln.Addr().String(), "version", version)
	hc := ho.config()
	hc.Logger = log
	hs := webserver.New(hc, mux)
	hs.RegisterOnShutdown(vs.hub.Close)
	var wg sync.WaitGroup
	wg.Go(func() { vs.engine.Run(ctx) })
	wg.Go(func() { tail.run(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	})
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "sentinel view: %v\n", err)
		return 1
	}
	wg.Wait()
	return 0
}

const statsUsage = `Usage: sentinel stats <command> [options] [args]

Inspects and repairs the statistics database of Sentinel View: that of the
server on this host (<data>/stats.db, or the db of its config file) unless
--db names another.

Commands:
  status                         tables, rollup watermarks, devices, size
  rollup                         bring every rollup up to date now
  rebuild PRECISION FROM [TO]    recompute rollups (15m, 1h or 1d and coarser)
                                 for [FROM, TO); times as 2006-01-02 or RFC 3339
  retain                         delete rows past their retention
  resource NAME PERIOD [ip=A] [password=P]
                                 compute one resource and print its JSON
  cache-clear                    empty the shared Redis cache (--redis)
`

// cmdStats is the operator's tool for the statistics store, in place of
// the reference view's flask commands.
func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var vo viewOptions
	var cfgFile, data string
	c := newCommand("sentinel stats", statsUsage)
	s := c.opts
	// The server's config file, read for the few options that matter here.
	s.Lenient = true
	s.String(&cfgFile, "config", nil, "", "config file of sentinel run (TOML; default "+defaultConfigFile+" if it exists): its data and db are used")
	s.String(&data, "data", nil, defaultDataDir(), "data directory of sentinel run, where its statistics database is by default")
	vo.register(s, "", "statistics database: postgres://… or an SQLite file (default <data>/stats.db, as sentinel run)")
	command, rest, code, ok := splitSubcommand(c, args, "config", defaultConfigFile, stdout, stderr)
	if !ok {
		return code
	}
	rest = append([]string{command}, rest...)
	if rest[0] == "cache-clear" {
		if vo.redis == "" {
			return c.usageError(stderr, "cache-clear needs --redis (in-process caches end with their process)")
		}
		rc, err := stats.NewRedis(ctx, vo.redis)
		if err != nil {
			return c.fail(stderr, err)
		}
		defer rc.Close()
		n, err := rc.Clear(ctx)
		if err != nil {
			return c.fail(stderr, err)
		}
		fmt.Fprintf(stdout, "deleted %d cached entries\n", n)
		return 0
	}
	if !slices.Contains(statsCommands, rest[0]) {
		return c.usageError(stderr, "unknown command %q (%s)", rest[0], strings.Join(statsCommands, ", "))
	}
	db := vo.db
	if db == "" {
		// As sentinel run: <data>/stats.db. Never create it here: an
		// empty database in the wrong place answers every question wrong.
		db = filepath.Join(data, "stats.db")
		if _, err := os.Stat(db); err != nil {
			return c.fail(stderr, fmt.Errorf("no statistics database at %s (sentinel run creates it in its --data directory; give --data or --db)", db))
		}
	}
	st, err := backend.Open(ctx, db, store.Options{})
	if err != nil {
		return c.fail(stderr, err)
	}
	defer st.Close()
	if err := statsCommand(ctx, st, rest, stdout); err != nil {
		if errors.Is(err, errUsage) {
			return c.usageError(stderr, "%s: %s", rest[0], strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		}
		fmt.Fprintf(stderr, "sentinel stats %s: %v\n", rest[0], err)
		return 1
	}
	return 0
}

// statsCommands are the commands of `sentinel stats`.
var statsCommands = []string{"status", "rollup", "rebuild", "retain", "resource", "cache-clear"}

var errUsage = errors.New("bad arguments")

func statsCommand(ctx context.Context, st store.Store, args []string, w io.Writer) error {
	now := time.Now()
	switch args[0] {
	case "status":
		s, err := st.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "backend\t%s\n", s.Backend)
		if s.Bytes > 0 {
			fmt.Fprintf(tw, "size\t%.1f MiB\n", float64(s.Bytes)/(1<<20))
		}
		fmt.Fprintf(tw, "devices\t%d\n", s.Devices)
		for _, t := range []store.Table{store.Incidents, store.Passwords, store.Ports} {
			fmt.Fprintf(tw, "%s (raw)\t%d rows\n", t, s.Tables[t])
		}
		fmt.Fprintln(tw, "\nrollup\twatermark\tdirty\trows")
		for _, r := range s.Rollups {
			wm := "none"
			if !r.Watermark.IsZero() {
				wm = r.Watermark.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s %s\t%s\t%d\t%d\n", r.Table, r.Precision, wm, r.Dirty, r.Rows)
		}
		if len(s.Windows) > 0 {
			fmt.Fprintln(tw, "\nsliding window\tfrom\tto\tcurrent")
			for _, sw := range s.Windows {
				from, to := "none", "none"
				if !sw.From.IsZero() {
					from, to = sw.From.Format(time.RFC3339), sw.To.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s %s %v\t%s\t%s\t%v\n", sw.Table, sw.Precision, sw.Span, from, to, sw.Current)
			}
		}
		return tw.Flush()
	case "rollup":
		rep, err := st.Rollup(ctx, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "rolled up %d buckets (%d rows) in %v\n", rep.Buckets, rep.Rows, rep.Took.Round(time.Millisecond))
		return nil
	case "rebuild":
		if len(args) < 3 {
			return fmt.Errorf("%w: rebuild PRECISION FROM [TO]", errUsage)
		}
		var p store.Precision
		switch args[1] {
		case "15m":
			p = store.Quarter
		case "1h":
			p = store.Hour
		case "1d":
			p = store.Day
		default:
			return fmt.Errorf("%w: precision %q (15m, 1h or 1d)", errUsage, args[1])
		}
		from, err := parseWhen(args[2])
		if err != nil {
			return err
		}
		to := now.Truncate(p.Width())
		if len(args) > 3 {
			if to, err = parseWhen(args[3]); err != nil {
				return err
			}
		}
		rep, err := st.Rebuild(ctx, p, from.Truncate(p.Width()), to.Truncate(p.Width()))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "rebuilt %d buckets (%d rows) in %v\n", rep.Buckets, rep.Rows, rep.Took.Round(time.Millisecond))
		return nil
	case "retain":
		return st.Retain(ctx, now)
	case "resource":
		if len(args) < 3 {
			return fmt.Errorf("%w: resource NAME PERIOD [ip=A] [password=P]", errUsage)
		}
		req := stats.Request{Name: args[1], Period: args[2]}
		for _, kv := range args[3:] {
			switch k, v, _ := strings.Cut(kv, "="); k {
			case "ip":
				a, err := netip.ParseAddr(v)
				if err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				req.IP = a.Unmap()
			case "password":
				req.Password = v
			default:
				return fmt.Errorf("%w: unknown parameter %q", errUsage, k)
			}
		}
		r, err := stats.Compute(ctx, st, req, now, 4*time.Minute)
		switch {
		case errors.Is(err, stats.ErrUnknownResource):
			return fmt.Errorf("%w: unknown resource %q; the resources are:\n  %s", errUsage, req.Name, strings.Join(stats.Names(), "\n  "))
		case errors.Is(err, stats.ErrBadPeriod):
			var names []string
			for _, p := range stats.Periods {
				names = append(names, p.Name)
			}
			return fmt.Errorf("%w: unknown period %q (%s)", errUsage, req.Period, strings.Join(names, ", "))
		case err != nil:
			return err
		}
		// {"data": ..., "resource_name": name}, indented.
		b := view.AppendDataJSON([]byte(`{"data":`), &r)
		name, _ := json.Marshal(r.Name)
		b = append(append(append(b, `,"resource_name":`...), name...), "}\n"...)
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return err
		}
		_, err = w.Write(out.Bytes())
		return err
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a time (2006-01-02 or RFC 3339)", errUsage, s)
}
