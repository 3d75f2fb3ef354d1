package scorecard

import (
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestImportGraph: the explanation is plain data so that its readers do
// not link the scorer: Sentinel View (the web side) and the admin API's
// client and printers must not depend on package scoring.
func TestImportGraph(t *testing.T) {
	for _, pkg := range []string{"internal/scorecard", "internal/view", "internal/control"} {
		testenv.Forbid(t, pkg, "internal/scoring")
	}
}
