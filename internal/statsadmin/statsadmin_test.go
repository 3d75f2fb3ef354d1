package statsadmin

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/backend"
)

// TestCommands runs each command on an SQLite store: what it prints, and
// ErrUsage for the arguments the command line must explain.
func TestCommands(t *testing.T) {
	ctx := context.Background()
	st, err := backend.Open(ctx, filepath.Join(t.TempDir(), "stats.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	b := store.Batch{Passwords: []store.Password{{Time: now.Add(-time.Hour).Truncate(time.Second), Trap: "minipot_telnet", Username: "root", Password: "hunter2"}}}
	if err := st.Insert(ctx, &b); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, st, args, &out, now)
		return out.String(), err
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, "passwords (raw)"},
		{[]string{"rollup"}, "rolled up"},
		{[]string{"rebuild", "1h", now.Add(-2 * time.Hour).Format(time.RFC3339)}, "rebuilt"},
		{[]string{"retain"}, ""},
		{[]string{"resource", "top_passwords_by_usages_list", "1d"}, `"hunter2"`},
	} {
		out, err := run(c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v\n%s", c.args, err, out)
		}
	}
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"rebuild", "5m", "2024-01-01"}, {"rebuild", "1h", "yesterday"},
		{"resource", "nope", "1d"}, {"resource", "top_passwords_by_usages_list", "2y"}, {"resource", "top_passwords_by_usages_list", "1d", "ip=x"},
	} {
		if _, err := run(args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestParseWhen(t *testing.T) {
	for in, want := range map[string]string{
		"2024-03-01":           "2024-03-01T00:00:00Z",
		"2024-03-01T10:30":     "2024-03-01T10:30:00Z",
		"2024-03-01T10:30:00Z": "2024-03-01T10:30:00Z",
	} {
		got, err := ParseWhen(in)
		if err != nil || got.Format(time.RFC3339) != want {
			t.Errorf("%s: %v %v, want %s", in, got, err, want)
		}
	}
}
