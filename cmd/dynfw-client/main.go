// Command dynfw-client subscribes to a DynFW server (the Turris Sentinel
// dynamic firewall, or a server of this project) and keeps a firewall set of
// attacker addresses in sync with what it publishes: nftables or ipset sets,
// a file, or another program. With --backend print it only prints every
// message as one JSON object per line on stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/dynfw/sentinel/dynfw"
	"github.com/dynfw/sentinel/internal/certfetch"
	"github.com/dynfw/sentinel/internal/client"
	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/policy"
	"github.com/dynfw/sentinel/internal/scrape"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newOptions()
	if err := o.parse(args); err != nil {
		if errors.Is(err, config.ErrHelp) {
			o.usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "dynfw-client: %v\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "dynfw-client", version)
		return 0
	}
	log := newLogger(o, stderr)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && o.memoryLimit > 0 {
		// Loading a list of a million addresses briefly needs several
		// times the steady memory; a soft limit makes the collector keep
		// that peak close to what is live.
		debug.SetMemoryLimit(int64(o.memoryLimit) << 20)
	}

	startCtx, cancel := ctx, context.CancelFunc(func() {})
	if !o.retry {
		startCtx, cancel = context.WithTimeout(ctx, o.startTimeout)
	}
	defer cancel()

	serverCert, err := serverCertificate(startCtx, o, log)
	if err != nil {
		fmt.Fprintf(stderr, "dynfw-client: server certificate: %v\n", err)
		return 1
	}
	cfg := client.Config{Server: o.server, Port: o.port, ServerKey: serverCert.Public, Heartbeat: o.heartbeat, HeartbeatTimeout: o.heartbeat / 2, Logger: log}
	if own, err := clientKeys(o.keyDir, log); err == nil {
		cfg.PublicKey, cfg.SecretKey = own.Public, *own.Secret
	}
	conn, err := client.Dial(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "dynfw-client: %v\n", err)
		return 1
	}
	defer conn.Close()

	if o.backend == "print" {
		if err := conn.Subscribe(dynfw.TopicPrefix); err != nil {
			fmt.Fprintf(stderr, "dynfw-client: %v\n", err)
			return 1
		}
		if code, ok := waitConnected(ctx, startCtx, conn, o, stderr); !ok {
			return code
		}
		err := printMessages(ctx, conn, stdout, log)
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintf(stderr, "dynfw-client: %v\n", err)
		return 1
	}
	return syncFirewall(ctx, startCtx, o, conn, log, stderr)
}

func newLogger(o *options, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// waitConnected waits for the first handshake; it reports an exit code when
// the client must stop.
func waitConnected(ctx, startCtx context.Context, conn *client.Conn, o *options, stderr io.Writer) (int, bool) {
	if err := conn.WaitConnected(startCtx, o.retry); err != nil {
		if ctx.Err() != nil {
			return 0, false // interrupted
		}
		fmt.Fprintf(stderr, "dynfw-client: %v\n", err)
		return 1, false
	}
	return 0, true
}

// syncFirewall runs the backend's synchronisation until a signal (or, with
// --once, the first list).
func syncFirewall(ctx, startCtx context.Context, o *options, conn *client.Conn, log *slog.Logger, stderr io.Writer) int {
	backend, err := newBackend(ctx, o, log)
	if err != nil {
		fmt.Fprintf(stderr, "dynfw-client: backend %s: %v\n", o.backend, err)
		return 1
	}
	closeBackend := func() {
		if err := backend.Close(o.keepRules); err != nil {
			log.Error("closing the backend", "backend", backend.Name(), "err", err)
		}
	}
	if code, ok := waitConnected(ctx, startCtx, conn, o, stderr); !ok {
		closeBackend()
		return code
	}
	set := policy.New(policy.Config{IPv6Prefix: o.ipv6Prefix, NoIPv6: o.noIPv6, Allow: o.allow,
		AllowPrivate: o.allowPrivate, MinPrefix4: o.minPrefix4, MinPrefix6: o.minPrefix6})
	syncer := client.NewSyncer(client.SyncConfig{
		Machine:       client.MachineConfig{VerifyInterval: o.verifyInterval},
		BatchInterval: o.batchInterval,
		Once:          o.once,
		Logger:        log,
		Server:        o.server,
	}, conn, set, backend)

	if o.metrics != "" {
		// The same budgets as the server's listeners, with a cap fit for a
		// router: a scraper or two, never thousands of clients.
		srv := scrape.New(scrape.Config{Logger: log}, metricsBody(syncer, backend))
		if ln, err := net.Listen("tcp", o.metrics); err != nil {
			log.Error("metrics listener", "addr", o.metrics, "err", err)
		} else {
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, scrape.ErrClosed) {
					log.Error("metrics listener", "addr", o.metrics, "err", err)
				}
			}()
			defer srv.Close()
		}
	}

	// SIGHUP re-applies the whole set, for firewalls that lost it on a
	// reload (firewalld, fw4).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: re-applying the whole set")
				syncer.RequestReplace()
			case <-runCtx.Done():
				return
			}
		}
	}()

	log.Info("dynfw-client started", "version", version, "server", cfg(o), "backend", backend.Name())
	err = syncer.Run(runCtx)
	closeBackend()
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "dynfw-client: %v\n", err)
		return 1
	}
	return 0
}

func cfg(o *options) string { return fmt.Sprintf("%s:%d", o.server, o.port) }

// serverCertificate loads --cert (downloading it first with --renew), or
// downloads the certificate from --cert-url and caches it in the key
// directory; the cached copy is used when the download fails.
func serverCertificate(ctx context.Context, o *options, log *slog.Logger) (*zcert.Cert, error) {
	if o.cert != "" && o.renew {
		cert, _, err := certfetch.Fetch(ctx, o.certURL, certfetch.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("download from %s failed: %w", o.certURL, err)
		}
		if err := cert.SavePublic(o.cert); err != nil {
			return nil, err
		}
		log.Info("server certificate renewed", "file", o.cert, "key", cert.Public.String())
		return cert, nil
	}
	if o.cert != "" {
		return zcert.Load(o.cert)
	}
	cache := filepath.Join(o.keyDir, "server.pub")
	cached, cacheErr := zcert.Load(cache)
	fetchCtx := ctx
	if cacheErr == nil {
		// With a cached copy, do not let a slow download delay the start.
		var cancel context.CancelFunc
		fetchCtx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	cert, _, err := certfetch.Fetch(fetchCtx, o.certURL, certfetch.Options{Logger: log})
	if err != nil {
		if cacheErr == nil {
			log.Warn("using the cached server certificate", "file", cache, "download_err", err)
			return cached, nil
		}
		return nil, fmt.Errorf("download from %s failed: %w", o.certURL, err)
	}
	if cacheErr != nil || cached.Public != cert.Public {
		if err := os.MkdirAll(o.keyDir, 0o700); err == nil {
			if err := cert.SavePublic(cache); err != nil {
				log.Debug("cannot cache the server certificate", "file", cache, "err", err)
			}
		}
	}
	return cert, nil
}

// clientKeys loads the client's key pair from dir or creates it. Without a
// writable directory the transport generates a key pair for this run.
func clientKeys(dir string, log *slog.Logger) (*zcert.Cert, error) {
	cert, created, err := zcert.LoadOrCreate(dir, "client")
	if err != nil {
		log.Warn("no persistent client key, using a new one for this run", "dir", dir, "err", err)
		return nil, err
	}
	if created {
		log.Info("created client key pair", "dir", dir, "public_key", cert.Public.String())
	}
	return cert, nil
}
