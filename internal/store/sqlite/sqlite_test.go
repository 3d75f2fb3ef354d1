package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/storetest"
)

// The file and memory suites use their own databases and run side by
// side: each is single-threaded under -race and the longest of make test.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "stats.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), Memory, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen checks that migrations are not re-applied and data survives.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stats.db")
	s, err := Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &store.Batch{Ports: []store.Port{{Time: storetest.T0, Port: 22, Protocol: "TCP"}}}
	if err := s.Insert(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Status(ctx)
	if err != nil || st.Tables[store.Ports] != 1 || st.Bytes == 0 {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
}

func openBench(t testing.TB) *Store {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkInsert(b *testing.B) { storetest.BenchInsert(b, openBench(b)) }

// TestBenchView is the long benchmark of scripts/bench-store.sh.
func TestBenchView(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	storetest.BenchView(t, openBench(t))
}
