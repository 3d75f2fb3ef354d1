package live

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the live page follows DynFW through
// internal/subscription alone; the web side links neither the router
// client nor its firewall backends and address policy.
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
	deps := strings.Fields(string(out))
	for _, bad := range []string{"internal/firewall", "internal/policy", "internal/client"} {
		for _, d := range deps {
			if d == mod+bad || strings.HasPrefix(d, mod+bad+"/") {
				t.Errorf("internal/live depends on %s", d)
			}
		}
	}
	if !contains(deps, mod+"internal/subscription") {
		t.Error("internal/live does not follow DynFW through internal/subscription")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
