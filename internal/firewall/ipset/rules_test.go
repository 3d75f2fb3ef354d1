package ipset

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall/fwtest"
	"github.com/dynfw/sentinel/internal/testenv"
)

// rulesOf returns `<bin> -S <chain>` as lines, or nil if the chain is
// missing.
func rulesOf(t *testing.T, ns *fwtest.Netns, bin, chain string) []string {
	t.Helper()
	out, err := ns.Try(bin, "-S", chain)
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(strings.Split(strings.TrimSpace(out), "\n"), func(s string) bool {
		return strings.HasPrefix(s, "-P ") || strings.HasPrefix(s, "#")
	})
}

func TestRules(t *testing.T) {
	for _, variant := range []string{"", "-legacy"} {
		name := "nft"
		if variant != "" {
			name = "legacy"
		}
		t.Run(name, func(t *testing.T) {
			v4, v6 := "iptables"+variant, "ip6tables"+variant
			for _, p := range []string{v4, v6, v4 + "-restore", v6 + "-restore"} {
				if _, err := exec.LookPath(p); err != nil {
					testenv.Skip(t, "needs "+p)
				}
			}
			testRules(t, v4, v6)
		})
	}
}

func testRules(t *testing.T, v4, v6 string) {
	ns := newNetns(t)
	// An administrator's rule that must stay, and stay after our jump.
	ns.Run(t, v4, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
	cfg := Config{
		Rules: true, Forward: true, IPTables: v4, IP6Tables: v6,
		Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:ffff::/48")},
	}
	b := open(t, ns, cfg)
	c := DefaultName
	wantChain4 := []string{
		"-N " + c,
		"-A " + c + " -m set --match-set " + c + "-allow4 src -j RETURN",
		"-A " + c + " -m set --match-set " + c + " src -j DROP",
		"-A " + c + " -m set --match-set " + c + "-net4 src -j DROP",
	}
	wantChain6 := []string{
		"-N " + c,
		"-A " + c + " -m set --match-set " + c + "-allow6 src -j RETURN",
		"-A " + c + " -m set --match-set " + c + "-v6 src -j DROP",
		"-A " + c + " -m set --match-set " + c + "-net6 src -j DROP",
	}
	wantInput4 := []string{"-A INPUT -j " + c, "-A INPUT -i lo -j ACCEPT"}
	jump := []string{"-A FORWARD -j " + c}
	check := func(when string, forward bool) {
		t.Helper()
		if got := rulesOf(t, ns, v4, c); !slices.Equal(got, wantChain4) {
			t.Errorf("%s: %s chain:\n%s\nwant:\n%s", when, v4, strings.Join(got, "\n"), strings.Join(wantChain4, "\n"))
		}
		if got := rulesOf(t, ns, v6, c); !slices.Equal(got, wantChain6) {
			t.Errorf("%s: %s chain:\n%s\nwant:\n%s", when, v6, strings.Join(got, "\n"), strings.Join(wantChain6, "\n"))
		}
		if got := rulesOf(t, ns, v4, "INPUT"); !slices.Equal(got, wantInput4) {
			t.Errorf("%s: %s INPUT = %q, want %q", when, v4, got, wantInput4)
		}
		wantFwd := jump
		if !forward {
			wantFwd = nil
		}
		if got := rulesOf(t, ns, v4, "FORWARD"); !slices.Equal(got, wantFwd) {
			t.Errorf("%s: %s FORWARD = %q, want %q", when, v4, got, wantFwd)
		}
		if got := rulesOf(t, ns, v6, "INPUT"); !slices.Equal(got, []string{"-A INPUT -j " + c}) {
			t.Errorf("%s: %s INPUT = %q", when, v6, got)
		}
	}
	check("first start", true)
	checkMembers(t, ns, map[string][]string{
		c + "-allow4": prefixes("198.51.100.0/24"),
		c + "-allow6": prefixes("2001:db8:ffff::/48"),
	})

	// A restart with the same configuration changes nothing.
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	b = open(t, ns, cfg)
	check("restart", true)

	// A restart without Forward takes the FORWARD jump away.
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	cfg.Forward = false
	b = open(t, ns, cfg)
	check("restart without Forward", false)

	// Close(false) removes our rules and sets, and nothing else.
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
	if got := rulesOf(t, ns, v4, c); got != nil {
		t.Errorf("%s chain left: %q", v4, got)
	}
	if got := rulesOf(t, ns, v6, c); got != nil {
		t.Errorf("%s chain left: %q", v6, got)
	}
	if got := rulesOf(t, ns, v4, "INPUT"); !slices.Equal(got, []string{"-A INPUT -i lo -j ACCEPT"}) {
		t.Errorf("%s INPUT after Close = %q", v4, got)
	}
	if got := rulesOf(t, ns, v6, "INPUT"); len(got) != 0 {
		t.Errorf("%s INPUT after Close = %q", v6, got)
	}
	if got := setNames(t, ns); len(got) != 0 {
		t.Errorf("sets after Close(false): %v", got)
	}
}

// TestRulesChanged: a chain from an earlier run with other rules (here an
// allow-list that is no longer configured) is rewritten, and the old
// allow-list sets are removed.
func TestRulesChanged(t *testing.T) {
	ns := newNetns(t)
	cfg := Config{Rules: true, Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	b := open(t, ns, cfg)
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	cfg.Allow = nil
	b = open(t, ns, cfg)
	c := DefaultName
	want := []string{
		"-N " + c,
		"-A " + c + " -m set --match-set " + c + " src -j DROP",
		"-A " + c + " -m set --match-set " + c + "-net4 src -j DROP",
	}
	if got := rulesOf(t, ns, "iptables", c); !slices.Equal(got, want) {
		t.Errorf("chain = %q, want %q", got, want)
	}
	if got := setNames(t, ns); !slices.Equal(got, allSets) {
		t.Errorf("sets = %v, want %v", got, allSets)
	}
	if err := b.Close(false); err != nil {
		t.Fatal(err)
	}
}
