package main

// Tests of the command line itself: one help style for every subcommand.

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
