package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/metrics"
	"github.com/dynfw/sentinel/internal/store"
)

// TestRejectedRowsMetric: every table and reason has a series from the
// start, and the recorder's reports add to theirs.
func TestRejectedRowsMetric(t *testing.T) {
	r := metrics.NewRegistry()
	count := rejectedRows(r)
	count(store.Passwords, store.RejectInvalid, 3)
	count(store.Passwords, store.RejectInvalid, 1)
	var b bytes.Buffer
	r.WriteTo(&b)
	out := b.String()
	for _, want := range []string{
		`sentinel_stats_rows_rejected_total{table="passwords",reason="invalid_value"} 4`,
		`sentinel_stats_rows_rejected_total{table="incidents",reason="constraint"} 0`,
		`sentinel_stats_rows_rejected_total{table="ports",reason="too_large"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}
