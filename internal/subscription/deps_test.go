package subscription

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the subscription knows the protocol and its transport,
// not what its users do with it (firewalls, policies, pages).
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to list the package's dependencies:", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/dynfw/sentinel/"
	for _, d := range strings.Fields(string(out)) {
		for _, bad := range []string{"internal/firewall", "internal/policy", "internal/client", "internal/live", "internal/view", "internal/server"} {
			if d == mod+bad || strings.HasPrefix(d, mod+bad+"/") {
				t.Errorf("internal/subscription depends on %s", d)
			}
		}
	}
}
