package ipset

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

// Benchmarks run in a private network namespace, like the tests. Each
// backend benchmark has an `ipset restore` twin doing the same work from a
// text file prepared outside the timed loop, as a shell script or the
// upstream Python client would:
//
//	go test -run '^$' -bench . -count 5 ./internal/firewall/ipset/

var benchSizes = []int{100_000, 1_000_000}

func sizeName(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

func BenchmarkReplace(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			ns := newNetns(b)
			be := open(b, ns, Config{Logger: discardLogger()})
			e := &firewall.Elements{Addr4: seqAddr4(n, 0)}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := be.Replace(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			checkCount(b, ns, DefaultName, n)
		})
	}
}

// BenchmarkIpsetRestore is the twin of BenchmarkReplace: the same list
// loaded by `ipset restore` into a temporary set created with the same
// sizes, swapped with the live set, and the old set destroyed, all in one
// restore run.
func BenchmarkIpsetRestore(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			ns := newNetns(b)
			ns.Run(b, "ipset", "create", "live", "hash:ip")
			var s strings.Builder
			fmt.Fprintf(&s, "create tmp hash:ip family inet hashsize %d maxelem %d\n", hashSize(n), max(DefaultMaxElem, 2*n))
			for _, a := range seqAddr4(n, 0) {
				fmt.Fprintf(&s, "add tmp %s\n", firewall.AddrFrom4(a))
			}
			s.WriteString("swap tmp live\ndestroy tmp\n")
			file := writeTemp(b, s.String())
			b.ResetTimer()
			for b.Loop() {
				restore(b, ns, file)
			}
			b.StopTimer()
			checkCount(b, ns, "live", n)
		})
	}
}

// BenchmarkApply measures one Apply of 1,000 deletes and 1,000 adds into a
// set of a million addresses; iterations alternate between two disjoint
// groups so that every Apply is valid.
func BenchmarkApply(b *testing.B) {
	const n, d = 1_000_000, 1000
	ns := newNetns(b)
	be := open(b, ns, Config{Logger: discardLogger()})
	all := seqAddr4(n+d, 0)
	ctx := context.Background()
	if err := be.Replace(ctx, &firewall.Elements{Addr4: all[:n]}); err != nil {
		b.Fatal(err)
	}
	x := &firewall.Elements{Addr4: all[:d]}      // present at start
	y := &firewall.Elements{Addr4: all[n : n+d]} // absent at start
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		add, del := y, x
		if i%2 == 1 {
			add, del = x, y
		}
		if err := be.Apply(ctx, add, del); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	checkCount(b, ns, DefaultName, n)
}

// BenchmarkIpsetRestoreApply is the twin of BenchmarkApply: the same 1,000
// deletes and 1,000 adds as one `ipset restore` run.
func BenchmarkIpsetRestoreApply(b *testing.B) {
	const n, d = 1_000_000, 1000
	ns := newNetns(b)
	all := seqAddr4(n+d, 0)
	var s strings.Builder
	fmt.Fprintf(&s, "create live hash:ip family inet hashsize %d maxelem %d\n", hashSize(n), 2*n)
	for _, a := range all[:n] {
		fmt.Fprintf(&s, "add live %s\n", firewall.AddrFrom4(a))
	}
	restore(b, ns, writeTemp(b, s.String()))
	var fwd, back strings.Builder
	for k := range d {
		fmt.Fprintf(&fwd, "del live %s\n", firewall.AddrFrom4(all[k]))
		fmt.Fprintf(&back, "del live %s\n", firewall.AddrFrom4(all[n+k]))
	}
	for k := range d {
		fmt.Fprintf(&fwd, "add live %s\n", firewall.AddrFrom4(all[n+k]))
		fmt.Fprintf(&back, "add live %s\n", firewall.AddrFrom4(all[k]))
	}
	files := []string{writeTemp(b, fwd.String()), writeTemp(b, back.String())}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		restore(b, ns, files[i%2])
		i++
	}
	b.StopTimer()
	checkCount(b, ns, "live", n)
}

func restore(b *testing.B, ns *fwtest.Netns, file string) {
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "ipset", "restore")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ipset restore: %v: %s", err, out)
	}
}

func writeTemp(b *testing.B, s string) string {
	p := filepath.Join(b.TempDir(), "restore.txt")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

func checkCount(t testing.TB, ns *fwtest.Netns, set string, n int) {
	t.Helper()
	if got := headerInt(t, header(t, ns, set), "Number of entries"); got != n {
		t.Fatalf("set %s holds %d elements, want %d", set, got, n)
	}
}
