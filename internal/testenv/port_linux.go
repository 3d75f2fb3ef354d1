package testenv

import (
	"net/netip"
	"syscall"
	"testing"
)

// RefusedAddr returns a loopback TCP address (host:port) that refuses
// connections for the rest of the test. A socket bound to the port, that
// never listens, holds it: connecting gets ECONNREFUSED, and neither a
// listener nor the kernel's choice of a source port for an outgoing
// connection can take the port meanwhile, as they could after a listener
// is merely closed.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	return holdPort(t, false).String()
}

// FreePort returns a loopback TCP port for a server the test starts itself,
// typically in another process, that listens with SO_REUSEADDR (as Go's
// net.Listen and most servers do). Until the test ends a socket bound to
// the port with SO_REUSEADDR, that never listens, reserves it: such a
// server can take it, but no listener on port 0 and no outgoing
// connection's source port can, which closing a listener would allow.
// Until the server listens, connections to the port are refused.
func FreePort(t testing.TB) int {
	t.Helper()
	return int(holdPort(t, true).Port())
}

// holdPort binds a TCP socket to a free loopback port without listening
// and keeps it bound until the test's cleanup.
func holdPort(t testing.TB, reuse bool) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			t.Fatalf("SO_REUSEADDR: %v", err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("getsockname: %T", sa)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
}
