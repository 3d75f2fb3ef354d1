package postgres

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/storetest"
)

func open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), storetest.PostgresSchema(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestConcurrentMigrate opens one schema from several stores at once: the
// advisory lock must let exactly one apply each migration.
func TestConcurrentMigrate(t *testing.T) {
	dsn := storetest.PostgresSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn, store.Options{})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, err := Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	want, _ := fs.Glob(migrations, "migrations/*.sql")
	if err := s.pool.QueryRow(context.Background(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != len(want) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(want))
	}
	st, err := s.Status(context.Background())
	if err != nil || st.Bytes == 0 || st.Backend == "" {
		t.Fatalf("status %+v %v", st, err)
	}
}

func BenchmarkInsert(b *testing.B) {
	s := open(b)
	defer s.Close()
	storetest.BenchInsert(b, s)
}

// TestBenchView is the long benchmark of scripts/bench-store.sh.
func TestBenchView(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	s := open(t)
	defer s.Close()
	storetest.BenchView(t, s)
}
