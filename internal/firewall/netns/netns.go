// Package netns runs code inside another network namespace. The firewall
// backends use it to open their netlink sockets and start iptables there
// (their "in a namespace" option, which the tests use), and fwtest uses it
// to run tools and sockets inside a test's private namespace.
//
// A socket belongs to the namespace it was created in, and a process to
// the one it was started in, for their whole life; so only their creation
// needs to happen inside, and the rest of the program keeps running in its
// own namespace.
package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on an OS thread that has joined the network namespace open at
// fd, or here in the current namespace if fd is 0. Sockets created and
// processes started by f belong to that namespace.
//
// The thread switches back before it is released to the scheduler. If it
// cannot, it stays locked and dies with its goroutine, so no other
// goroutine ever runs in the wrong namespace.
func Do(fd int, f func() error) error {
	if fd == 0 {
		return f()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter network namespace (fd %d): %w", fd, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it is discarded when this
			// goroutine returns.
			done <- fmt.Errorf("leave network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
