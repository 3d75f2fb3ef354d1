// Package zmtp is a small, pure-Go implementation of ZMTP 3.1, the ZeroMQ
// wire protocol, with the NULL and CURVE (CurveZMQ, RFC 26) security
// mechanisms. It is limited to what DynFW and Sentinel need: the socket roles
// PUB, XPUB, SUB, PUSH and PULL over TCP (IPv4, IPv6, host names) and Unix
// domain sockets (ipc://). It interoperates with libzmq 4.x in both directions
// and accepts ZMTP 3.0 peers.
//
// Data path: a Socket owns listeners and dialers. Every TCP connection runs the
// greeting and the security handshake (handshake.go, null.go, curve.go), then
// becomes a peer with its own reader goroutine, writer goroutine and bounded
// send queue. The reader turns wire frames into message parts (frame.go,
// codec), handles commands (PING, PONG, SUBSCRIBE, CANCEL, ERROR) itself and
// hands complete messages to the socket role: a SUB or PULL socket queues them
// for Recv, a PUB or XPUB socket reads subscriptions from them. Send on a PUB
// socket puts a message on the queue of every peer whose subscription matches
// its first frame; a peer whose queue is full misses the message, which is
// counted, and never delays the others.
//
// Limits are checked before memory is allocated: every frame header is
// compared with the configured maximum message size, and large frames are read
// in chunks, so a peer that announces a large frame and then stalls cannot make
// the process allocate more than it actually sent. A malformed or oversized
// frame closes only that connection, with the reason reported as an Event.
package zmtp
