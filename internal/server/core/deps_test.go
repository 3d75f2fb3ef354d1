package core

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// TestNoTransport: the core knows no transport. It links none of the
// ingest paths (they parse at their edge and hand it events) and no HTTP
// (the API and the control socket are the process shell's).
func TestNoTransport(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(t, "needs the go command on PATH to list the import graph")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/dynfw/sentinel/internal/server/core").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/dynfw/sentinel/internal/ingest") || dep == "net/http" ||
			dep == "github.com/dynfw/sentinel/internal/server" || dep == "github.com/dynfw/sentinel/internal/control" {
			t.Errorf("the core depends on %s", dep)
		}
	}
}
