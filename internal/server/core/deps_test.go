package core

import (
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestNoTransport: the core knows no transport. It links none of the
// ingest paths (they parse at their edge and hand it events) and no HTTP
// (the API and the control socket are the process shell's).
func TestNoTransport(t *testing.T) {
	deps := testenv.Deps(t, "internal/server/core")
	for _, dep := range deps {
		if dep == "net/http" || dep == testenv.Module+"internal/server" || dep == testenv.Module+"internal/control" {
			t.Errorf("the core depends on %s", dep)
		}
	}
	testenv.Forbid(t, "internal/server/core", "internal/ingest")
}
