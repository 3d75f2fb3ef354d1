package ipset

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall"
)

// rssEnv names the namespace a child process of TestPeakRSS works in.
const rssEnv = "DYNFW_IPSET_RSS_NETNS"

// maxRSS is the budget of the whole client holding a million addresses.
const maxRSS = 48 << 20

// TestPeakRSS loads a million IPv4 addresses in a child process (this test
// binary run again) and reads the child's peak resident set size, VmHWM,
// which covers everything: the caller's list (4 MB as firewall.Elements),
// the send buffer, the Go runtime and the test binary itself.
func TestPeakRSS(t *testing.T) {
	if ns := os.Getenv(rssEnv); ns != "" {
		rssChild(t, ns)
		return
	}
	if raceEnabled {
		t.Skip("memory figures mean nothing under the race detector")
	}
	if testing.Short() {
		t.Skip("loads a million addresses")
	}
	ns := newNetns(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSS$", "-test.v")
	cmd.Env = append(os.Environ(), rssEnv+"="+ns.Name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`VmHWM:\s*(\d+) kB`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("child printed no VmHWM:\n%s", out)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	t.Logf("peak RSS loading 1M IPv4 addresses (Replace) and applying 1,000 deltas: %.1f MB", float64(kb)/1024)
	if kb*1024 > maxRSS {
		t.Errorf("peak RSS %d kB, budget %d kB", kb, maxRSS/1024)
	}
	checkCount(t, ns, DefaultName, 1_000_000)
}

func rssChild(t *testing.T, nsName string) {
	f, err := os.Open("/run/netns/" + nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	b, err := New(ctx, Config{NetNS: int(f.Fd()), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	all := seqAddr4(1_000_000+1000, 0)
	if err := b.Replace(ctx, &firewall.Elements{Addr4: all[:1_000_000]}); err != nil {
		t.Fatal(err)
	}
	add := &firewall.Elements{Addr4: all[1_000_000:]}
	del := &firewall.Elements{Addr4: all[:1000]}
	if err := b.Apply(ctx, add, del); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, del, add); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Print(line)
		}
	}
}
