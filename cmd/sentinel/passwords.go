package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/passwords"
	"github.com/dynfw/sentinel/internal/store"
)

// corpusFile is the password checker's index in the data directory.
const corpusFile = "passwords.idx"

// openCorpus opens the password checker's corpus and replays the
// passwords stored since its last compaction (as far as the store's raw
// retention reaches), so that a restart loses none.
func openCorpus(ctx context.Context, data string, st store.Store, log *slog.Logger) (*passwords.Corpus, error) {
	c, err := passwords.OpenCorpus(filepath.Join(data, corpusFile), passwords.CorpusOptions{
		Logf: func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, fmt.Errorf("password corpus: %w", err)
	}
	from := c.Watermark()
	if from.IsZero() {
		from = time.Unix(0, 0) // never compacted: every stored row
	}
	now := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	rows, err := st.Query(ctx, store.Query{Table: store.Passwords, Precision: store.Raw, From: from, To: now,
		GroupBy: []store.Dim{store.DimTrap, store.DimPassword}})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("password corpus: replaying stored passwords: %w", err)
	}
	var n uint64
	for _, r := range rows {
		if r.Keys[1] == "" {
			continue
		}
		src, _ := passwords.ParseSource(r.Keys[0])
		c.AddHash(passwords.HashPassword(r.Keys[1]), uint64(r.Value), src)
		n += uint64(r.Value)
	}
	if n > 0 {
		log.Info("password corpus: replayed stored passwords", "since", from, "passwords", n)
	}
	return c, nil
}

// cmdPasswords manages the password checker's corpus.
func cmdPasswords(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = `Usage: sentinel passwords import [--data DIR] [--replace] FILE

Loads a Have I Been Pwned SHA-1 file (HASH:COUNT per line, any size) into
the password checker's index <data>/passwords.idx, merged with what is
there unless --replace. Restart a running server afterwards.
`
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var data string
	var replace bool
	s := config.New("sentinel passwords import", "SENTINEL_")
	s.AllowArgs = true
	s.String(&data, "data", nil, defaultDataDir(), "data directory of the server")
	s.Bool(&replace, "replace", nil, false, "replace the index instead of merging into it")
	if err := s.Parse(args[1:], "", ""); err != nil {
		if errors.Is(err, config.ErrHelp) {
			fmt.Fprint(stdout, usage)
			s.Usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "sentinel passwords: %v\n", err)
		return 2
	}
	if len(s.Args()) != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	f, err := os.Open(s.Args()[0])
	if err != nil {
		fmt.Fprintf(stderr, "sentinel passwords: %v\n", err)
		return 1
	}
	defer f.Close()
	fi, _ := f.Stat()
	bar := passwords.NewProgressBar(stderr)
	st, err := passwords.ImportWith(ctx, f, fi.Size(), filepath.Join(data, corpusFile), passwords.ImportOptions{
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
