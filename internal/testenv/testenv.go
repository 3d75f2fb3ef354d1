// Package testenv lets tests find the real peers they need (libzmq through
// Debian's python3-zmq, root for network namespaces, ...) and decide what to do
// when one is missing.
//
// On a developer machine a missing peer skips the test with the reason. When
// SENTINEL_STRICT_TESTS is set (CI sets it in .ci/run), the same situation is a
// failure, so nothing is ever skipped silently in CI.
package testenv

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Strict reports whether missing prerequisites must fail tests instead of
// skipping them.
func Strict() bool {
	v := os.Getenv("SENTINEL_STRICT_TESTS")
	return v != "" && v != "0"
}

// Skip skips the test with reason, or fails it in strict mode.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("prerequisite missing (SENTINEL_STRICT_TESTS is set): %s", reason)
	}
	t.Skip("skipped: " + reason)
}

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  string
)

// Python returns the path of a Python 3 interpreter that can import zmq and
// msgpack (Debian's python3-zmq and python3-msgpack). SENTINEL_PYTHON
// overrides the search. Without one the test is skipped (or fails when strict).
func Python(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		candidates := []string{"/usr/bin/python3", "python3"}
		if p := os.Getenv("SENTINEL_PYTHON"); p != "" {
			candidates = []string{p}
		}
		for _, c := range candidates {
			p, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			out, err := exec.Command(p, "-c", "import zmq, msgpack").CombinedOutput()
			if err == nil {
				pythonPath = p
				return
			}
			pythonErr = c + ": " + string(out)
		}
		if pythonErr == "" {
			pythonErr = "no python3 interpreter found"
		}
	})
	if pythonPath == "" {
		Skip(t, "needs python3 with zmq and msgpack (apt-get install python3-zmq python3-msgpack): "+pythonErr)
	}
	return pythonPath
}

// Root skips (or fails when strict) unless the test runs as root, which
// network namespaces, nftables and ipset need.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root for network namespaces and kernel firewall sets")
	}
}

// Get fetches url and returns the response (body closed) and its body;
// a transport error fails the test.
func Get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
