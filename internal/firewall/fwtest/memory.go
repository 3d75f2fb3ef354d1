package fwtest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/dynfw/sentinel/internal/firewall"
)

// Memory is a firewall.Backend that keeps its elements in memory and
// enforces the Backend contract: adding a present element or deleting an
// absent one is an error, as it would be in a kernel transaction. Tests use it
// to check what a client asks of a backend.
type Memory struct {
	mu       sync.Mutex
	elems    map[netip.Prefix]bool
	replaces int
	applies  int
	closed   bool
	kept     bool
	fail     error
	// Changed, if set, receives a value after every successful call.
	Changed chan struct{}
}

// NewMemory returns an empty Memory backend.
func NewMemory() *Memory {
	return &Memory{elems: map[netip.Prefix]bool{}, Changed: make(chan struct{}, 1000)}
}

// Name implements firewall.Backend.
func (m *Memory) Name() string { return "memory" }

func (m *Memory) changed() {
	select {
	case m.Changed <- struct{}{}:
	default:
	}
}

// Replace implements firewall.Backend.
func (m *Memory) Replace(_ context.Context, e *firewall.Elements) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.elems = map[netip.Prefix]bool{}
	for _, p := range e.Prefixes() {
		m.elems[p] = true
	}
	m.replaces++
	m.changed()
	return nil
}

// Apply implements firewall.Backend; it is atomic: on a contract violation
// nothing changes.
func (m *Memory) Apply(_ context.Context, add, del *firewall.Elements) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	next := make(map[netip.Prefix]bool, len(m.elems))
	for p := range m.elems {
		next[p] = true
	}
	for _, p := range del.Prefixes() {
		if !next[p] {
			return fmt.Errorf("memory backend: delete of absent element %v", p)
		}
		delete(next, p)
	}
	for _, p := range add.Prefixes() {
		if next[p] {
			return fmt.Errorf("memory backend: add of present element %v", p)
		}
		next[p] = true
	}
	m.elems = next
	m.applies++
	m.changed()
	return nil
}

// Close implements firewall.Backend.
func (m *Memory) Close(keep bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed, m.kept = true, keep
	if !keep {
		m.elems = map[netip.Prefix]bool{}
	}
	return nil
}

// Contents returns the elements, sorted as strings.
func (m *Memory) Contents() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.elems))
	for p := range m.elems {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// SetFail sets or clears the error the next calls return.
func (m *Memory) SetFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// Calls returns how many Replace and Apply calls succeeded.
func (m *Memory) Calls() (replaces, applies int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replaces, m.applies
}

// Closed reports whether Close was called, and with which keep.
func (m *Memory) Closed() (closed, kept bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed, m.kept
}
