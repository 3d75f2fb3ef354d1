package zmtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// part is one message part or command after the security layer.
type part struct {
	more, cmd bool
	body      []byte
}

// codec is the security layer after the handshake: NULL passes frames
// through, CURVE boxes each part into a MESSAGE.
type codec interface {
	overhead() int
	writePart(w *bufio.Writer, more, cmd bool, body []byte) error
	readPart(fr *frameReader) (part, error)
}

// handshakeMaxFrame bounds frames before the peer is authenticated.
const handshakeMaxFrame = 64 << 10

// conn is one connection during and after the handshake.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	fr       frameReader
	codec    codec
	peerG    greeting
	peerMeta metadata
	peerKey  [32]byte // CURVE: the other side's long-term public key
	peerType string
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	c.fr = frameReader{r: c.br, max: handshakeMaxFrame}
	return c
}

// handshakeConfig is what a connection needs to know for its handshake.
type handshakeConfig struct {
	typ     SocketType
	curve   *CurveOptions
	maxSize int64
	timeout time.Duration
}

// handshake exchanges greetings and runs the security mechanism. On success
// c.codec is set and the peer's Socket-Type has been checked.
func (c *conn) handshake(cfg *handshakeConfig) (err error) {
	if cfg.timeout > 0 {
		_ = c.nc.SetDeadline(time.Now().Add(cfg.timeout))
		defer c.nc.SetDeadline(time.Time{})
		defer func() {
			var he *HandshakeError
			if isTimeout(err) && errors.As(err, &he) {
				he.Err = fmt.Errorf("%w after %v: %w", ErrHandshakeTimeout, cfg.timeout, he.Err)
			}
		}()
	}
	mech := "NULL"
	asServer := false
	if cfg.curve != nil {
		mech = "CURVE"
		asServer = cfg.curve.Server
	}
	g := greeting{major: 3, minor: 1, mechanism: mech, asServer: asServer}.marshal()
	if _, err := c.bw.Write(g[:]); err != nil {
		return &HandshakeError{Stage: "greeting", Err: err}
	}
	if err := c.bw.Flush(); err != nil {
		return &HandshakeError{Stage: "greeting", Err: err}
	}
	var pg [greetingSize]byte
	if _, err := io.ReadFull(c.br, pg[:]); err != nil {
		return &HandshakeError{Stage: "greeting", Err: err}
	}
	peer, err := parseGreeting(pg[:])
	if err != nil {
		return &HandshakeError{Stage: "greeting", Err: err}
	}
	c.peerG = peer
	if peer.mechanism != mech {
		return &HandshakeError{Stage: "greeting", Err: protoErr("peer uses security mechanism %s, we use %s", knownName(peer.mechanism, "NULL", "PLAIN", "CURVE", "GSSAPI"), mech)}
	}
	md := metadata{{name: "Socket-Type", value: cfg.typ.String()}}
	switch {
	case cfg.curve == nil:
		if err := nullHandshake(c, md); err != nil {
			return err
		}
		c.codec = nullCodec{}
		if err := c.checkPeerType(cfg.typ); err != nil {
			return err
		}
	case cfg.curve.Server:
		// The as-server byte of the peer is not checked: libzmq 4.3
		// always sends 0 there, even on a CURVE server.
		if err := curveServerHandshake(c, cfg.curve, md, cfg.typ); err != nil {
			return err
		}
	default:
		if err := curveClientHandshake(c, cfg.curve, md); err != nil {
			return err
		}
		if err := c.checkPeerType(cfg.typ); err != nil {
			return err
		}
	}
	c.fr.max = uint64(cfg.maxSize) + uint64(c.codec.overhead())
	return nil
}

func (c *conn) checkPeerType(local SocketType) error {
	t, ok := c.peerMeta.get("Socket-Type")
	if !ok {
		return &HandshakeError{Stage: "metadata", Err: protoErr("peer sent no Socket-Type")}
	}
	c.peerType = t
	if !local.compatible(t) {
		if _, isNull := c.codec.(nullCodec); isNull || c.codec == nil {
			_ = c.writeHandshakeCommand(appendCommand(nil, cmdError, []byte{byte(len("Invalid socket type"))}, []byte("Invalid socket type")))
		}
		return &HandshakeError{Stage: "metadata", Err: protoErr("peer socket type %s cannot talk to %s", knownName(t, "PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB", "STREAM"), local)}
	}
	return nil
}

func (c *conn) writeHandshakeCommand(body []byte) error {
	var hdr [9]byte
	if _, err := c.bw.Write(appendFrameHeader(hdr[:0], flagCommand, len(body))); err != nil {
		return err
	}
	if _, err := c.bw.Write(body); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *conn) readHandshakeCommand() (command, error) {
	f, err := c.fr.next(false)
	if err != nil {
		return command{}, err
	}
	if !f.command() {
		return command{}, protoErr("expected a command frame during the handshake")
	}
	return parseCommand(f.body)
}

// knownName returns name if it is one of known, else a placeholder: error
// texts never quote what a peer typed, since they end up in logs.
func knownName(name string, known ...string) string {
	for _, k := range known {
		if name == k {
			return name
		}
	}
	return "(unknown)"
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}
