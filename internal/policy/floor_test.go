package policy

import (
	"net/netip"
	"slices"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestFloor: whatever a server lists, the entries that cover what a host
// must keep reaching are refused with their reason, and the rest passes.
func TestFloor(t *testing.T) {
	server := addrs("198.51.100.1", "2001:db8:5::1")
	gateways := addrs("203.0.113.254", "fe80::1", "2001:db8:7::fe")
	base := Config{}
	private := Config{AllowPrivate: true}
	narrow := Config{MinPrefix4: 16, MinPrefix6: 32}
	wide := Config{IPv6Prefix: 48}
	for _, tc := range []struct {
		entry string
		cfg   Config
		want  Skip
		form  string
	}{
		// Every class of the fixed floor, as an address and as a prefix.
		{"0.0.0.0", base, RefuseUnspecified, ""},
		{"0.0.0.0/8", base, RefuseUnspecified, ""},
		{"::", base, RefuseUnspecified, ""},
		{"127.0.0.1", base, RefuseLoopback, ""},
		{"127.0.0.0/8", base, RefuseLoopback, ""},
		{"::1", base, RefuseLoopback, ""},
		{"169.254.7.7", base, RefuseLinkLocal, ""},
		{"fe80::/10", base, RefuseLinkLocal, ""},
		{"fe80::abcd", base, RefuseLinkLocal, ""},
		{"224.0.0.0/4", base, RefuseMulticast, ""},
		{"239.1.2.3", base, RefuseMulticast, ""},
		{"ff00::/8", base, RefuseMulticast, ""},
		{"ff02::1", base, RefuseMulticast, ""},
		{"64:ff9b:1::1", base, RefuseTranslation, ""},
		// Private space, unless allowed; the fixed floor stays.
		{"10.0.0.0/8", base, RefusePrivate, ""},
		{"10.1.2.3", base, RefusePrivate, ""},
		{"172.16.5.5", base, RefusePrivate, ""},
		{"192.168.1.0/24", base, RefusePrivate, ""},
		{"100.64.0.0/10", base, RefuseCGNAT, ""},
		{"100.100.1.1", base, RefuseCGNAT, ""},
		{"fd00::1", base, RefuseUniqueLocal, ""},
		{"fc00::/7", base, RefuseUniqueLocal, ""},
		{"10.0.0.0/8", private, NotSkipped, ""},
		{"100.100.1.1", private, NotSkipped, ""},
		{"fd00::/16", private, NotSkipped, ""},
		{"127.0.0.1", private, RefuseLoopback, ""},
		{"fe80::1", private, RefuseLinkLocal, ""},
		// Prefixes that contain protected space are refused, not only
		// those inside it.
		{"0.0.0.0/0", base, RefuseUnspecified, ""},
		{"0.0.0.0/0", private, RefuseUnspecified, ""},
		{"::/0", base, RefuseUnspecified, ""},
		{"96.0.0.0/4", base, RefuseCGNAT, ""},          // holds 100.64.0.0/10
		{"126.0.0.0/7", base, RefuseLoopback, ""},      // holds 127.0.0.0/8
		{"128.0.0.0/1", private, RefuseLinkLocal, ""},  // holds 169.254/16, 224/4
		{"fe00::/7", base, RefuseLinkLocal, ""},        // holds fe80::/10, ff00::/8
		{"10.0.0.0/7", base, RefusePrivate, ""},        // holds 10/8
		{"198.51.100.0/24", base, RefuseServer, ""},    // holds the server
		{"198.51.0.0/16", base, RefuseServer, ""},      //
		{"203.0.113.0/24", base, RefuseGateway, ""},    // holds the gateway
		{"203.0.113.254", base, RefuseGateway, ""},     //
		{"2001:db8:7::/48", base, RefuseGateway, ""},   //
		{"2001:db8:5::1", base, RefuseServer, ""},      //
		{"2001:db8:5::/48", private, RefuseServer, ""}, //
		{"198.51.100.1", private, RefuseServer, ""},    //
		{"2001:db8:5::2", wide, RefuseServer, ""},      // its /48 holds the server
		{"2001:db8:5::2", base, NotSkipped, ""},        // alone it does not
		{"198.51.100.2", base, NotSkipped, ""},         // a neighbour of the server
		{"203.0.113.253", base, NotSkipped, ""},        // and of the gateway
		{"2001:db8:7:1::/64", base, NotSkipped, ""},    //
		{"2a00:1450:4001::/48", wide, NotSkipped, ""},  //
		{"2a00:1450:4001::1234", base, NotSkipped, ""}, //
		{"11.0.0.0/8", base, NotSkipped, ""},           // exactly the minimum
		{"45.1.2.3", base, NotSkipped, ""},             //
		{"192.0.2.1", base, NotSkipped, ""},            // documentation: the server's business
		{"2001:db8::1", base, NotSkipped, ""},          //
		{"240.0.0.1", base, NotSkipped, ""},            // reserved: harmless to block
		// Embedded forms stand for their IPv4 address.
		{"2002:7f00:1::1", base, RefuseLoopback, "6to4"},
		{"2002:7f00::/24", base, RefuseLoopback, "6to4"},
		{"2002:a00:1::/48", base, RefusePrivate, "6to4"},
		{"2002:a00:1::/48", private, NotSkipped, ""},
		{"2002:c633:6401::/48", base, RefuseServer, "6to4"},
		{"2002:cb00:71fe::1", base, RefuseGateway, "6to4"},
		{"2002::/16", base, RefuseUnspecified, "6to4"},
		{"2002:808:808::/48", base, NotSkipped, ""},
		{"64:ff9b::7f00:1", base, RefuseLoopback, "nat64"},
		{"64:ff9b::a9fe:1", base, RefuseLinkLocal, "nat64"},
		{"64:ff9b::c633:6401", base, RefuseServer, "nat64"},
		{"64:ff9b::808:808", base, NotSkipped, ""},
		{"::ffff:0:0/96", base, RefuseUnspecified, "ipv4-mapped"},
		{"::7f00:1", base, RefuseLoopback, "ipv4-compatible"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", base, RefuseLoopback, "teredo"},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", base, NotSkipped, ""},
		// The minimum prefix.
		{"2.0.0.0/7", base, RefuseMinPrefix, ""},
		{"2a00::/15", base, RefuseMinPrefix, ""},
		{"2a00::/16", base, NotSkipped, ""},
		{"11.0.0.0/15", narrow, RefuseMinPrefix, ""},
		{"11.0.0.0/16", narrow, NotSkipped, ""},
		{"2a00::/31", narrow, RefuseMinPrefix, ""},
		{"2a00::/32", narrow, NotSkipped, ""},
	} {
		s := New(tc.cfg)
		s.Protect(server, gateways, nil)
		why, form := s.Explain(pfx(tc.entry))
		if why != tc.want || form != tc.form {
			t.Errorf("%s (cfg %+v): %v %q, want %v %q", tc.entry, tc.cfg, why, form, tc.want, tc.form)
		}
		if why.Refused() != (tc.want != NotSkipped) {
			t.Errorf("%s: Refused() = %v", tc.entry, why.Refused())
		}
	}
}

// TestFloorKeepsRefusedOutOfTheKernel: refused entries never reach the
// backend, from a list or from deltas, and every refusal is reported.
func TestFloorKeepsRefusedOutOfTheKernel(t *testing.T) {
	s := New(Config{})
	s.Protect(addrs("198.51.100.1"), addrs("198.51.100.254"), nil)
	k := kernel{}
	var refused []string
	note := func(p netip.Prefix, why Skip) { refused = append(refused, p.String()+" "+why.String()) }
	k.apply(t)(s.Sync(list("0.0.0.0/0", "::/0", "127.0.0.0/8", "::1", "fe80::/10", "ff00::/8", "224.0.0.0/4", "10.0.0.0/8",
		"2002:7f00:1::1", "198.51.100.1", "198.51.100.254", "45.1.2.3", "11.0.0.0/16", "2a00:1450::/32"), note))
	k.apply(t)(s.Apply([]Change{{true, pfx("198.51.100.0/24")}, {true, pfx("46.1.1.1")}, {true, pfx("169.254.0.0/16")}, {true, pfx("2.0.0.0/7")}}, note))
	if got, want := k.sorted(), []string{"11.0.0.0/16", "2a00:1450::/32", "45.1.2.3/32", "46.1.1.1/32"}; !slices.Equal(got, want) {
		t.Fatalf("kernel %v, want %v", got, want)
	}
	wantRefused := []string{"0.0.0.0/0 unspecified", "::/0 unspecified", "127.0.0.0/8 loopback", "::1/128 loopback", "fe80::/10 link-local",
		"ff00::/8 multicast", "224.0.0.0/4 multicast", "10.0.0.0/8 private", "2002:7f00:1::1/128 loopback", "198.51.100.1/32 server",
		"198.51.100.254/32 gateway", "198.51.100.0/24 server", "169.254.0.0/16 link-local", "2.0.0.0/7 min-prefix"}
	if !slices.Equal(refused, wantRefused) {
		t.Fatalf("refused %v\nwant %v", refused, wantRefused)
	}
	// Removing a refused entry changes nothing and is no new refusal.
	add, del := s.Apply([]Change{{false, pfx("0.0.0.0/0")}, {false, pfx("127.0.0.0/8")}}, note)
	if add.Len()+del.Len() != 0 || len(refused) != len(wantRefused) {
		t.Fatalf("removing refused entries changed +%v -%v, refused %v", add.Prefixes(), del.Prefixes(), refused[len(wantRefused):])
	}
}

// TestProtectRemovesWhatNowCovers: when the gateway moves (DHCP) or the
// server's address changes, entries that now cover it leave the kernel at
// once; entries that no longer cover a protected address come back with
// the next list.
func TestProtectRemovesWhatNowCovers(t *testing.T) {
	for _, ipv6Prefix := range []int{0, 64} {
		s := New(Config{IPv6Prefix: ipv6Prefix})
		k := kernel{}
		l := list("45.1.2.3", "45.1.2.4", "46.0.0.0/16", "2a00:1450::5", "2002:2d01:203::1", "47.1.1.1")
		k.apply(t)(s.Sync(l, nil))
		if len(k) != 6 {
			t.Fatalf("kernel %v", k.sorted())
		}
		var refused []string
		note := func(p netip.Prefix, why Skip) { refused = append(refused, p.String()+" "+why.String()) }
		// The gateway moves to 46.0.1.1 and the server resolves to
		// 45.1.2.3 and 2a00:1450::1.
		k.apply(t)(s.Protect(addrs("2a00:1450::1", "45.1.2.3", "45.1.2.3"), addrs("46.0.1.1"), note))
		// 2002:2d01:203::1 is the server's 6to4 form.
		want := []string{"2a00:1450::5/128", "45.1.2.4/32", "47.1.1.1/32"}
		wantRefused := []string{"45.1.2.3/32 server", "2002:2d01:203::1/128 server", "46.0.0.0/16 gateway"}
		if ipv6Prefix == 64 {
			// 2a00:1450::5 stands for its /64, which holds the server.
			want = []string{"45.1.2.4/32", "47.1.1.1/32"}
			wantRefused = []string{"45.1.2.3/32 server", "2a00:1450::5/128 server", "2002:2d01:203::1/128 server", "46.0.0.0/16 gateway"}
		}
		if got := k.sorted(); !slices.Equal(got, want) {
			t.Fatalf("/%d: kernel %v, want %v", ipv6Prefix, got, want)
		}
		slices.Sort(refused)
		slices.Sort(wantRefused)
		if !slices.Equal(refused, wantRefused) {
			t.Fatalf("/%d: refused %v, want %v", ipv6Prefix, refused, wantRefused)
		}
		if srv, gw := s.Protected(); len(srv) != 2 || len(gw) != 1 {
			t.Fatalf("protected %v %v", srv, gw)
		}
		// Unchanged protection changes nothing.
		if add, del := s.Protect(addrs("45.1.2.3", "2a00:1450::1"), addrs("46.0.1.1"), note); add.Len()+del.Len() != 0 {
			t.Fatal("the same protection changed the kernel")
		}
		// The gateway moves away again: the next list brings the prefix back.
		k.apply(t)(s.Protect(addrs("2a00:1450::1", "45.1.2.3"), nil, nil))
		k.apply(t)(s.Sync(l, nil))
		want = []string{"2a00:1450::5/128", "45.1.2.4/32", "46.0.0.0/16", "47.1.1.1/32"}
		if ipv6Prefix == 64 {
			want = []string{"45.1.2.4/32", "46.0.0.0/16", "47.1.1.1/32"}
		}
		if got := k.sorted(); !slices.Equal(got, want) {
			t.Fatalf("/%d: after the gateway left: kernel %v, want %v", ipv6Prefix, got, want)
		}
	}
}

func TestRefusalNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Refusals() {
		n := r.String()
		if n == "none" || n == "" || seen[n] || !r.Refused() {
			t.Errorf("refusal %d named %q", r, n)
		}
		seen[n] = true
	}
	if len(seen) != 11 || SkipAllowed.Refused() || NotSkipped.Refused() {
		t.Errorf("refusals %v", seen)
	}
}
