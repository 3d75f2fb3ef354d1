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
// counted, and never delays the others. A publisher whose messages are a
// state and its changes sends the changes with SendUpdate and the whole state
// with SendResync: a peer that missed an update gets no further update until
// the next resync point, which replaces whatever is still queued for it.
//
// Every peer has a budget: a send queue (Options.SendQueueLen and
// SendQueueBytes), a write timeout that cuts off a peer which accepts no data
// (Options.WriteTimeout), heartbeats, and limits on the connections a
// listener accepts and on the handshakes in progress (Options.MaxPeers and
// MaxHandshakes). Every refused connection, failed handshake and
// disconnection carries a Reason, counted in Stats.
//
// Limits are checked before memory is allocated: every frame header is
// compared with the configured maximum message size, and large frames are read
// in chunks, so a peer that announces a large frame and then stalls cannot make
// the process allocate more than it actually sent. A malformed or oversized
// frame closes only that connection, with the reason reported as an Event.
// Error texts and logs never quote what a peer typed (command names,
// metadata, socket types); PeerError.Reason, the text of an ERROR command, is
// the exception, kept for the client side.
package zmtp
