package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// StallProxy forwards one TCP connection to a target and can stop reading
// what the target sends, as a peer with a zero TCP window does, while still
// forwarding what the client sends (heartbeats). It lets a test stall a real
// client (a zmtp SUB socket) in front of a real server. It accepts one
// connection only, so that the client's reconnects fail.
type StallProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	paused bool
	wake   chan struct{}
}

// NewStallProxy listens on a loopback port and forwards to target
// (host:port) once a client connects. The test's cleanup stops it.
func NewStallProxy(t testing.TB, target string) *StallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &StallProxy{ln: ln, wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); px.Resume(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		down, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer down.Close()
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(up, down); up.Close() }()
		buf := make([]byte, 64<<10)
		for {
			px.mu.Lock()
			for px.paused {
				px.mu.Unlock()
				<-px.wake
				px.mu.Lock()
			}
			px.mu.Unlock()
			n, err := up.Read(buf)
			if n > 0 {
				if _, werr := down.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				down.Close()
				return
			}
		}
	}()
	return px
}

// Addr returns the endpoint clients connect to, as tcp://host:port.
func (px *StallProxy) Addr() string { return "tcp://" + px.ln.Addr().String() }

// Pause stops reading from the target: its writes stall once the socket
// buffers are full.
func (px *StallProxy) Pause() {
	px.mu.Lock()
	px.paused = true
	px.mu.Unlock()
}

// Resume reads from the target again.
func (px *StallProxy) Resume() {
	px.mu.Lock()
	px.paused = false
	px.mu.Unlock()
	select {
	case px.wake <- struct{}{}:
	default:
	}
}
