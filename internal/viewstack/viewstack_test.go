package viewstack

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynfw/sentinel/internal/scorecard"
)

// TestSessionKey: created once (mode 0600, 64 hex digits), read back the
// same, refused when it is not a key.
func TestSessionKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "session.key")
	k1, err := SessionKey(path)
	if err != nil || len(k1) != 32 {
		t.Fatalf("create: %x %v", k1, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}
	k2, err := SessionKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("read back %x %v, want %x", k2, err, k1)
	}
	os.WriteFile(path, []byte("abcd\n"), 0o600)
	if _, err := SessionKey(path); err == nil {
		t.Fatal("a short key was accepted")
	}
}

// TestRemoteExplainer asks a server's address API over HTTP: an
// explanation, nil for an unknown address, an error otherwise.
func TestRemoteExplainer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/addresses/45.155.205.1":
			json.NewEncoder(w).Encode(scorecard.Explanation{Key: netip.MustParsePrefix("45.155.205.1/32"), Listed: true, Score: 3})
		case "/api/v1/addresses/45.155.205.2":
			http.NotFound(w, r)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ex := RemoteExplainer(srv.URL + "/")
	ctx := context.Background()
	x, err := ex(ctx, netip.MustParseAddr("45.155.205.1"))
	if err != nil || x == nil || !x.Listed || x.Score != 3 {
		t.Fatalf("listed: %+v %v", x, err)
	}
	if x, err := ex(ctx, netip.MustParseAddr("45.155.205.2")); x != nil || err != nil {
		t.Fatalf("unknown: %+v %v", x, err)
	}
	if _, err := ex(ctx, netip.MustParseAddr("45.155.205.3")); err == nil {
		t.Fatal("a server error gave no error")
	}
}

// TestOpen builds the stack on an SQLite file and serves the overview.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	vs, err := Open(context.Background(), Options{DB: filepath.Join(dir, "stats.db"), SessionKeyFile: filepath.Join(dir, "key")})
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	mux := http.NewServeMux()
	vs.Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("overview: %s", resp.Status)
	}
	if Attribution(vs.Geo) == "" {
		t.Fatal("no attribution for the country database")
	}
}
