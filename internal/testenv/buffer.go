package testenv

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that may be written and read at the same time: a
// logger's or a child process's output that the test reads while it is
// still being written. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
