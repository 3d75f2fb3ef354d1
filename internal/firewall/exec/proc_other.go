//go:build !unix

package exec

import (
	"os"
	osexec "os/exec"
)

// setProcessGroup does nothing where process groups do not exist.
func setProcessGroup(*osexec.Cmd) {}

// killProcess kills the process.
func killProcess(p *os.Process) { p.Kill() }
