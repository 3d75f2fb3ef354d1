package ipset

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

var (
	nameAddr6 = DefaultName + "-v6"
	nameNet4  = DefaultName + "-net4"
	nameNet6  = DefaultName + "-net6"
	allSets   = []string{DefaultName, nameNet4, nameNet6, nameAddr6} // sorted
)

func TestCreateFromScratch(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	if b.Name() != "ipset" {
		t.Errorf("Name() = %q", b.Name())
	}
	if got := setNames(t, ns); !slices.Equal(got, allSets) {
		t.Fatalf("sets = %v, want %v", got, allSets)
	}
	for _, c := range []struct{ set, typ, family string }{
		{DefaultName, "hash:ip", "inet"},
		{nameAddr6, "hash:ip", "inet6"},
		{nameNet4, "hash:net", "inet"},
		{nameNet6, "hash:net", "inet6"},
	} {
		h := header(t, ns, c.set)
		if h["Type"] != c.typ || h["family"] != c.family || h["maxelem"] != "262144" || h["Number of entries"] != "0" {
			t.Errorf("%s: type %q family %q maxelem %q entries %q, want %s %s 262144 0",
				c.set, h["Type"], h["family"], h["maxelem"], h["Number of entries"], c.typ, c.family)
		}
	}
	// No rules unless asked.
	if out, err := ns.Try("iptables", "-S", DefaultName); err == nil {
		t.Errorf("chain exists without Rules:\n%s", out)
	}
}

func TestReplace(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	ctx := context.Background()

	// Into empty sets, with overlapping IPv4 prefixes.
	if err := b.Replace(ctx, elems("192.0.2.1", "192.0.2.2", "2001:db8::1", "10.0.0.0/8", "10.1.0.0/16", "2001:db8:1::/48")); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		DefaultName: prefixes("192.0.2.1", "192.0.2.2"),
		nameAddr6:   prefixes("2001:db8::1"),
		nameNet4:    prefixes("10.0.0.0/8", "10.1.0.0/16"),
		nameNet6:    prefixes("2001:db8:1::/48"),
	}
	checkMembers(t, ns, want)

	// Into full sets: the old contents go, the new arrive.
	if err := b.Replace(ctx, elems("192.0.2.2", "198.51.100.9", "2001:db8::2", "192.168.0.0/16")); err != nil {
		t.Fatal(err)
	}
	want = map[string][]string{
		DefaultName: prefixes("192.0.2.2", "198.51.100.9"),
		nameAddr6:   prefixes("2001:db8::2"),
		nameNet4:    prefixes("192.168.0.0/16"),
		nameNet6:    nil,
	}
	checkMembers(t, ns, want)
	// The temporaries are gone.
	if got := setNames(t, ns); !slices.Equal(got, allSets) {
		t.Fatalf("sets after Replace = %v, want %v", got, allSets)
	}

	// An empty list empties everything.
	if err := b.Replace(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, ns, map[string][]string{DefaultName: nil, nameAddr6: nil, nameNet4: nil, nameNet6: nil})
}

func checkMembers(t *testing.T, ns *fwtest.Netns, want map[string][]string) {
	t.Helper()
	for set, w := range want {
		got := members(t, ns, set)
		if !slices.Equal(got, w) {
			t.Errorf("%s = %v, want %v", set, got, w)
		}
	}
}

// TestReplaceNeverEmpty probes the live sets from another process while
// Replace runs again and again: an address present in every list must be
// found every time. A backend that flushed and refilled the live set
// would leave it empty or partial for tens of milliseconds per Replace.
func TestReplaceNeverEmpty(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	ctx := context.Background()
	list := func(seed uint32) *firewall.Elements {
		e := &firewall.Elements{Addr4: seqAddr4(100_000, seed)}
		e.Add(netip.MustParsePrefix("198.51.100.7/32"))
		e.Add(netip.MustParsePrefix("203.0.113.0/24"))
		return e
	}
	if err := b.Replace(ctx, list(0)); err != nil {
		t.Fatal(err)
	}
	var (
		stop           atomic.Bool
		probes, misses atomic.Int64
		wg             sync.WaitGroup
	)
	for _, p := range [][2]string{{DefaultName, "198.51.100.7"}, {nameNet4, "203.0.113.9"}} {
		wg.Go(func() {
			for !stop.Load() {
				probes.Add(1)
				if !inSet(ns, p[0], p[1]) {
					misses.Add(1)
				}
			}
		})
	}
	for i := range 10 {
		if err := b.Replace(ctx, list(uint32(i+1)*50_000)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d probes during 10 Replace calls of 100k addresses", probes.Load())
	if misses.Load() != 0 {
		t.Errorf("%d of %d probes found the live set without an element present before and after", misses.Load(), probes.Load())
	}
	if probes.Load() < 10 {
		t.Errorf("only %d probes: the test proves nothing", probes.Load())
	}
	// The last list is what the set holds: its first address is there, the
	// first list's first address (not in the last list) is not.
	last := list(10 * 50_000)
	checkCount(t, ns, DefaultName, len(last.Addr4))
	if !inSet(ns, DefaultName, firewall.AddrFrom4(last.Addr4[0]).String()) {
		t.Error("an address of the last list is missing")
	}
	if inSet(ns, DefaultName, firewall.AddrFrom4(seqAddr4(1, 0)[0]).String()) {
		t.Error("an address only in the first list is still there")
	}
}

func TestApply(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	ctx := context.Background()
	if err := b.Replace(ctx, elems("192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2", "10.0.0.0/8", "2001:db8:1::/48")); err != nil {
		t.Fatal(err)
	}
	add := elems("192.0.2.3", "2001:db8::3", "172.16.0.0/12", "10.1.0.0/16", "2001:db8:2::/48", "2001:db8:3::/64")
	del := elems("192.0.2.1", "2001:db8::1", "10.0.0.0/8", "2001:db8:1::/48")
	if err := b.Apply(ctx, add, del); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, ns, map[string][]string{
		DefaultName: prefixes("192.0.2.2", "192.0.2.3"),
		nameAddr6:   prefixes("2001:db8::2", "2001:db8::3"),
		nameNet4:    prefixes("172.16.0.0/12", "10.1.0.0/16"),
		nameNet6:    prefixes("2001:db8:2::/48", "2001:db8:3::/64"),
	})

	// Deletes go first: an element deleted and added in one Apply stays.
	if err := b.Apply(ctx, elems("192.0.2.2"), elems("192.0.2.2")); err != nil {
		t.Fatal(err)
	}
	if !inSet(ns, DefaultName, "192.0.2.2") {
		t.Error("192.0.2.2 deleted and added in one Apply is missing")
	}
	if err := b.Apply(ctx, nil, nil); err != nil {
		t.Errorf("empty Apply: %v", err)
	}

	// A large batch spans several netlink messages.
	big := &firewall.Elements{Addr4: seqAddr4(20_000, 0)}
	if err := b.Apply(ctx, big, nil); err != nil {
		t.Fatal(err)
	}
	checkCount(t, ns, DefaultName, 20_002)
	if err := b.Apply(ctx, nil, big); err != nil {
		t.Fatal(err)
	}
	checkCount(t, ns, DefaultName, 2)
}

func TestApplyRefused(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	ctx := context.Background()
	if err := b.Replace(ctx, elems("192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	// Deleting an absent element fails, naming it; the elements around it
	// in the same message are still deleted.
	err := b.Apply(ctx, nil, elems("192.0.2.1", "198.51.100.1", "192.0.2.3"))
	var ee *ElementError
	if !errors.As(err, &ee) {
		t.Fatalf("Apply = %v, want an *ElementError", err)
	}
	if ee.Op != "del" || ee.Set != DefaultName || ee.Prefix != netip.MustParsePrefix("198.51.100.1/32") || !errors.Is(err, ErrnoExist) {
		t.Errorf("error = %+v", ee)
	}
	if !strings.Contains(err.Error(), "198.51.100.1/32") || !strings.Contains(err.Error(), "not in the set") {
		t.Errorf("message %q does not say what is wrong", err)
	}
	checkMembers(t, ns, map[string][]string{DefaultName: prefixes("192.0.2.2")})

	// Adding a present element fails the same way; the rest is added.
	err = b.Apply(ctx, elems("192.0.2.5", "2001:db8::1", "2001:db8::9", "192.0.2.2", "192.0.2.6"), nil)
	var refused []string
	for _, e := range flatten(err) {
		if errors.As(e, &ee) {
			if ee.Op != "add" || !errors.Is(ee, ErrnoExist) || !strings.Contains(ee.Error(), "already in the set") {
				t.Errorf("error = %v", ee)
			}
			refused = append(refused, ee.Prefix.String())
		}
	}
	slices.Sort(refused)
	if !slices.Equal(refused, prefixes("192.0.2.2", "2001:db8::1")) {
		t.Errorf("refused %v (from %v), want 192.0.2.2 and 2001:db8::1", refused, err)
	}
	checkMembers(t, ns, map[string][]string{
		DefaultName: prefixes("192.0.2.2", "192.0.2.5", "192.0.2.6"),
		nameAddr6:   prefixes("2001:db8::1", "2001:db8::9"),
	})

	// A failure that is not about one element (the set is gone) says so.
	ns.Run(t, "ipset", "destroy", nameNet6)
	err = b.Apply(ctx, elems("2001:db8:5::/48"), nil)
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), nameNet6) {
		t.Errorf("Apply into a destroyed set = %v", err)
	}
	// The next Replace brings it back.
	if err := b.Replace(ctx, elems("2001:db8:5::/48")); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, ns, map[string][]string{nameNet6: prefixes("2001:db8:5::/48")})
	if got := setNames(t, ns); !slices.Equal(got, allSets) {
		t.Errorf("sets = %v, want %v", got, allSets)
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestLargerThanMaxElem loads a list five times MaxElem: the sets are sized
// for it instead of failing with "Hash is full".
func TestLargerThanMaxElem(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{MaxElem: 1000})
	ctx := context.Background()
	e := &firewall.Elements{Addr4: seqAddr4(5000, 0)}
	for i := range 3000 {
		e.Add(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48))
	}
	if err := b.Replace(ctx, e); err != nil {
		t.Fatal(err)
	}
	h := header(t, ns, DefaultName)
	if headerInt(t, h, "Number of entries") != 5000 || headerInt(t, h, "maxelem") != 10000 {
		t.Errorf("%s: entries %s maxelem %s, want 5000 and 10000", DefaultName, h["Number of entries"], h["maxelem"])
	}
	h = header(t, ns, nameNet6)
	if headerInt(t, h, "Number of entries") != 3000 || headerInt(t, h, "maxelem") != 6000 {
		t.Errorf("%s: entries %s maxelem %s, want 3000 and 6000", nameNet6, h["Number of entries"], h["maxelem"])
	}
	if h := header(t, ns, nameAddr6); headerInt(t, h, "maxelem") != 1000 {
		t.Errorf("%s: maxelem %s, want MaxElem 1000", nameAddr6, h["maxelem"])
	}

	// Deltas alone can still fill a set; Apply says so and adds what fits.
	add := &firewall.Elements{Addr4: seqAddr4(6000, 5000)}
	err := b.Apply(ctx, add, nil)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Apply beyond maxelem = %v, want ErrFull", err)
	}
	// The kernel may let one element past maxelem; what matters is that
	// the error counts exactly what is missing.
	m := regexp.MustCompile(`is full: (\d+) elements not added`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q does not count what was left out", err)
	}
	missing, _ := strconv.Atoi(m[1])
	got := headerInt(t, header(t, ns, DefaultName), "Number of entries")
	if got < 10000 || got+missing != 5000+6000 {
		t.Errorf("set holds %d, error says %d not added; want at least 10000 and a sum of 11000", got, missing)
	}
}

func TestNames(t *testing.T) {
	ns := newNetns(t)
	name := func(n int) string { return strings.Repeat("n", n) }
	for _, c := range []struct {
		name string
		cfg  Config
		want string // "" = success
	}{
		{"24 characters", Config{Name: name(24)}, ""},
		{"25 characters", Config{Name: name(25)}, "at most 24 characters"},
		{"22 with allow", Config{Name: name(22), Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, ""},
		{"23 with allow", Config{Name: name(23), Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "at most 22 characters"},
		{"chain too long", Config{Name: "x", Rules: true, Chain: name(29)}, "iptables allows 28"},
		{"space", Config{Name: "a b"}, "only letters"},
		{"allow /0", Config{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, "/0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.NetNS = int(ns.File.Fd())
			c.cfg.Logger = testLogger(t)
			b, err := New(context.Background(), c.cfg)
			if c.want == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				if err := b.Close(false); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				b.Close(false)
				t.Fatalf("New succeeded, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || (strings.Contains(c.want, "characters") && !strings.Contains(err.Error(), "31")) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
	if got := setNames(t, ns); len(got) != 0 {
		t.Errorf("sets left behind: %v", got)
	}
}

// TestReuse starts over sets of an earlier run (here: the upstream client's
// IPv4 set, with a smaller maxelem and one address).
func TestReuse(t *testing.T) {
	ns := newNetns(t)
	ns.Run(t, "ipset", "create", DefaultName, "hash:ip", "maxelem", "65536")
	ns.Run(t, "ipset", "add", DefaultName, "192.0.2.77")
	b := open(t, ns, Config{})
	// Reused as it is, not recreated.
	if h := header(t, ns, DefaultName); h["maxelem"] != "65536" || !inSet(ns, DefaultName, "192.0.2.77") {
		t.Errorf("existing set was not reused: %v", h)
	}
	ctx := context.Background()
	if err := b.Replace(ctx, elems("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, ns, map[string][]string{DefaultName: prefixes("192.0.2.1")})
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}

	// A restart finds its own sets and contents.
	b = open(t, ns, Config{})
	checkMembers(t, ns, map[string][]string{DefaultName: prefixes("192.0.2.1")})
	if err := b.Apply(ctx, elems("192.0.2.2"), elems("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, ns, map[string][]string{DefaultName: prefixes("192.0.2.2")})
}

func TestIncompatibleExisting(t *testing.T) {
	ns := newNetns(t)
	// Unreferenced, wrong type: recreated.
	ns.Run(t, "ipset", "create", DefaultName, "hash:net")
	ns.Run(t, "ipset", "add", DefaultName, "10.0.0.0/8")
	b := open(t, ns, Config{})
	if h := header(t, ns, DefaultName); h["Type"] != "hash:ip" || h["Number of entries"] != "0" {
		t.Errorf("wrong-type set not recreated: %v", h)
	}
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}

	// Referenced by a rule, wrong family: New refuses and says why.
	ns.Run(t, "ipset", "create", nameAddr6, "hash:ip", "family", "inet")
	ns.Run(t, "iptables", "-A", "INPUT", "-m", "set", "--match-set", nameAddr6, "src", "-j", "DROP")
	_, err := New(context.Background(), Config{NetNS: int(ns.File.Fd()), Logger: testLogger(t)})
	if err == nil {
		t.Fatal("New succeeded over a referenced set of the wrong family")
	}
	for _, w := range []string{nameAddr6, "hash:ip inet", "hash:ip inet6", "reference"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if h := header(t, ns, nameAddr6); h["family"] != "inet" {
		t.Errorf("the referenced set was changed: %v", h)
	}
}

func TestCloseKeep(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	if err := b.Replace(context.Background(), elems("192.0.2.1", "2001:db8::1", "10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(false); err != nil { // a second Close does nothing
		t.Fatal(err)
	}
	checkMembers(t, ns, map[string][]string{
		DefaultName: prefixes("192.0.2.1"),
		nameAddr6:   prefixes("2001:db8::1"),
		nameNet4:    prefixes("10.0.0.0/8"),
		nameNet6:    nil,
	})
	if err := b.Replace(context.Background(), nil); err == nil {
		t.Error("Replace after Close succeeded")
	}
}

// TestCloseReferenced: a set that someone else's rule uses cannot be
// destroyed; Close empties it instead, and destroys the others.
func TestCloseReferenced(t *testing.T) {
	ns := newNetns(t)
	b := open(t, ns, Config{})
	if err := b.Replace(context.Background(), elems("192.0.2.1", "2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "iptables", "-A", "INPUT", "-m", "set", "--match-set", DefaultName, "src", "-j", "DROP")
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	if got := setNames(t, ns); !slices.Equal(got, []string{DefaultName}) {
		t.Errorf("sets after Close = %v, want only the referenced %s", got, DefaultName)
	}
	checkMembers(t, ns, map[string][]string{DefaultName: nil})
}
