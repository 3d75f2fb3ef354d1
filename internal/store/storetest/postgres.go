package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// PostgresServer is the PostgreSQL server the tests use:
// SENTINEL_TEST_POSTGRES, else the local test database.
func PostgresServer() string {
	if d := os.Getenv("SENTINEL_TEST_POSTGRES"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PostgresSchema creates a schema with a random name in PostgresServer,
// drops it when the test ends, and returns a DSN whose search_path selects
// it, so that every test starts from an empty store. Without a reachable
// server the test is skipped (it fails in strict mode).
func PostgresSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := PostgresServer()
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
