package server

import (
	"net"
	"strconv"
)

// LocalURL is a URL of the listener at a that works from this host:
// scheme://host:port with the bound port and, for a listener on every
// interface (0.0.0.0 or ::, which Go binds for both families), 127.0.0.1,
// since the wildcard is no address to open. all reports the wildcard, so
// that the caller can say the listener is reachable from other hosts too.
func LocalURL(scheme string, a net.Addr) (url string, all bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		if ua, ok := a.(*net.UnixAddr); ok {
			return "ipc://" + ua.Name, false // a ZeroMQ ipc:// endpoint
		}
		return scheme + "://" + a.String(), false
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		all, host = true, "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(ta.Port)), all
}
