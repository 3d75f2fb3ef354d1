package scorecard

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestImportGraph: the explanation is plain data so that its readers do
// not link the scorer: Sentinel View (the web side) and the admin API's
// client and printers must not depend on package scoring.
func TestImportGraph(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(t, "needs the go command on PATH to list the import graph")
	}
	const scoring = "github.com/dynfw/sentinel/internal/scoring"
	for _, pkg := range []string{"internal/scorecard", "internal/view", "internal/control"} {
		out, err := exec.Command(goTool, "list", "-deps", "github.com/dynfw/sentinel/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == scoring {
				t.Errorf("%s depends on %s", pkg, scoring)
			}
		}
	}
}
