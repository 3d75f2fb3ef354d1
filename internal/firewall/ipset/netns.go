package ipset

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetNS runs f on an OS thread that has joined the network namespace
// open at fd (0: run f here, in the current namespace). Sockets created and
// processes started by f belong to that namespace for their whole life, so
// only their creation needs the switch.
//
// The thread switches back before it is released to the scheduler. If it
// cannot, it stays locked and dies with its goroutine, so no other
// goroutine ever runs in the wrong namespace.
func inNetNS(fd int, f func() error) error {
	if fd == 0 {
		return f()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("ipset: open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("ipset: enter network namespace (fd %d): %w", fd, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it is discarded when this
			// goroutine returns.
			done <- fmt.Errorf("ipset: leave network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
