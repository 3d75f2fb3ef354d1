// Package fwtest gives firewall backend tests a private network namespace,
// so that they change real kernel tables and sets without touching the
// machine's own firewall.
package fwtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dynfw/sentinel/internal/firewall/netns"
	"github.com/dynfw/sentinel/internal/testenv"
)

var seq atomic.Int64

// Netns is a named network namespace that exists for one test.
type Netns struct {
	// Name is the name under /run/netns, usable with `ip netns exec`.
	Name string
	// File is an open handle on the namespace; its Fd() can be passed to
	// the backends (their NetNS option) so that they act inside it.
	File *os.File
}

// NewNetns creates a namespace, or skips the test (fails when strict) if
// the process is not root or lacks the tools. It is removed at cleanup.
func NewNetns(t testing.TB, tools ...string) *Netns {
	t.Helper()
	testenv.Root(t)
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skip(t, fmt.Sprintf("needs %s (apt-get install iproute2 nftables ipset iptables)", tool))
		}
	}
	name := fmt.Sprintf("dynfwtest-%d-%d", os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		testenv.Skip(t, fmt.Sprintf("cannot create a network namespace: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	n := &Netns{Name: name, File: f}
	// A new namespace starts with its loopback down; local peers need it.
	if out, err := n.Try("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("loopback up in %s: %v: %s", name, err, out)
	}
	return n
}

// Do runs f on a thread inside the namespace (see netns.Do): sockets it
// creates and processes it starts belong to the namespace.
func (n *Netns) Do(f func() error) error { return netns.Do(int(n.File.Fd()), f) }

// Run runs a command inside the namespace and returns its output; a
// failure fails the test.
func (n *Netns) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.Try(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a command inside the namespace and returns its combined
// output and error.
func (n *Netns) Try(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := n.Do(cmd.Start); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}
