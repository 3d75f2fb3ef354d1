package subscription

import (
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestDependencies: the subscription knows the protocol and its transport,
// not what its users do with it (firewalls, policies, pages).
func TestDependencies(t *testing.T) {
	testenv.Forbid(t, "internal/subscription", "internal/firewall", "internal/policy", "internal/client", "internal/live", "internal/view", "internal/server")
}
