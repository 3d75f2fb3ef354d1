package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is the path of this module; Forbid's names are relative to it.
const Module = "github.com/dynfw/sentinel/"

// Deps lists what pkg (a path relative to the module, such as
// "internal/live") links, as `go list -deps` prints it. Without the go
// command the test is skipped (failed in strict mode).
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		Skip(t, "needs the go command on PATH to list the import graph")
	}
	out, err := exec.Command(goTool, "list", "-deps", Module+pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// Forbid fails the test for every package in pkg's dependencies that is
// one of forbidden or below one of them. A name with a dot in its first
// element is a full import path; any other one ("internal/client") is
// relative to the module, and "net/http" style names of the standard
// library are matched as they are. It returns pkg's dependencies.
func Forbid(t testing.TB, pkg string, forbidden ...string) []string {
	t.Helper()
	deps := Deps(t, pkg)
	for _, bad := range forbidden {
		full := bad
		if strings.HasPrefix(bad, "internal/") || strings.HasPrefix(bad, "cmd/") {
			full = Module + bad
		}
		for _, d := range deps {
			if d == full || strings.HasPrefix(d, full+"/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
	return deps
}
