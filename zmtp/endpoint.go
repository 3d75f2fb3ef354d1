package zmtp

import (
	"fmt"
	"net"
	"strings"
)

// endpoint is a parsed ZeroMQ endpoint: tcp://host:port or ipc://path.
type endpoint struct {
	network string // "tcp" or "unix"
	address string // for net.Dial / net.Listen
	raw     string
}

// parseEndpoint accepts "tcp://host:port", "tcp://[v6]:port", "tcp://*:port"
// (listen only: every interface, both families) and "ipc://path".
func parseEndpoint(s string, listen bool) (endpoint, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return endpoint{}, fmt.Errorf("zmtp: endpoint %q: missing scheme (tcp:// or ipc://)", s)
	}
	switch scheme {
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return endpoint{}, fmt.Errorf("zmtp: endpoint %q: %v", s, err)
		}
		if port == "" {
			return endpoint{}, fmt.Errorf("zmtp: endpoint %q: missing port", s)
		}
		if host == "*" {
			if !listen {
				return endpoint{}, fmt.Errorf("zmtp: endpoint %q: '*' is only valid for listening", s)
			}
			host = ""
		}
		if host == "" && !listen {
			return endpoint{}, fmt.Errorf("zmtp: endpoint %q: missing host", s)
		}
		return endpoint{network: "tcp", address: net.JoinHostPort(host, port), raw: s}, nil
	case "ipc":
		if rest == "" {
			return endpoint{}, fmt.Errorf("zmtp: endpoint %q: missing path", s)
		}
		return endpoint{network: "unix", address: rest, raw: s}, nil
	default:
		return endpoint{}, fmt.Errorf("zmtp: endpoint %q: unsupported transport %q", s, scheme)
	}
}
