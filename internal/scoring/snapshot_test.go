package scoring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/events"
)

// smallState is a scorer with one of everything: listed and unlisted keys,
// IPv6 aggregates, a never-listed key, overflowing types, saturated
// probes, histories, a block and an unblock.
func smallState(t testing.TB) (*Scorer, Config) {
	cfg := DefaultConfig()
	cfg.IPv6Prefix = 64
	s := New(cfg)
	obs := func(d time.Duration, typ events.Type, a string, p events.ProbeID) {
		s.Observe(&events.Event{Time: base.Add(d).UnixNano(), Type: typ, Addr: netip.MustParseAddr(a), Probe: p})
	}
	for i := range 5 {
		obs(time.Duration(i)*time.Second, events.TelnetLogin, "185.1.1.1", 1)
		obs(time.Duration(i)*time.Second, events.HaasLogged, "2a01:4f8:1:2::"+fmt.Sprint(i+1), events.ProbeID(i))
		obs(time.Duration(i)*time.Second, events.TelnetLogin, "10.0.0.1", 1)
	}
	for i, typ := range events.Builtin() {
		obs(time.Minute, typ, "185.2.2.2", events.ProbeID(i))
	}
	obs(2*time.Minute, events.TelnetConnect, "185.3.3.3", 4)
	if _, _, err := s.Block(netip.MustParsePrefix("185.4.4.4/32"), base, base.Add(time.Hour), "manual ☃"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Unblock(netip.MustParsePrefix("185.1.1.1/32"), base.Add(time.Minute), base.Add(2*time.Hour), "ours"); err != nil {
		t.Fatal(err)
	}
	s.Tick(base.Add(3*time.Minute), func(Change) {})
	return s, cfg
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, cfg := smallState(t)
	snap := s.AppendSnapshot([]byte("prefix"))
	if !bytes.HasPrefix(snap, []byte("prefix")) {
		t.Fatal("AppendSnapshot lost its prefix")
	}
	snap = snap[len("prefix"):]
	r, err := Restore(cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	if again := r.AppendSnapshot(nil); !bytes.Equal(again, snap) {
		t.Fatal("snapshot of the restored state differs")
	}
	addrs := []netip.Addr{}
	for _, a := range []string{"185.1.1.1", "2a01:4f8:1:2::1", "10.0.0.1", "185.2.2.2", "185.3.3.3", "185.4.4.4"} {
		addrs = append(addrs, netip.MustParseAddr(a))
	}
	now := base.Add(5 * time.Minute)
	if explainAll(r, addrs, now) != explainAll(s, addrs, now) {
		t.Errorf("explanations differ:\n%s\nwant\n%s", explainAll(r, addrs, now), explainAll(s, addrs, now))
	}
	if r.Stats() != s.Stats() {
		// Counters of events are not state; the rest is.
		a, b := r.Stats(), s.Stats()
		if a.Keys != b.Keys || a.Listed != b.Listed || a.Overrides != b.Overrides {
			t.Errorf("stats %+v, want %+v", a, b)
		}
	}
	var l1, l2 []string
	for k, tags := range s.Listed {
		l1 = append(l1, k.String()+strings.Join(tags, ","))
	}
	for k, tags := range r.Listed {
		l2 = append(l2, k.String()+strings.Join(tags, ","))
	}
	if !slices.Equal(l1, l2) || len(l1) != 3 {
		t.Errorf("listed %q, want %q", l2, l1)
	}
	// Both go on the same way.
	var c1, c2 []Change
	s.Tick(base.Add(3*time.Hour), func(c Change) { c1 = append(c1, c) })
	r.Tick(base.Add(3*time.Hour), func(c Change) { c2 = append(c2, c) })
	if !slices.Equal(c1, c2) || len(c1) == 0 {
		t.Errorf("ticks after restore: %+v, want %+v", c2, c1)
	}
}

func TestRestoreUnderNewConfig(t *testing.T) {
	s, cfg := smallState(t)
	snap := s.AppendSnapshot(nil)

	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("185.4.0.0/16"), netip.MustParsePrefix("2a01:4f8::/32")}
	r, err := Restore(cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	r.Tick(base.Add(3*time.Minute+time.Second), func(c Change) { got = append(got, fmt.Sprintf("%v %v %s", c.Key, c.Listed, c.Reason)) })
	if want := []string{"185.4.4.4/32 false allow-list", "2a01:4f8:1:2::/64 false allow-list"}; !slices.Equal(got, want) {
		t.Errorf("changes %q, want %q", got, want)
	}
	if x, _ := r.Explain(netip.MustParseAddr("185.4.4.4"), base.Add(time.Hour)); x.Override != nil || x.Listed {
		t.Errorf("the allow-list must win over an old block: %+v", x)
	}

	cfg.IPv6Prefix = 48
	if _, err := Restore(cfg, snap); !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), "/64") {
		t.Errorf("other IPv6 prefix: %v", err)
	}
}

func TestRestoreRejects(t *testing.T) {
	s, cfg := smallState(t)
	snap := s.AppendSnapshot(nil)
	for i := range snap {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(snap)
			b[i] ^= bit
			if _, err := Restore(cfg, b); !errors.Is(err, ErrSnapshot) {
				t.Fatalf("bit %#x of byte %d flipped: %v", bit, i, err)
			}
		}
	}
	for n := range len(snap) {
		if _, err := Restore(cfg, snap[:n]); !errors.Is(err, ErrSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
		if _, err := Restore(cfg, withCRC(snap[:n])); err == nil && n < len(snap)-4 {
			t.Fatalf("truncated to %d with a good checksum: accepted", n)
		}
	}
	if _, err := Restore(cfg, withCRC(append(bytes.Clone(snap[:len(snap)-4]), 0, 0, 0, 0, 0))); !errors.Is(err, ErrSnapshot) {
		t.Errorf("trailing bytes: %v", err)
	}
	b := bytes.Clone(snap)
	b[4] = 9
	if _, err := Restore(cfg, withCRC(b)); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version: %v", err)
	}
}

// withCRC replaces the last four bytes of b by the checksum of the rest,
// so that corrupt input reaches the decoder.
func withCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the FuzzRestore seed corpus")

// seeds are the inputs of the checked-in corpus.
func seeds(t testing.TB) map[string][]byte {
	s, _ := smallState(t)
	full := s.AppendSnapshot(nil)
	empty := New(DefaultConfig()).AppendSnapshot(nil)
	many := New(DefaultConfig())
	for i := range 50 {
		many.Observe(&events.Event{Time: int64(i), Type: events.FTPLogin, Addr: netip.AddrFrom4([4]byte{185, 0, 1, byte(i)}), Probe: events.ProbeID(i % 9)})
	}
	return map[string][]byte{
		"full":        full,
		"empty_state": empty,
		"fifty_keys":  many.AppendSnapshot(nil),
		"truncated":   withCRC(full[:len(full)/2]),
		"nothing":     nil,
		"magic_only":  []byte("DFWS"),
		"huge_count":  withCRC(append(append([]byte("DFWS\x01\x40"), binary.AppendUvarint(nil, 1<<40)...), 0, 0, 0, 0)),
	}
}

// TestFuzzSeeds keeps the corpus in step with the format: the valid seeds
// must still restore. Run with -update-seeds after changing the format.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRestore")
	for name, b := range seeds(t) {
		path := filepath.Join(dir, name)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("seed %s missing (run go test -run FuzzSeeds -update-seeds): %v", name, err)
		}
	}
	for _, name := range []string{"full", "empty_state", "fifty_keys"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var q string
		if _, err := fmt.Sscanf(strings.TrimPrefix(string(data), "go test fuzz v1\n"), "[]byte(%q)", &q); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg := DefaultConfig()
		if name == "full" {
			cfg.IPv6Prefix = 64
		}
		if _, err := Restore(cfg, []byte(q)); err != nil {
			t.Errorf("seed %s no longer restores (run go test -run FuzzSeeds -update-seeds): %v", name, err)
		}
	}
}

// FuzzRestore feeds Restore arbitrary bytes, as they come and with a
// repaired checksum so that they reach the decoder. It must never panic,
// and what it accepts must work and snapshot again identically.
func FuzzRestore(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v6 := range []int{0, 64} {
			cfg := DefaultConfig()
			cfg.IPv6Prefix = v6
			if _, err := Restore(cfg, b); err == nil && !bytes.Equal(b, withCRC(b)) {
				t.Fatal("accepted a bad checksum")
			}
			s, err := Restore(cfg, withCRC(b))
			if err != nil {
				if !errors.Is(err, ErrSnapshot) {
					t.Fatalf("error does not wrap ErrSnapshot: %v", err)
				}
				continue
			}
			snap := s.AppendSnapshot(nil)
			r, err := Restore(cfg, snap)
			if err != nil {
				t.Fatalf("restored state does not restore again: %v", err)
			}
			if !bytes.Equal(r.AppendSnapshot(nil), snap) {
				t.Fatal("snapshot not stable")
			}
			// The state must be usable whatever the times in it.
			for k := range s.Listed {
				s.Explain(k.Addr(), base)
			}
			s.Observe(&events.Event{Time: base.UnixNano(), Type: events.TelnetLogin, Addr: netip.MustParseAddr("185.1.1.1")})
			for _, d := range []time.Duration{0, time.Hour, 1000 * time.Hour} {
				s.Tick(base.Add(d), func(Change) {})
			}
			s.Tick(time.Unix(0, 1<<62), func(Change) {})
			if st := s.Stats(); st.Listed < 0 || st.Listed > st.Keys {
				t.Fatalf("stats %+v", st)
			}
		}
	})
}
