package certfetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynfw/sentinel/zmtp/zcert"
)

func TestFetchRetriesUntilValid(t *testing.T) {
	pub, err := os.ReadFile("../../zmtp/zcert/testdata/dynfw.pub")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			w.Write([]byte("<html>captive portal</html>"))
		default:
			w.Write(pub)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cert, raw, err := Fetch(ctx, srv.URL, Options{MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 || string(raw) != string(pub) {
		t.Fatalf("attempts %d", n.Load())
	}
	if got := cert.Public.String(); got != "D=rkicUyn5AcL)>9$2Db0HIELd2F*WaS-zDTikU*" {
		t.Fatalf("key %s", got)
	}
}

func TestFetchGivesUpWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusNotFound)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := Fetch(ctx, srv.URL, Options{MinBackoff: 20 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err %v, want the last attempt's 404", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("Fetch did not stop with its context")
	}
}

func TestFetchRefusesSecret(t *testing.T) {
	c, err := zcert.New()
	if err != nil {
		t.Fatal(err)
	}
	secret := c.MarshalSecret()
	if _, err := zcert.Parse(secret); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(secret) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := Fetch(ctx, srv.URL, Options{MinBackoff: 50 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("err %v, want a refusal of the secret key", err)
	}
}
