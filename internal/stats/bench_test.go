package stats

import (
	"context"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
)

// benchNames are one resource of each shape (and the widest list).
var benchNames = []string{"all_incidents_graph", "top_countries_by_incidents_graph", "top_combinations_by_usages_list_long", "all_countries_by_incidents_list"}

// BenchmarkCompute: the queries and the rows built from them, no cache.
func BenchmarkCompute(b *testing.B) {
	st := openStore(b)
	fill(b, st, 3000, 5)
	ctx := context.Background()
	if _, err := st.Rollup(ctx, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, name := range benchNames {
			if _, err := Compute(ctx, st, Request{Name: name, Period: "1w"}, testNow, 4*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSharedRead: an instance reads results another computed from
// the shared Redis cache (decoding included).
func BenchmarkSharedRead(b *testing.B) {
	ctx := context.Background()
	rc, err := NewRedis(ctx, "redis://127.0.0.1:6379/13")
	if err != nil {
		testenv.Skip(b, "Redis on 127.0.0.1:6379 is unreachable: "+err.Error())
		return
	}
	defer rc.Close()
	rc.Clear(ctx)
	defer rc.Clear(ctx)
	st := openStore(b)
	fill(b, st, 3000, 5)
	if _, err := st.Rollup(ctx, testNow); err != nil {
		b.Fatal(err)
	}
	clock := func() time.Time { return testNow }
	a := New(st, Options{Now: clock, Shared: rc})
	for _, name := range benchNames {
		if _, err := a.Resource(ctx, Request{Name: name, Period: "1w"}); err != nil {
			b.Fatal(err)
		}
	}
	r := New(st, Options{Now: clock, Shared: rc})
	b.ReportAllocs()
	for b.Loop() {
		r.Forget()
		for _, name := range benchNames {
			if _, err := r.Resource(ctx, Request{Name: name, Period: "1w"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if n := r.Stats().Computed; n != 0 {
		b.Fatalf("the reader computed %d results", n)
	}
}
