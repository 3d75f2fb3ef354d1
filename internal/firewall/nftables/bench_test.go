package nftables

// Benchmarks, run as root (each in its own network namespace):
//
//	go test -run '^$' -bench . -benchtime 5x -count 5 ./internal/firewall/nftables/
//
// BenchmarkNftFile times `nft -f` with the same contents in the same run,
// for a side-by-side comparison, and reports nft's peak RSS; TestPeakRSS
// measures ours. Results and the machine are in docs/benchmarks.md.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/fwtest"
)

// randAddrs returns n distinct pseudo-random IPv4 addresses (a full-period
// LCG over 2^32, so no repeats), never in 240.0.0.0/4.
func randAddrs(n int, seed uint32) []uint32 {
	out := make([]uint32, 0, n)
	x := seed
	for len(out) < n {
		x = x*1664525 + 1013904223
		if x>>28 != 0xf {
			out = append(out, x)
		}
	}
	return out
}

var sizes = []struct {
	name string
	n    int
}{{"100k", 100_000}, {"1M", 1_000_000}}

// settle waits for the kernel's deferred freeing of a big set, so that it
// does not run during the next timed operation.
func settle(n int) { time.Sleep(time.Duration(n/500) * time.Millisecond) }

func BenchmarkReplace(b *testing.B) {
	for _, mode := range []string{"own", "setonly"} {
		for _, sz := range sizes {
			lists := [2]*firewall.Elements{{Addr4: randAddrs(sz.n, 1)}, {Addr4: randAddrs(sz.n, 2)}}
			b.Run(fmt.Sprintf("%s/%s/empty", mode, sz.name), func(b *testing.B) {
				be := benchBackend(b, mode)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					if err := be.Replace(ctx, &firewall.Elements{}); err != nil {
						b.Fatal(err)
					}
					settle(sz.n)
					b.StartTimer()
					if err := be.Replace(ctx, lists[0]); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/full", mode, sz.name), func(b *testing.B) {
				be := benchBackend(b, mode)
				if err := be.Replace(ctx, lists[1]); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := be.Replace(ctx, lists[i%2]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func benchBackend(b *testing.B, mode string) *Backend {
	ns := newNS(b)
	cfg := Config{}
	if mode == "setonly" {
		nftScript(b, ns, fw4Script)
		cfg.SetOnly = true
	}
	return open(b, ns, cfg)
}

// BenchmarkApply applies bursts of deltas to a set of a million addresses
// (and, for nets, 20,000 prefixes): half additions, half deletions, back
// and forth so that every operation is a real change.
func BenchmarkApply(b *testing.B) {
	for _, c := range []struct {
		name  string
		burst int
		nets  bool
	}{{"1000-addr", 1000, false}, {"2000-addr", 2000, false}, {"1000-nets", 1000, true}} {
		b.Run(c.name, func(b *testing.B) {
			ns := newNS(b)
			be := open(b, ns, Config{})
			base := &firewall.Elements{Addr4: randAddrs(1_000_000, 1)}
			var x, y firewall.Elements // y is held at the start, x is not
			if c.nets {
				for i := range 20000 {
					// every other /24: prefixes that do not merge
					base.Nets = append(base.Nets, netip.PrefixFrom(netip.AddrFrom4([4]byte{240, byte(i >> 7), byte(i&127) * 2, 0}), 24))
				}
				y.Nets = base.Nets[:c.burst/2]
				for i := range c.burst / 2 {
					x.Nets = append(x.Nets, netip.PrefixFrom(netip.AddrFrom4([4]byte{241, byte(i >> 7), byte(i&127) * 2, 0}), 24))
				}
			} else {
				y.Addr4 = base.Addr4[:c.burst/2]
				for i := range c.burst / 2 {
					x.Addr4 = append(x.Addr4, 0xf1000000+uint32(i))
				}
			}
			if err := be.Replace(ctx, base); err != nil {
				b.Fatal(err)
			}
			settle(1_000_000)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				add, del := &x, &y
				if i%2 == 1 {
					add, del = &y, &x
				}
				if err := be.Apply(ctx, add, del); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkNftFile does what Replace does with the nft tool: one file that
// flushes the set and adds the list, loaded with `nft -f` (one
// transaction), into a plain set (what nft users write) and into a set
// with a size (the kind Replace creates). It reports nft's peak RSS.
func BenchmarkNftFile(b *testing.B) {
	for _, kind := range []string{"plain", "sized"} {
		for _, sz := range sizes {
			dir := b.TempDir()
			var files [2]string
			for i := range files {
				files[i] = filepath.Join(dir, fmt.Sprintf("list%d.nft", i))
				writeNftList(b, files[i], randAddrs(sz.n, uint32(i+1)))
			}
			decl := "table inet bench {\n set addr4 { type ipv4_addr; }\n}\n"
			if kind == "sized" {
				decl = fmt.Sprintf("table inet bench {\n set addr4 { type ipv4_addr; size %d; }\n}\n", capacityFor(sz.n))
			}
			b.Run(fmt.Sprintf("%s/%s/empty", kind, sz.name), func(b *testing.B) {
				ns := newNS(b)
				nftScript(b, ns, decl)
				var rss int64
				for b.Loop() {
					b.StopTimer()
					ns.Run(b, "nft", "flush", "set", "inet", "bench", "addr4")
					settle(sz.n)
					b.StartTimer()
					rss = max(rss, nftFile(b, ns, files[0]))
				}
				b.ReportMetric(float64(rss)/1024, "nft-peak-RSS-MB")
			})
			b.Run(fmt.Sprintf("%s/%s/full", kind, sz.name), func(b *testing.B) {
				ns := newNS(b)
				nftScript(b, ns, decl)
				nftFile(b, ns, files[1])
				var rss int64
				i := 0
				for b.Loop() {
					rss = max(rss, nftFile(b, ns, files[i%2]))
					i++
				}
				b.ReportMetric(float64(rss)/1024, "nft-peak-RSS-MB")
			})
		}
	}
}

func writeNftList(b *testing.B, path string, addrs []uint32) {
	var sb strings.Builder
	sb.WriteString("flush set inet bench addr4\nadd element inet bench addr4 {\n")
	for i, a := range addrs {
		if i > 0 {
			sb.WriteString(",\n")
		}
		sb.WriteString(firewall.AddrFrom4(a).String())
	}
	sb.WriteString("\n}\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

// nftFile runs nft -f in the namespace and returns its peak RSS in KiB.
func nftFile(b *testing.B, ns *fwtest.Netns, file string) int64 {
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("nft -f: %v\n%s", err, out)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}
