package zmtp

import (
	"bufio"
)

// nullCodec frames message parts as plain ZMTP frames (NULL mechanism).
type nullCodec struct{}

func (nullCodec) overhead() int { return 0 }

func (nullCodec) writePart(w *bufio.Writer, more, cmd bool, body []byte) error {
	var flags byte
	if more {
		flags |= flagMore
	}
	if cmd {
		flags |= flagCommand
	}
	if err := writeFrameHeader(w, flags, len(body)); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

func (nullCodec) readPart(fr *frameReader) (part, error) {
	f, err := fr.next(false)
	if err != nil {
		return part{}, err
	}
	return part{more: f.more(), cmd: f.command(), body: f.body}, nil
}

// nullHandshake exchanges READY commands carrying our metadata.
func nullHandshake(c *conn, md metadata) error {
	body := appendCommand(nil, cmdReady, appendMetadata(nil, md))
	if err := c.writeHandshakeCommand(body); err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	cmd, err := c.readHandshakeCommand()
	if err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	switch cmd.name {
	case cmdReady:
	case cmdError:
		return &HandshakeError{Stage: "READY", Err: errorCommand(cmd.data)}
	default:
		return &HandshakeError{Stage: "READY", Err: protoErr("expected READY, got another command")}
	}
	peerMD, err := parseMetadata(cmd.data)
	if err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	c.peerMeta = peerMD
	return nil
}

// errorCommand decodes the body of an ERROR command.
func errorCommand(data []byte) error {
	if len(data) < 1 || int(data[0]) > len(data)-1 {
		return &PeerError{Reason: string(data)}
	}
	return &PeerError{Reason: string(data[1 : 1+int(data[0])])}
}
