package main

// Tests of the command line itself: one help style for every subcommand.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

// subcommands are every subcommand, as typed (with its own subcommand
// where it has them).
var subcommands = [][]string{
	{"run"}, {"view"}, {"keygen"}, {"emit"}, {"stats"}, {"stats", "status"}, {"passwords"}, {"passwords", "import"},
	{"list"}, {"block"}, {"unblock"}, {"clear"}, {"explain"}, {"probes"},
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelpExitsZero: --help and -h print the usage to stdout and exit 0,
// for every subcommand.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, sc := range subcommands {
		for _, h := range []string{"--help", "-h"} {
			args := append(append([]string(nil), sc...), h)
			code, stdout, stderr := runCLI(t, args...)
			want := "Usage: sentinel " + sc[0]
			if code != 0 || !strings.HasPrefix(stdout, want) || stderr != "" {
				t.Errorf("sentinel %s: exit %d, stdout %.60q, stderr %.200q; want 0, stdout starting with %q, no stderr",
					strings.Join(args, " "), code, stdout, stderr, want)
			}
		}
	}
}

// TestBadFlagExitsTwo: an unknown option exits 2 with a one-line error
// naming it and the usage, on stderr, for every subcommand.
func TestBadFlagExitsTwo(t *testing.T) {
	t.Parallel()
	for _, sc := range subcommands {
		args := append(append([]string(nil), sc...), "--bogus")
		code, stdout, stderr := runCLI(t, args...)
		first, _, _ := strings.Cut(stderr, "\n")
		if code != 2 || stdout != "" || !strings.Contains(first, "unknown option --bogus") || !strings.Contains(stderr, "Usage: sentinel "+sc[0]) {
			t.Errorf("sentinel %s: exit %d, stdout %.60q, stderr %.300q; want 2, \"unknown option --bogus\" and the usage on stderr",
				strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestStatsFindsDatabase: sentinel stats reads the database of the
// server's data directory, as sentinel run places it, and lists the valid
// names of what it does not know.
func TestStatsFindsDatabase(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	st, err := backend.Open(context.Background(), filepath.Join(data, "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, stdout, stderr := runCLI(t, "stats", "status", "--config", "/dev/null", "--data", data)
	if code != 0 || !strings.Contains(stdout, "sqlite") {
		t.Fatalf("stats status --data: exit %d, %s %s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "stats", "resource", "nope", "1h", "--config", "/dev/null", "--data", data)
	if code != 2 || !strings.Contains(stderr, `unknown resource "nope"`) || !strings.Contains(stderr, "all_incidents_graph") {
		t.Fatalf("unknown resource: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "stats", "resource", "all_incidents_graph", "2h", "--config", "/dev/null", "--data", data)
	if code != 2 || !strings.Contains(stderr, "1h, 6h, 1d") {
		t.Fatalf("unknown period: exit %d, %s", code, stderr)
	}
	empty := t.TempDir()
	code, _, stderr = runCLI(t, "stats", "status", "--config", "/dev/null", "--data", empty)
	if code != 1 || !strings.Contains(stderr, "no statistics database at "+filepath.Join(empty, "stats.db")) {
		t.Fatalf("no database: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(empty, "stats.db")); err == nil {
		t.Fatal("stats created an empty database")
	}
}
