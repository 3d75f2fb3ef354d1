package geoip

import "net/netip"

// Public reports whether a can be a public Internet address: global
// unicast, not private, not in a special-purpose block (documentation,
// carrier-grade NAT, NAT64, benchmarking, ...). Only such an address can
// have a country, a network owner or a reverse DNS name worth asking for.
// IPv4-mapped IPv6 addresses are judged as IPv4.
func Public(a netip.Addr) bool { return public(a.Unmap()) }
