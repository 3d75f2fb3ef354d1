//go:build unix

package exec

import (
	"os"
	osexec "os/exec"
	"syscall"
)

// setProcessGroup puts the command in a process group of its own: killing
// the group also ends the children of a shell script, which would
// otherwise live on holding its pipes, and a Ctrl-C on the client's
// terminal reaches only the client, which then ends the command in order.
func setProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcess sends SIGKILL to the process's group.
func killProcess(p *os.Process) {
	if syscall.Kill(-p.Pid, syscall.SIGKILL) != nil {
		p.Kill()
	}
}
