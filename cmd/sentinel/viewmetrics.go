package main

import (
	"github.com/dynfw/sentinel/internal/metrics"
	"github.com/dynfw/sentinel/internal/recorder"
	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/viewstack"
)

// rejectedRows registers sentinel_stats_rows_rejected_total, with a series
// for every table and reason from the start, and returns the recorder's
// Options.Rejected that counts into it.
func rejectedRows(r *metrics.Registry) func(store.Table, string, int) {
	vec := r.CounterVec("sentinel_stats_rows_rejected_total", "Rows the statistics database refused for what they hold, dropped (by table and reason).", "table", "reason")
	for _, t := range []store.Table{store.Incidents, store.Passwords, store.Ports} {
		for _, reason := range store.RejectReasons {
			vec.With(t.String(), reason)
		}
	}
	return func(t store.Table, reason string, rows int) { vec.With(t.String(), reason).Add(float64(rows)) }
}

// registerViewMetrics exports the recorder's and the stats engine's
// counters with the server's metrics.
func registerViewMetrics(srv *server.Server, vs *viewstack.Stack, rec *recorder.Recorder) {
	r := srv.Metrics()
	c := func(name, help string, f func() float64) { r.CounterFunc(name, help, f) }
	g := func(name, help string, f func() float64) { r.GaugeFunc(name, help, f) }
	c("sentinel_stats_rows_inserted_total", "Rows written to the statistics store.", func() float64 { return float64(rec.Stats().Inserted) })
	c("sentinel_stats_rows_dropped_total", "Rows dropped because the statistics store fell behind.", func() float64 { return float64(rec.Stats().Dropped) })
	c("sentinel_stats_insert_failures_total", "Inserts into the statistics store that failed for another reason than refused rows (database unreachable; their rows are retried).", func() float64 { return float64(rec.Stats().Failed) })
	g("sentinel_stats_rows_queued", "Rows waiting for the statistics store.", func() float64 { return float64(rec.Stats().Queued) })
	c("sentinel_view_resources_computed_total", "Resources computed from the store.", func() float64 { return float64(vs.Engine.Stats().Computed) })
	c("sentinel_view_resource_failures_total", "Resource computations that failed.", func() float64 { return float64(vs.Engine.Stats().Failures) })
	c("sentinel_view_cache_hits_total", "Resource requests served from the cache.", func() float64 { return float64(vs.Engine.Stats().Hits) })
	c("sentinel_view_cache_misses_total", "Resource requests that waited for a computation.", func() float64 { return float64(vs.Engine.Stats().Misses) })
	g("sentinel_view_cached_resources", "Resources held in the cache.", func() float64 { return float64(vs.Engine.Stats().Cached) })
	r.CounterMapFunc("sentinel_view_rdns_lookups_total", "Reverse DNS lookups visitors asked for on attacker pages, by result: name, none (no PTR record), failed (resolver error or timeout), limited (the site's budget was spent), cached, private (not looked up).",
		"result", vs.View.ReverseDNSLookups)
}
