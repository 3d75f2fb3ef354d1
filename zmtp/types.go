package zmtp

import "fmt"

// SocketType is the ZeroMQ role of a Socket.
type SocketType int

// The socket types this package implements.
const (
	PUB SocketType = iota + 1
	XPUB
	SUB
	PUSH
	PULL
)

func (t SocketType) String() string {
	switch t {
	case PUB:
		return "PUB"
	case XPUB:
		return "XPUB"
	case SUB:
		return "SUB"
	case PUSH:
		return "PUSH"
	case PULL:
		return "PULL"
	}
	return fmt.Sprintf("SocketType(%d)", int(t))
}

// compatible reports whether a peer announcing Socket-Type peer may talk to
// a local socket of type t (ZMTP 3.1 §2.5; XSUB peers are accepted by
// publishers because libzmq proxies use them).
func (t SocketType) compatible(peer string) bool {
	switch t {
	case PUB, XPUB:
		return peer == "SUB" || peer == "XSUB"
	case SUB:
		return peer == "PUB" || peer == "XPUB"
	case PUSH:
		return peer == "PULL"
	case PULL:
		return peer == "PUSH"
	}
	return false
}
