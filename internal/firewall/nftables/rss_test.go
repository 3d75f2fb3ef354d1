package nftables

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/firewall"
)

// rssBudget is what the whole client may use while holding a million
// addresses (the caller's own state included).
const rssBudget = 48 << 20

// TestPeakRSS loads a million IPv4 addresses with Replace, then a burst of
// deltas, in a child process (a fresh test binary, so that nothing else
// this test run did counts), and checks its peak RSS (VmHWM). The child
// holds the list as the caller would, as 4 MB of Addr4.
func TestPeakRSS(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million addresses: not with -short or -race")
	}
	ns := newNS(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), rssChildEnv+"=/run/netns/"+ns.Name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var hwm, after int64
	for _, l := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "rss: hwm=%d after=%d", &hwm, &after); err == nil {
			break
		}
	}
	if hwm == 0 {
		t.Fatalf("no measurement from the child:\n%s", out)
	}
	t.Logf("1M addresses: peak RSS %.1f MB, RSS afterwards %.1f MB", float64(hwm)/(1<<20), float64(after)/(1<<20))
	if hwm > rssBudget {
		t.Errorf("peak RSS %d bytes, budget %d", hwm, rssBudget)
	}
}

// rssChildEnv makes the test binary run rssChild instead of the tests.
const rssChildEnv = "DYNFW_NFT_RSS_NETNS"

func TestMain(m *testing.M) {
	if path := os.Getenv(rssChildEnv); path != "" {
		if err := rssChild(path); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rssChild does what a client does with a big list, in the namespace at
// path, and prints its peak and final RSS.
func rssChild(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx := context.Background()
	b, err := New(ctx, Config{NetNS: int(f.Fd())})
	if err != nil {
		return err
	}
	defer b.Close(false)
	e := &firewall.Elements{Addr4: randAddrs(1_000_000, 1)}
	if err := b.Replace(ctx, e); err != nil {
		return err
	}
	// A second full list while the first is in place, then deltas.
	e2 := &firewall.Elements{Addr4: randAddrs(1_000_000, 2)}
	if err := b.Replace(ctx, e2); err != nil {
		return err
	}
	e = nil
	add := &firewall.Elements{Addr4: randAddrs(500, 3)}
	del := &firewall.Elements{Addr4: e2.Addr4[:500]}
	if err := b.Apply(ctx, add, del); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Printf("rss: hwm=%d after=%d\n", status("VmHWM"), status("VmRSS"))
	runtime.KeepAlive(e2)
	return nil
}

// status reads a memory figure from /proc/self/status, in bytes.
func status(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}
