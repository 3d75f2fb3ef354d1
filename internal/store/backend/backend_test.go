package backend

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dynfw/sentinel/internal/store"
)

func TestOpenSQLite(t *testing.T) {
	for _, dsn := range []string{":memory:", "sqlite::memory:", filepath.Join(t.TempDir(), "a.db"), "sqlite:" + filepath.Join(t.TempDir(), "b.db")} {
		s, err := Open(context.Background(), dsn, store.Options{})
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		st, err := s.Status(context.Background())
		if err != nil || st.Backend != "sqlite" {
			t.Errorf("%s: status %+v, %v", dsn, st, err)
		}
		s.Close()
	}
}

func TestOpenPostgresBadURL(t *testing.T) {
	// A malformed URL must fail in the PostgreSQL backend, not be taken
	// for a SQLite file name.
	if _, err := Open(context.Background(), "postgres://%zz", store.Options{}); err == nil {
		t.Fatal("no error for a malformed postgres URL")
	}
}
