// Command sentinel is the Sentinel server: `sentinel run` ingests probe
// events (ZMQ, MQTT, HTTP), scores attackers, publishes the DynFW list,
// deltas and events, writes the daily greylist and serves its HTTP API, all
// in one process on an embedded data directory. `sentinel keygen` creates
// the publisher's CURVE certificate.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage: sentinel <command> [options]

Commands:
  run       run the server: ingest, scoring, DynFW publisher, greylist, HTTP
  keygen    create (or show) the DynFW server certificate
  view      serve Sentinel View alone, from a shared database
  stats     inspect and repair the statistics database (rollups, caches)
  passwords import a Have I Been Pwned file into the password checker
  emit      push test events to a server's probe ingest
  version   print the version

Run "sentinel <command> -h" for the options of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "view":
		return cmdView(ctx, args[1:], stdout, stderr)
	case "passwords":
		return cmdPasswords(ctx, args[1:], stdout, stderr)
	case "stats":
		return cmdStats(ctx, args[1:], stdout, stderr)
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "emit":
		return cmdEmit(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sentinel", version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sentinel: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func newLogger(verbose bool, format string, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	ho := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
