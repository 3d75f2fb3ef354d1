//go:build !linux

package testenv

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback TCP address (host:port) where nothing
// listens. Outside Linux the port is only free, not held: another socket
// may take it before the test connects.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort returns a loopback TCP port for a server the test starts. Outside
// Linux the port is only free, not reserved.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
