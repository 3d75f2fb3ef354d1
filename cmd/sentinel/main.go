// Command sentinel is the Sentinel server: `sentinel run` ingests probe
// events (ZMQ, MQTT, HTTP), scores attackers, publishes the DynFW list,
// deltas and events, writes the daily greylist and serves its HTTP API, all
// in one process on an embedded data directory. `sentinel keygen` creates
// the publisher's CURVE certificate; list, block, unblock, clear, explain
// and probes steer a running server.
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
  emit      send test events to a server, as its probes would

Commands of a running server (its control socket, or --server URL):
  list      the listed addresses and the manual overrides
  block     put an address on the list for a while
  unblock   keep an address off the list for a while
  clear     remove the manual block or unblock of an address
  explain   why an address is or is not listed
  probes    the probes the server knows and their latest events

  version   print the version
  help      print the help of a command

Run "sentinel <command> --help" for the options of a command.
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
		return cmdEmit(ctx, args[1:], stdout, stderr)
	case "list", "block", "unblock", "clear", "explain", "probes":
		return cmdAdmin(ctx, args[0], args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sentinel", version)
		return 0
	case "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	case "help":
		if len(args) > 1 && args[1] != "help" {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
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
