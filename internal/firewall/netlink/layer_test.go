package netlink

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneLayer keeps the firewall backends and fwtest on this package
// and netns: no other code under internal/firewall opens a netlink
// socket, reads netlink answers or switches network namespaces by itself.
// (Tests may still build answers by hand and start peer tools with
// `ip netns exec`.)
func TestOneLayer(t *testing.T) {
	own := map[string][]string{
		"netlink": {"unix.AF_NETLINK", "unix.Recvmsg(", "unix.Sendto("},
		"netns":   {"unix.Setns(", "thread-self/ns/net", `"netns", "exec"`},
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		pkg := filepath.Base(filepath.Dir(path))
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for owner, marks := range own {
			if pkg == owner {
				continue
			}
			for _, mark := range marks {
				if strings.Contains(string(src), mark) {
					t.Errorf("%s uses %s: that belongs to internal/firewall/%s", path, mark, owner)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
