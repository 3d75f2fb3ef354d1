package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/passwords/feed"
)

const passwordsUsage = `Usage: sentinel passwords import [--data DIR] [--replace] FILE

Loads a Have I Been Pwned SHA-1 file (HASH:COUNT per line, any size) into
the password checker's index <data>/passwords.idx, merged with what is
there unless --replace. DIR is the data directory of ` + "`sentinel run`" + `, or
that of ` + "`sentinel view`" + ` (its --data, default <server data>/view), which
keeps its own index. Stop the process that serves the index first, or
restart it right after: when it next compacts, a running one writes its
old index over the import.
`

// cmdPasswords manages the password checker's corpus.
func cmdPasswords(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var data string
	var replace bool
	c := newCommand("sentinel passwords", passwordsUsage)
	c.opts.String(&data, "data", nil, defaultDataDir(), "data directory of sentinel run, or of sentinel view (default "+defaultViewDataDir()+")")
	c.opts.Bool(&replace, "replace", nil, false, "replace the index instead of merging into it")
	sub, rest, code, ok := splitSubcommand(c, args, "", "", stdout, stderr)
	if !ok {
		return code
	}
	if sub != "import" {
		return c.usageError(stderr, "unknown command %q (import)", sub)
	}
	if len(rest) != 1 {
		return c.usageError(stderr, "import takes one FILE")
	}
	if control.Running(ctx, data) {
		fmt.Fprintf(stderr, "sentinel passwords: warning: a sentinel server runs on %s: when it next compacts its index it writes its old one over this import; restart it right after the import\n", data)
	}
	f, err := os.Open(rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passwords: %v\n", err)
		return 1
	}
	defer f.Close()
	fi, _ := f.Stat()
	bar := passwords.NewProgressBar(stderr)
	st, err := passwords.ImportWith(ctx, f, fi.Size(), filepath.Join(data, feed.IndexFile), passwords.ImportOptions{
		Merge: !replace, TempDir: data, Progress: bar.Update,
	})
	bar.Finish()
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passwords: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d hashes from %d lines in %v; the index holds %d hashes\n",
		st.Imported, st.Lines, st.Elapsed.Round(time.Millisecond), st.Hashes)
	if st.Malformed > 0 {
		fmt.Fprintf(stdout, "%d malformed lines, the first:\n", st.Malformed)
		for _, m := range st.Examples {
			fmt.Fprintf(stdout, "  line %d: %s (%q)\n", m.Line, m.Reason, m.Text)
		}
	}
	return 0
}
