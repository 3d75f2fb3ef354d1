package live

import (
	"slices"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestDependencies: the live page follows DynFW through
// internal/subscription alone; the web side links neither the router
// client nor its firewall backends and address policy.
func TestDependencies(t *testing.T) {
	deps := testenv.Forbid(t, "internal/live", "internal/firewall", "internal/policy", "internal/client")
	if !slices.Contains(deps, testenv.Module+"internal/subscription") {
		t.Error("internal/live does not follow DynFW through internal/subscription")
	}
}
