package server

import (
	"net"
	"testing"
)

// TestLocalURL: a URL to open for every way a listener can be bound.
func TestLocalURL(t *testing.T) {
	for _, tc := range []struct {
		addr *net.TCPAddr
		want string
		all  bool
	}{
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://127.0.0.1:8080", true}, // ":8080"
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "http://127.0.0.1:8080", true},
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}, "http://127.0.0.1:80", false},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080}, "http://[::1]:8080", false},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 8080}, "http://192.0.2.7:8080", false},
	} {
		if got, all := LocalURL("http", tc.addr); got != tc.want || all != tc.all {
			t.Errorf("%v: %s %v, want %s %v", tc.addr, got, all, tc.want, tc.all)
		}
	}
}
