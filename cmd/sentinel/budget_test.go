package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The publisher's budgets: defaults, flags, the config file, and 0 for none.
func TestPublisherBudgetOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sentinel.toml")
	os.WriteFile(file, []byte("dynfw-max-handshakes = 7\n"), 0o644)
	for _, c := range []struct {
		args                    []string
		timeout                 time.Duration
		subscribers, handshakes int
	}{
		{[]string{"--config", "/dev/null"}, time.Minute, 10_000, 256},
		{[]string{"--config", file, "--dynfw-write-timeout", "0", "--dynfw-max-subscribers", "5"}, -1, 5, 7},
		{[]string{"--config", "/dev/null", "--dynfw-write-timeout", "5s", "--dynfw-max-handshakes", "0"}, 5 * time.Second, 10_000, -1},
	} {
		o := newRunOptions()
		if err := o.parse(c.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.serverConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DynfwWriteTimeout != c.timeout || cfg.DynfwMaxSubscribers != c.subscribers || cfg.DynfwMaxHandshakes != c.handshakes {
			t.Errorf("%v: %v %d %d", c.args, cfg.DynfwWriteTimeout, cfg.DynfwMaxSubscribers, cfg.DynfwMaxHandshakes)
		}
	}
	o := newRunOptions()
	if err := o.parse([]string{"--config", "/dev/null", "--dynfw-max-subscribers", "-3"}); err == nil {
		if _, err := o.serverConfig(); err == nil {
			t.Error("a negative limit is accepted")
		}
	}
}
