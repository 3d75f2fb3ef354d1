package zmtp

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by operations on a closed Socket.
	ErrClosed = errors.New("zmtp: socket closed")
	// ErrProtocol wraps every violation of ZMTP or CurveZMQ by a peer.
	ErrProtocol = errors.New("zmtp: protocol error")
	// ErrFrameTooLarge means a peer announced a frame or message larger
	// than Options.MaxMessageSize.
	ErrFrameTooLarge = errors.New("zmtp: message too large")
	// ErrHeartbeatTimeout means a peer stayed silent past the heartbeat
	// timeout (or past the TTL it announced in its own PINGs).
	ErrHeartbeatTimeout = errors.New("zmtp: heartbeat timeout")
	// ErrNotSupported is returned by an operation the socket type lacks,
	// such as Recv on a PUB socket.
	ErrNotSupported = errors.New("zmtp: operation not supported by this socket type")
	// ErrWriteTimeout means a peer accepted no data for
	// Options.WriteTimeout.
	ErrWriteTimeout = errors.New("zmtp: write timeout")
	// ErrHandshakeTimeout means the greeting and security handshake did
	// not complete within Options.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("zmtp: handshake timeout")
	// ErrTooManyFrames means a peer sent a message of more than
	// Options.MaxFrames frames. It is a protocol error too.
	ErrTooManyFrames = errors.New("zmtp: too many frames")
	// ErrPeerLimit and ErrHandshakeLimit are the errors of EventRefused:
	// Options.MaxPeers connections or Options.MaxHandshakes handshakes
	// were open when a connection was accepted.
	ErrPeerLimit      = errors.New("zmtp: peer limit reached")
	ErrHandshakeLimit = errors.New("zmtp: handshake limit reached")
	// ErrTooManySubscriptions means a peer of a PUB or XPUB socket asked
	// for more than Options.MaxSubscriptions subscriptions.
	ErrTooManySubscriptions = errors.New("zmtp: too many subscriptions")
)

// PeerError is an ERROR command received from the peer. During a CURVE
// handshake libzmq sends the ZAP status code ("400") as the reason when it
// refuses the client's key.
type PeerError struct {
	Reason string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("zmtp: peer sent ERROR %q", e.Reason)
}

// HandshakeError reports why the greeting or the security handshake with a
// peer failed.
type HandshakeError struct {
	// Stage names the step that failed: "greeting", "HELLO", "WELCOME",
	// "INITIATE", "READY" or "metadata".
	Stage string
	Err   error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("zmtp: handshake failed at %s: %v", e.Stage, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}
