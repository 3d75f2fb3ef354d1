package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/store/storetest"
	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// testDSN is the server the tests use; each test gets a fresh schema in it.
func testDSN() string {
	if d := os.Getenv("SENTINEL_TEST_POSTGRES"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// freshSchema creates a schema with a random name, drops it when the test
// ends, and returns a DSN whose search_path selects it.
func freshSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := testDSN()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Skip(t, "PostgreSQL unreachable at "+dsn+" (set SENTINEL_TEST_POSTGRES): "+err.Error())
	}
	defer c.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "storetest_" + hex.EncodeToString(b)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), freshSchema(t), store.Options{})
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
	dsn := freshSchema(t)
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
