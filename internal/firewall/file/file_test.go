package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
)

// elems builds Elements from text, the way the client would.
func elems(t testing.TB, items ...string) *firewall.Elements {
	t.Helper()
	e := &firewall.Elements{}
	for _, s := range items {
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				t.Fatal(err)
			}
			e.Add(netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Add(p)
	}
	return e
}

// small is the set of the golden tests: unsorted, with a duplicate, nested
// prefixes, and numbers that sort differently as text.
var small = []string{
	"10.0.0.1", "1.2.3.4", "9.9.9.9", "1.2.3.4", "255.255.255.255",
	"2001:db8::10", "2001:db8::1", "2001:db8::2",
	"192.168.0.0/24", "10.1.0.0/16", "10.0.0.0/8",
	"2a00::/16", "2001:db8:1::/48", "2001:db8::/32",
}

const goldenPlain = `1.2.3.4
9.9.9.9
10.0.0.1
255.255.255.255
2001:db8::1
2001:db8::2
2001:db8::10
10.0.0.0/8
10.1.0.0/16
192.168.0.0/24
2001:db8::/32
2001:db8:1::/48
2a00::/16
`

const goldenIpset = `create turris-sn-dynfw-block hash:ip family inet maxelem 262144 -exist
create turris-sn-dynfw-block-tmp hash:ip family inet maxelem 262144 -exist
flush turris-sn-dynfw-block-tmp
add turris-sn-dynfw-block-tmp 1.2.3.4
add turris-sn-dynfw-block-tmp 9.9.9.9
add turris-sn-dynfw-block-tmp 10.0.0.1
add turris-sn-dynfw-block-tmp 255.255.255.255
create turris-sn-dynfw-block-v6 hash:ip family inet6 maxelem 262144 -exist
create turris-sn-dynfw-block-v6-tmp hash:ip family inet6 maxelem 262144 -exist
flush turris-sn-dynfw-block-v6-tmp
add turris-sn-dynfw-block-v6-tmp 2001:db8::1
add turris-sn-dynfw-block-v6-tmp 2001:db8::2
add turris-sn-dynfw-block-v6-tmp 2001:db8::10
create turris-sn-dynfw-block-net4 hash:net family inet maxelem 262144 -exist
create turris-sn-dynfw-block-net4-tmp hash:net family inet maxelem 262144 -exist
flush turris-sn-dynfw-block-net4-tmp
add turris-sn-dynfw-block-net4-tmp 10.0.0.0/8
add turris-sn-dynfw-block-net4-tmp 10.1.0.0/16
add turris-sn-dynfw-block-net4-tmp 192.168.0.0/24
create turris-sn-dynfw-block-net6 hash:net family inet6 maxelem 262144 -exist
create turris-sn-dynfw-block-net6-tmp hash:net family inet6 maxelem 262144 -exist
flush turris-sn-dynfw-block-net6-tmp
add turris-sn-dynfw-block-net6-tmp 2001:db8::/32
add turris-sn-dynfw-block-net6-tmp 2001:db8:1::/48
add turris-sn-dynfw-block-net6-tmp 2a00::/16
swap turris-sn-dynfw-block-tmp turris-sn-dynfw-block
swap turris-sn-dynfw-block-v6-tmp turris-sn-dynfw-block-v6
swap turris-sn-dynfw-block-net4-tmp turris-sn-dynfw-block-net4
swap turris-sn-dynfw-block-net6-tmp turris-sn-dynfw-block-net6
destroy turris-sn-dynfw-block-tmp
destroy turris-sn-dynfw-block-v6-tmp
destroy turris-sn-dynfw-block-net4-tmp
destroy turris-sn-dynfw-block-net6-tmp
`

const goldenNft = `add table inet dynfw
add set inet dynfw addr4 { type ipv4_addr; }
add set inet dynfw addr6 { type ipv6_addr; }
add set inet dynfw net4 { type ipv4_addr; flags interval; auto-merge; }
add set inet dynfw net6 { type ipv6_addr; flags interval; auto-merge; }
flush set inet dynfw addr4
flush set inet dynfw addr6
flush set inet dynfw net4
flush set inet dynfw net6
add element inet dynfw addr4 { 1.2.3.4, 9.9.9.9, 10.0.0.1, 255.255.255.255 }
add element inet dynfw addr6 { 2001:db8::1, 2001:db8::2, 2001:db8::10 }
add element inet dynfw net4 { 10.0.0.0/8, 192.168.0.0/24 }
add element inet dynfw net6 { 2001:db8::/32, 2a00::/16 }
`

const emptyIpsetCustom = `create b4 hash:ip family inet maxelem 10 -exist
create b4-tmp hash:ip family inet maxelem 10 -exist
flush b4-tmp
create b6 hash:ip family inet6 maxelem 10 -exist
create b6-tmp hash:ip family inet6 maxelem 10 -exist
flush b6-tmp
create n4 hash:net family inet maxelem 10 -exist
create n4-tmp hash:net family inet maxelem 10 -exist
flush n4-tmp
create n6 hash:net family inet6 maxelem 10 -exist
create n6-tmp hash:net family inet6 maxelem 10 -exist
flush n6-tmp
swap b4-tmp b4
swap b6-tmp b6
swap n4-tmp n4
swap n6-tmp n6
destroy b4-tmp
destroy b6-tmp
destroy n4-tmp
destroy n6-tmp
`

const emptyNftCustom = `add table inet fw
add set inet fw a { type ipv4_addr; }
add set inet fw b { type ipv6_addr; }
add set inet fw c { type ipv4_addr; flags interval; auto-merge; }
add set inet fw d { type ipv6_addr; flags interval; auto-merge; }
flush set inet fw a
flush set inet fw b
flush set inet fw c
flush set inet fw d
`

func newBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "blocked")
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(false) })
	return b
}

func readFile(t testing.TB, b *Backend) string {
	t.Helper()
	data, err := os.ReadFile(b.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		set  []string
		want string
	}{
		{"plain", Config{}, small, goldenPlain},
		{"plain-explicit", Config{Format: Plain}, small, goldenPlain},
		{"plain-empty", Config{}, nil, ""},
		{"ipset", Config{Format: Ipset}, small, goldenIpset},
		{"ipset-empty-custom", Config{Format: Ipset, IpsetSets: SetNames{"b4", "b6", "n4", "n6"}, IpsetMaxElem: 10}, nil, emptyIpsetCustom},
		{"ipset-unspecified-and-zero-prefix", Config{Format: Ipset, IpsetSets: SetNames{"b4", "b6", "n4", "n6"}, IpsetMaxElem: 10},
			[]string{"0.0.0.0", "1.1.1.1", "::", "::1", "0.0.0.0/0", "::/0"},
			strings.NewReplacer(
				"flush b4-tmp\n", "flush b4-tmp\nadd b4-tmp 1.1.1.1\n",
				"flush b6-tmp\n", "flush b6-tmp\nadd b6-tmp ::1\n",
				"flush n4-tmp\n", "flush n4-tmp\nadd n4-tmp 0.0.0.0/1\nadd n4-tmp 128.0.0.0/1\n",
				"flush n6-tmp\n", "flush n6-tmp\nadd n6-tmp ::/1\nadd n6-tmp 8000::/1\n",
			).Replace(emptyIpsetCustom)},
		{"nft", Config{Format: Nft}, small, goldenNft},
		{"nft-empty-custom", Config{Format: Nft, NftTable: "fw", NftSets: SetNames{"a", "b", "c", "d"}}, nil, emptyNftCustom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.cfg)
			if err := b.Replace(context.Background(), elems(t, tt.set...)); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, b); got != tt.want {
				t.Errorf("file:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestNftChunks(t *testing.T) {
	e := &firewall.Elements{}
	for i := range nftChunk + 2 {
		e.Addr4 = append(e.Addr4, uint32(i))
	}
	var out bytes.Buffer
	c := &chunkWriter{w: &out}
	encodeNft(c, e, "t", DefaultNftSets)
	c.flush()
	var lines []string
	for l := range strings.Lines(out.String()) {
		if strings.HasPrefix(l, "add element") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d add element lines, want 2", len(lines))
	}
	if n := strings.Count(lines[0], ",") + 1; n != nftChunk {
		t.Errorf("first statement has %d elements, want %d", n, nftChunk)
	}
	if want := "add element inet t addr4 { 0.0.4.0, 0.0.4.1 }\n"; lines[1] != want {
		t.Errorf("last statement %q, want %q", lines[1], want)
	}
}

func TestIpsetMaxElem(t *testing.T) {
	b := newBackend(t, Config{Format: Ipset, IpsetMaxElem: 2})
	err := b.Replace(context.Background(), elems(t, "1.1.1.1", "2.2.2.2", "3.3.3.3"))
	if err == nil || !strings.Contains(err.Error(), "maxelem 2") {
		t.Fatalf("err = %v, want a maxelem error", err)
	}
	if _, err := os.Stat(b.cfg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused set left a file: %v", err)
	}
}

func TestAppendAddr4(t *testing.T) {
	for _, v := range []uint32{0, 1, 9, 10, 99, 100, 255, 0x01020304, 0x0a00000a, 0xc0a86401, 0x64636261, 0xffffffff} {
		want := firewall.AddrFrom4(v).String()
		if got := string(AppendAddr4([]byte("x"), v)); got != "x"+want {
			t.Errorf("AppendAddr4(%#x) = %q, want %q", v, got, "x"+want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		v := r.Uint32()
		if got, want := string(AppendAddr4(nil, v)), firewall.AddrFrom4(v).String(); got != want {
			t.Fatalf("AppendAddr4(%#x) = %q, want %q", v, got, want)
		}
	}
}

func TestWalk(t *testing.T) {
	var s Set
	s.Replace(elems(t, small...))
	var got strings.Builder
	if err := Walk(s.Elements(), func(text []byte) error {
		got.Write(text)
		got.WriteByte('\n')
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got.String() != goldenPlain {
		t.Errorf("Walk:\n%s\nwant:\n%s", got.String(), goldenPlain)
	}
	stop := errors.New("stop")
	n := 0
	if err := Walk(s.Elements(), func([]byte) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Walk returned %v after %d calls, want stop after 1", err, n)
	}
}

// text renders Elements in the plain format, for comparisons.
func text(e *firewall.Elements) string {
	var b strings.Builder
	Walk(e, func(t []byte) error {
		b.Write(t)
		b.WriteByte(' ')
		return nil
	})
	return strings.TrimSpace(b.String())
}

func TestSetApply(t *testing.T) {
	tests := []struct {
		name              string
		cur, add, del     []string
		want, added, gone string
	}{
		{"add to empty", nil, []string{"1.1.1.1", "::1", "10.0.0.0/8"}, nil,
			"1.1.1.1 ::1 10.0.0.0/8", "1.1.1.1 ::1 10.0.0.0/8", ""},
		{"delete all", []string{"1.1.1.1", "::1", "10.0.0.0/8"}, nil, []string{"::1", "10.0.0.0/8", "1.1.1.1"},
			"", "", "1.1.1.1 ::1 10.0.0.0/8"},
		{"interleaved", []string{"1.0.0.1", "1.0.0.3", "1.0.0.5"}, []string{"1.0.0.4", "1.0.0.0", "1.0.0.9"}, []string{"1.0.0.3"},
			"1.0.0.0 1.0.0.1 1.0.0.4 1.0.0.5 1.0.0.9", "1.0.0.0 1.0.0.4 1.0.0.9", "1.0.0.3"},
		// The caller's guarantees broken: nothing changes twice.
		{"add present, delete absent", []string{"1.1.1.1", "2001:db8::/32"}, []string{"1.1.1.1", "2001:db8::/32", "2.2.2.2"}, []string{"3.3.3.3", "::2"},
			"1.1.1.1 2.2.2.2 2001:db8::/32", "2.2.2.2", ""},
		{"duplicates in the batch", []string{"1.1.1.1"}, []string{"5.5.5.5", "5.5.5.5"}, []string{"1.1.1.1", "1.1.1.1"},
			"5.5.5.5", "5.5.5.5", "1.1.1.1"},
		{"delete then add the same", []string{"1.1.1.1"}, []string{"1.1.1.1"}, []string{"1.1.1.1"},
			"1.1.1.1", "1.1.1.1", "1.1.1.1"},
		{"nothing", []string{"1.1.1.1"}, nil, nil, "1.1.1.1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			s.Replace(elems(t, tt.cur...))
			var add, del *firewall.Elements
			if tt.add != nil {
				add = elems(t, tt.add...)
			}
			if tt.del != nil {
				del = elems(t, tt.del...)
			}
			addBefore, delBefore := text(add), text(del)
			added, gone := s.Apply(add, del)
			if got := text(s.Elements()); got != tt.want {
				t.Errorf("set %q, want %q", got, tt.want)
			}
			if got := text(added); got != tt.added {
				t.Errorf("added %q, want %q", got, tt.added)
			}
			if got := text(gone); got != tt.gone {
				t.Errorf("deleted %q, want %q", got, tt.gone)
			}
			if text(add) != addBefore || text(del) != delBefore {
				t.Error("Apply modified its arguments")
			}
		})
	}
}

func TestSetNormalisesNets(t *testing.T) {
	var s Set
	s.Replace(&firewall.Elements{Nets: []netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"),          // host bits
		netip.MustParsePrefix("::ffff:10.0.0.0/104"), // IPv4-mapped 10.0.0.0/8
		{}, // invalid
		netip.MustParsePrefix("2001:db8::1/32"),
	}})
	if got, want := text(s.Elements()), "10.0.0.0/8 2001:db8::/32"; got != want {
		t.Errorf("set %q, want %q", got, want)
	}
}

// TestSetRandom checks Apply against a map model through many random
// batches, including ones that break the caller's guarantees.
func TestSetRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	model := map[netip.Prefix]bool{}
	var s Set
	random := func() netip.Prefix {
		switch r.IntN(3) {
		case 0:
			return netip.PrefixFrom(firewall.AddrFrom4(r.Uint32N(300)), 32)
		case 1:
			var a [16]byte
			a[0], a[15] = 0x20, byte(r.IntN(200))
			return netip.PrefixFrom(netip.AddrFrom16(a), 128)
		}
		return netip.PrefixFrom(firewall.AddrFrom4(r.Uint32N(50)<<24), 4+r.IntN(5)).Masked()
	}
	for round := range 500 {
		add, del := &firewall.Elements{}, &firewall.Elements{}
		wantAdded, wantGone := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
		for range r.IntN(20) {
			p := random()
			del.Add(p)
			if model[p] {
				wantGone[p] = true
			}
		}
		for p := range wantGone {
			delete(model, p)
		}
		for range r.IntN(20) {
			p := random()
			add.Add(p)
			if !model[p] {
				wantAdded[p] = true
			}
		}
		for p := range wantAdded {
			model[p] = true
		}
		added, gone := s.Apply(add, del)
		check := func(what string, got *firewall.Elements, want map[netip.Prefix]bool) {
			ps := got.Prefixes()
			w := &firewall.Elements{}
			for p := range want {
				w.Add(p)
			}
			w.Sort()
			if !slices.Equal(ps, w.Prefixes()) {
				t.Fatalf("round %d: %s = %v, want %v", round, what, ps, w.Prefixes())
			}
		}
		check("set", s.Elements(), model)
		check("added", added, wantAdded)
		check("deleted", gone, wantGone)
	}
}

func TestApplyRewrites(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, Config{})
	if err := b.Replace(ctx, elems(t, "1.1.1.1", "3.3.3.3")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		add, del []string
		want     string
	}{
		{[]string{"2.2.2.2", "2001:db8::/48"}, nil, "1.1.1.1\n2.2.2.2\n3.3.3.3\n2001:db8::/48\n"},
		{nil, []string{"1.1.1.1", "3.3.3.3"}, "2.2.2.2\n2001:db8::/48\n"},
		{[]string{"::1"}, []string{"2.2.2.2"}, "::1\n2001:db8::/48\n"},
		{nil, []string{"::1", "2001:db8::/48"}, ""},
	}
	for i, st := range steps {
		if err := b.Apply(ctx, elems(t, st.add...), elems(t, st.del...)); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, b); got != st.want {
			t.Errorf("step %d: file %q, want %q", i, got, st.want)
		}
	}

	// An empty batch changes nothing and does not rewrite the file.
	os.Remove(b.cfg.Path)
	if err := b.Apply(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.cfg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty Apply rewrote the file: %v", err)
	}
}

// TestFailedWriteRetried: a write that fails leaves the change in memory,
// and the next call writes it even if it changes nothing itself.
func TestFailedWriteRetried(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, Config{Path: filepath.Join(dir, "list")})
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	err := b.Apply(ctx, elems(t, "1.1.1.1"), nil)
	if err == nil || !strings.Contains(err.Error(), b.cfg.Path) {
		t.Fatalf("write into a missing directory: %v, want an error naming the path", err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, b); got != "1.1.1.1\n" {
		t.Errorf("file %q after the retry, want the failed change", got)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Apply(canceled, elems(t, "2.2.2.2"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a canceled context: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 28)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{}, "no path"},
		{"missing directory", Config{Path: filepath.Join(dir, "nope", "list")}, "directory " + filepath.Join(dir, "nope") + " of " + filepath.Join(dir, "nope", "list") + " does not exist"},
		{"path is a directory", Config{Path: dir}, "is a directory"},
		{"unknown format", Config{Path: filepath.Join(dir, "l"), Format: "csv"}, `unknown format "csv"`},
		{"ipset name too long", Config{Path: filepath.Join(dir, "l"), Format: Ipset, IpsetSets: SetNames{Addr4: long}}, "invalid ipset set name"},
		{"ipset name with space", Config{Path: filepath.Join(dir, "l"), Format: Ipset, IpsetSets: SetNames{Addr4: "a b"}}, "invalid ipset set name"},
		{"ipset same names", Config{Path: filepath.Join(dir, "l"), Format: Ipset, IpsetSets: SetNames{"a", "a", "b", "c"}}, "must differ"},
		{"nft bad table", Config{Path: filepath.Join(dir, "l"), Format: Nft, NftTable: "a;b"}, "invalid nft name"},
		{"nft same names", Config{Path: filepath.Join(dir, "l"), Format: Nft, NftSets: SetNames{Net4: "addr4"}}, "must differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			b := newBackend(t, Config{})
			if err := b.Replace(ctx, elems(t, "1.1.1.1")); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(keep); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(b.cfg.Path)
			if keep && err != nil {
				t.Errorf("Close(true) removed the file: %v", err)
			}
			if !keep && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Close(false) left the file: %v", err)
			}
			if err := b.Replace(ctx, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Replace after Close: %v", err)
			}
			if err := b.Apply(ctx, nil, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Apply after Close: %v", err)
			}
			if err := b.Close(keep); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
	// Closing before anything was written is not an error.
	b := newBackend(t, Config{})
	if err := b.Close(false); err != nil {
		t.Errorf("Close of an unwritten file: %v", err)
	}
}

func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "list")
	stale := filepath.Join(dir, ".list.tmp-123")
	other := filepath.Join(dir, ".other.tmp-123")
	for _, f := range []string{stale, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	newBackend(t, Config{Path: path})
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file left: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file's temporary removed: %v", err)
	}
}

// TestAtomicReplacement: a reader that opens the file in a tight loop
// while it is rewritten 100 times between two large sets always reads one of them
// completely, and no temporary file is left.
func TestAtomicReplacement(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, Config{})
	sets := [2]*firewall.Elements{{}, {}}
	for i := range uint32(5000) {
		sets[0].Addr4 = append(sets[0].Addr4, 0x0a000000+i)
	}
	for i := range uint32(8000) {
		sets[1].Addr4 = append(sets[1].Addr4, 0xc0000000+i*3)
	}
	var want [2]string
	for i, e := range sets {
		if err := b.Replace(ctx, e); err != nil {
			t.Fatal(err)
		}
		want[i] = readFile(t, b)
	}

	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				data, err := os.ReadFile(b.cfg.Path)
				reads.Add(1)
				if err != nil || (string(data) != want[0] && string(data) != want[1]) {
					if bad.Add(1) == 1 {
						t.Errorf("reader saw a partial file (%d bytes, err %v)", len(data), err)
					}
				}
			}
		})
	}
	for i := range 100 {
		if err := b.Replace(ctx, sets[i%2]); err != nil {
			t.Error(err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reads during 100 rewrites", reads.Load())
	entries, _ := os.ReadDir(filepath.Dir(b.cfg.Path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the list", len(entries))
	}
}

// random4 returns n distinct random IPv4 addresses.
func random4(n int) *firewall.Elements {
	r := rand.New(rand.NewPCG(1, 1))
	seen := make(map[uint32]bool, n)
	e := &firewall.Elements{Addr4: make([]uint32, 0, n)}
	for len(e.Addr4) < n {
		v := r.Uint32()
		if !seen[v] {
			seen[v] = true
			e.Addr4 = append(e.Addr4, v)
		}
	}
	return e
}

func benchWrite(b *testing.B, f Format) {
	be := newBackend(b, Config{Format: f, IpsetMaxElem: 1 << 20})
	if err := be.Replace(context.Background(), random4(1_000_000)); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(be.cfg.Path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if err := be.write(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite1M rewrites the file of a million IPv4 addresses: the cost
// of every Apply on a large list (fsync included).
func BenchmarkWrite1M(b *testing.B) {
	for _, f := range []Format{Plain, Ipset, Nft} {
		b.Run(string(f), func(b *testing.B) { benchWrite(b, f) })
	}
}

// BenchmarkEncodePlain1M is the formatting alone, without the file system.
func BenchmarkEncodePlain1M(b *testing.B) {
	var s Set
	s.Replace(random4(1_000_000))
	c := &chunkWriter{w: discard{}, buf: make([]byte, 0, chunkSize+4096)}
	b.ReportAllocs()
	for b.Loop() {
		encodePlain(c, s.Elements())
		c.flush()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkReplace1M is the first list: copy, sort and write a million
// addresses.
func BenchmarkReplace1M(b *testing.B) {
	be := newBackend(b, Config{})
	e := random4(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		if err := be.Replace(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetApply1M merges a typical delta (100 adds, 100 deletes) into a
// million addresses, without writing.
func BenchmarkSetApply1M(b *testing.B) {
	var s Set
	s.Replace(random4(1_000_000))
	r := rand.New(rand.NewPCG(3, 3))
	add, del := &firewall.Elements{}, &firewall.Elements{}
	for range 100 {
		add.Addr4 = append(add.Addr4, r.Uint32())
	}
	del.Addr4 = append(del.Addr4, s.Elements().Addr4[:100]...)
	b.ReportAllocs()
	for b.Loop() {
		s.Apply(add, del)
		s.Apply(del, add)
	}
}
