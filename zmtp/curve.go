package zmtp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// CurveOptions configures the CURVE mechanism (CurveZMQ, RFC 26).
type CurveOptions struct {
	// Server makes this socket the CURVE server of its connections (the
	// DynFW publisher is one); otherwise it is a CURVE client.
	Server bool
	// PublicKey and SecretKey are this socket's long-term key pair. A
	// client may leave both zero: a fresh pair is then generated.
	PublicKey, SecretKey [32]byte
	// ServerKey is the server's long-term public key (clients only).
	ServerKey [32]byte
	// Authorize, on a server, decides whether a client's long-term public
	// key may connect; nil accepts every client. A refused client gets an
	// ERROR command with ZAP status "400", as libzmq sends it.
	Authorize func(clientKey [32]byte, remote net.Addr) error
}

// AllowKeys returns an Authorize function that accepts only the given keys.
func AllowKeys(keys ...[32]byte) func([32]byte, net.Addr) error {
	set := make(map[[32]byte]struct{}, len(keys))
	for _, k := range keys {
		set[k] = struct{}{}
	}
	return func(k [32]byte, _ net.Addr) error {
		if _, ok := set[k]; !ok {
			return errors.New("client key not in the allow-list")
		}
		return nil
	}
}

// ErrAuthRefused is wrapped by a HandshakeError when the server refused the
// client's key (a ZAP status code in an ERROR command).
var ErrAuthRefused = errors.New("zmtp: server refused the client key")

// Nonce prefixes (RFC 26).
const (
	prefixHello      = "CurveZMQHELLO---"
	prefixWelcome    = "WELCOME-"
	prefixCookie     = "COOKIE--"
	prefixInitiate   = "CurveZMQINITIATE"
	prefixVouch      = "VOUCH---"
	prefixReady      = "CurveZMQREADY---"
	prefixMessageC   = "CurveZMQMESSAGEC"
	prefixMessageS   = "CurveZMQMESSAGES"
	helloDataSize    = 2 + 72 + 32 + 8 + 80 // after the command name
	welcomeDataSize  = 16 + 144
	cookieSize       = 16 + 80
	initiateMinData  = cookieSize + 8 + box.Overhead + 32 + 96
	messageOverhead  = 1 + len(cmdMessage) + 8 + box.Overhead + 1
	streamSealCutoff = 256 << 10
)

func shortNonce(prefix string, n uint64) *[24]byte {
	nonce := new([24]byte)
	copy(nonce[:], prefix)
	binary.BigEndian.PutUint64(nonce[16:], n)
	return nonce
}

// setShortNonce fills a caller-owned nonce, avoiding an allocation per
// message on the hot path.
func setShortNonce(nonce *[24]byte, prefix string, n uint64) {
	copy(nonce[:], prefix)
	binary.BigEndian.PutUint64(nonce[16:], n)
}

func longNonce(prefix string, n []byte) *[24]byte {
	var nonce [24]byte
	copy(nonce[:], prefix)
	copy(nonce[8:], n)
	return &nonce
}

// Flags inside a MESSAGE box. They are libzmq's message flags, not the
// frame flags: COMMAND is 0x02 here, 0x04 in a frame header.
const (
	innerMore    = 0x01
	innerCommand = 0x02
)

// curveCodec encrypts every message part and command into a MESSAGE box
// after the handshake. libzmq sends MESSAGE as a data frame (flags 0x00 or
// LONG) and puts MORE and COMMAND into the flags byte inside the box.
type curveCodec struct {
	key        [32]byte // precomputed box key
	sendPrefix string
	recvPrefix string
	sendNonce  uint64
	recvNonce  uint64 // last nonce received; the next must be larger
	buf        []byte // seal scratch, kept small

	sendNonceBuf, recvNonceBuf [24]byte
	hdr                        [9 + 8 + 8]byte
}

func (c *curveCodec) overhead() int { return messageOverhead }

func (c *curveCodec) writePart(w *bufio.Writer, more, cmd bool, body []byte) error {
	if c.sendNonce == ^uint64(0) {
		return protoErr("CURVE nonce space exhausted")
	}
	c.sendNonce++
	var inner byte
	if more {
		inner |= innerMore
	}
	if cmd {
		inner |= innerCommand
	}
	nonce := &c.sendNonceBuf
	setShortNonce(nonce, c.sendPrefix, c.sendNonce)
	h := appendFrameHeader(c.hdr[:0], 0, len(cmdMessage)+1+8+box.Overhead+1+len(body))
	h = appendCommand(h, cmdMessage)
	h = append(h, nonce[16:]...)
	if len(body) >= streamSealCutoff {
		return streamSeal(w, h, inner, body, nonce, &c.key)
	}
	pt := append(c.buf[:0], inner)
	pt = append(pt, body...)
	out := box.SealAfterPrecomputation(pt[len(pt):], pt, nonce, &c.key)
	if cap(pt) <= 64<<10 {
		c.buf = pt[:0]
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(out)
	return err
}

func (c *curveCodec) readPart(fr *frameReader) (part, error) {
	_, size, err := fr.header()
	if err != nil {
		return part{}, err
	}
	if size >= streamSealCutoff {
		return c.streamOpen(fr, int(size))
	}
	b, err := fr.readBody(int(size), true)
	if err != nil {
		return part{}, unexpectedEOF(err)
	}
	if !isCommand(b, cmdMessage) {
		if isCommand(b, cmdError) {
			return part{}, errorCommand(b[1+len(cmdError):])
		}
		return part{}, protoErr("expected a CURVE MESSAGE, got another command")
	}
	b = b[1+len(cmdMessage):]
	if len(b) < 8+box.Overhead+1 {
		return part{}, protoErr("CURVE MESSAGE of %d bytes is too short", len(b))
	}
	n := binary.BigEndian.Uint64(b[:8])
	if n <= c.recvNonce {
		return part{}, protoErr("CURVE MESSAGE nonce %d not above %d", n, c.recvNonce)
	}
	setShortNonce(&c.recvNonceBuf, c.recvPrefix, n)
	pt, ok := box.OpenAfterPrecomputation(make([]byte, 0, len(b)-8-box.Overhead), b[8:], &c.recvNonceBuf, &c.key)
	if !ok {
		return part{}, protoErr("CURVE MESSAGE does not decrypt")
	}
	c.recvNonce = n
	inner := pt[0]
	if inner&^(innerMore|innerCommand) != 0 {
		return part{}, protoErr("invalid flags 0x%02x inside MESSAGE", inner)
	}
	return part{more: inner&innerMore != 0, cmd: inner&innerCommand != 0, body: pt[1:]}, nil
}

var zero64 [64]byte

// curveClientHandshake runs HELLO, WELCOME, INITIATE and READY as the client.
func curveClientHandshake(c *conn, o *CurveOptions, md metadata) error {
	cpub, csec, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return &HandshakeError{Stage: "HELLO", Err: err}
	}
	var nonce uint64 = 1

	// HELLO: C' and a box of 64 zero bytes from C' to S, padded so the
	// server's WELCOME is never larger than the HELLO (anti-amplification).
	hello := make([]byte, 0, 1+len(cmdHello)+helloDataSize)
	hello = appendCommand(hello, cmdHello, []byte{1, 0}, make([]byte, 72), cpub[:])
	hello = binary.BigEndian.AppendUint64(hello, nonce)
	hello = box.Seal(hello, zero64[:], shortNonce(prefixHello, nonce), &o.ServerKey, csec)
	nonce++
	if err := c.writeHandshakeCommand(hello); err != nil {
		return &HandshakeError{Stage: "HELLO", Err: err}
	}

	// WELCOME: S' and the cookie, in a box from S to C'.
	cmd, err := c.readHandshakeCommand()
	if err != nil {
		if isEOF(err) {
			err = fmt.Errorf("server closed the connection after HELLO; is the server key right? (%w)", err)
		}
		return &HandshakeError{Stage: "WELCOME", Err: err}
	}
	if cmd.name == cmdHello {
		return &HandshakeError{Stage: "WELCOME", Err: protoErr("peer is a CURVE client too, not a server")}
	}
	if err := expectCommand(cmd, cmdWelcome); err != nil {
		return &HandshakeError{Stage: "WELCOME", Err: err}
	}
	if len(cmd.data) != welcomeDataSize {
		return &HandshakeError{Stage: "WELCOME", Err: protoErr("WELCOME data is %d bytes, want %d", len(cmd.data), welcomeDataSize)}
	}
	wpt, ok := box.Open(nil, cmd.data[16:], longNonce(prefixWelcome, cmd.data[:16]), &o.ServerKey, csec)
	if !ok {
		return &HandshakeError{Stage: "WELCOME", Err: protoErr("WELCOME box does not open: wrong server key")}
	}
	var sprime [32]byte
	copy(sprime[:], wpt[:32])
	cookie := wpt[32:]

	// INITIATE: C, the vouch (C' and S boxed from C to S') and metadata,
	// all boxed from C' to S'.
	vn := make([]byte, 16)
	if _, err := rand.Read(vn); err != nil {
		return &HandshakeError{Stage: "INITIATE", Err: err}
	}
	vouch := box.Seal(nil, append(cpub[:], o.ServerKey[:]...), longNonce(prefixVouch, vn), &sprime, &o.SecretKey)
	pt := append(append(append(o.PublicKey[:], vn...), vouch...), appendMetadata(nil, md)...)
	var shared [32]byte
	box.Precompute(&shared, &sprime, csec)
	init := appendCommand(nil, cmdInitiate, cookie)
	init = binary.BigEndian.AppendUint64(init, nonce)
	init = box.SealAfterPrecomputation(init, pt, shortNonce(prefixInitiate, nonce), &shared)
	if err := c.writeHandshakeCommand(init); err != nil {
		return &HandshakeError{Stage: "INITIATE", Err: err}
	}

	// READY: the server's metadata, boxed from S' to C'.
	cmd, err = c.readHandshakeCommand()
	if err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	if cmd.name == cmdError {
		perr := errorCommand(cmd.data)
		if isZAPStatus(perr.(*PeerError).Reason) {
			return &HandshakeError{Stage: "READY", Err: fmt.Errorf("%w (ZAP status %s)", ErrAuthRefused, perr.(*PeerError).Reason)}
		}
		return &HandshakeError{Stage: "READY", Err: perr}
	}
	if err := expectCommand(cmd, cmdReady); err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	if len(cmd.data) < 8+box.Overhead {
		return &HandshakeError{Stage: "READY", Err: protoErr("READY too short")}
	}
	rn := binary.BigEndian.Uint64(cmd.data[:8])
	mdb, ok := box.OpenAfterPrecomputation(nil, cmd.data[8:], shortNonce(prefixReady, rn), &shared)
	if !ok {
		return &HandshakeError{Stage: "READY", Err: protoErr("READY box does not open")}
	}
	if c.peerMeta, err = parseMetadata(mdb); err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	c.peerKey = o.ServerKey
	c.codec = &curveCodec{key: shared, sendPrefix: prefixMessageC, recvPrefix: prefixMessageS, sendNonce: nonce, recvNonce: rn}
	return nil
}

// curveServerHandshake answers HELLO, checks the cookie and the vouch of
// INITIATE, asks Authorize and sends READY.
func curveServerHandshake(c *conn, o *CurveOptions, md metadata, localType SocketType) error {
	cmd, err := c.readHandshakeCommand()
	if err != nil {
		return &HandshakeError{Stage: "HELLO", Err: err}
	}
	if err := expectCommand(cmd, cmdHello); err != nil {
		return &HandshakeError{Stage: "HELLO", Err: err}
	}
	d := cmd.data
	if len(d) != helloDataSize {
		return &HandshakeError{Stage: "HELLO", Err: protoErr("HELLO data is %d bytes, want %d", len(d), helloDataSize)}
	}
	if d[0] != 1 || d[1] != 0 {
		return &HandshakeError{Stage: "HELLO", Err: protoErr("CurveZMQ version %d.%d, want 1.0", d[0], d[1])}
	}
	var cprime [32]byte
	copy(cprime[:], d[74:106])
	hn := shortNonce(prefixHello, binary.BigEndian.Uint64(d[106:114]))
	sig, ok := box.Open(nil, d[114:], hn, &cprime, &o.SecretKey)
	if !ok || subtle.ConstantTimeCompare(sig, zero64[:]) != 1 {
		// RFC 26: a server must not answer an invalid HELLO.
		return &HandshakeError{Stage: "HELLO", Err: protoErr("HELLO signature box does not open (client uses another server key)")}
	}

	spub, ssec, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return &HandshakeError{Stage: "WELCOME", Err: err}
	}
	var cookieKey [32]byte
	rnd := make([]byte, 32+16+16)
	if _, err := rand.Read(rnd); err != nil {
		return &HandshakeError{Stage: "WELCOME", Err: err}
	}
	copy(cookieKey[:], rnd[:32])
	cookieNonce, welcomeNonce := rnd[32:48], rnd[48:64]
	cookie := append([]byte{}, cookieNonce...)
	cookie = secretbox.Seal(cookie, append(cprime[:], ssec[:]...), longNonce(prefixCookie, cookieNonce), &cookieKey)
	welcome := appendCommand(nil, cmdWelcome, welcomeNonce)
	welcome = box.Seal(welcome, append(spub[:], cookie...), longNonce(prefixWelcome, welcomeNonce), &cprime, &o.SecretKey)
	if err := c.writeHandshakeCommand(welcome); err != nil {
		return &HandshakeError{Stage: "WELCOME", Err: err}
	}

	cmd, err = c.readHandshakeCommand()
	if err != nil {
		return &HandshakeError{Stage: "INITIATE", Err: err}
	}
	if err := expectCommand(cmd, cmdInitiate); err != nil {
		return &HandshakeError{Stage: "INITIATE", Err: err}
	}
	d = cmd.data
	if len(d) < initiateMinData {
		return &HandshakeError{Stage: "INITIATE", Err: protoErr("INITIATE data of %d bytes is too short", len(d))}
	}
	cpt, ok := secretbox.Open(nil, d[16:cookieSize], longNonce(prefixCookie, d[:16]), &cookieKey)
	if !ok || !bytes.Equal(cpt[:32], cprime[:]) || subtle.ConstantTimeCompare(cpt[32:], ssec[:]) != 1 {
		return &HandshakeError{Stage: "INITIATE", Err: protoErr("INITIATE cookie is not ours")}
	}
	in := binary.BigEndian.Uint64(d[cookieSize : cookieSize+8])
	var shared [32]byte
	box.Precompute(&shared, &cprime, ssec)
	ipt, ok := box.OpenAfterPrecomputation(nil, d[cookieSize+8:], shortNonce(prefixInitiate, in), &shared)
	if !ok {
		return &HandshakeError{Stage: "INITIATE", Err: protoErr("INITIATE box does not open")}
	}
	var client [32]byte
	copy(client[:], ipt[:32])
	vpt, ok := box.Open(nil, ipt[48:128], longNonce(prefixVouch, ipt[32:48]), &client, ssec)
	if !ok || !bytes.Equal(vpt[:32], cprime[:]) || !bytes.Equal(vpt[32:], o.PublicKey[:]) {
		return &HandshakeError{Stage: "INITIATE", Err: protoErr("INITIATE vouch is invalid")}
	}
	if c.peerMeta, err = parseMetadata(ipt[128:]); err != nil {
		return &HandshakeError{Stage: "INITIATE", Err: err}
	}
	c.peerKey = client
	if o.Authorize != nil {
		if aerr := o.Authorize(client, c.nc.RemoteAddr()); aerr != nil {
			_ = c.writeHandshakeCommand(appendCommand(nil, cmdError, []byte{3}, []byte("400")))
			return &HandshakeError{Stage: "INITIATE", Err: fmt.Errorf("%w: %v", ErrAuthRefused, aerr)}
		}
	}
	if err := c.checkPeerType(localType); err != nil {
		return err
	}
	ready := appendCommand(nil, cmdReady)
	ready = binary.BigEndian.AppendUint64(ready, 1)
	ready = box.SealAfterPrecomputation(ready, appendMetadata(nil, md), shortNonce(prefixReady, 1), &shared)
	if err := c.writeHandshakeCommand(ready); err != nil {
		return &HandshakeError{Stage: "READY", Err: err}
	}
	c.codec = &curveCodec{key: shared, sendPrefix: prefixMessageS, recvPrefix: prefixMessageC, sendNonce: 1, recvNonce: in}
	return nil
}

func expectCommand(cmd command, name string) error {
	if cmd.name == name {
		return nil
	}
	if cmd.name == cmdError {
		return errorCommand(cmd.data)
	}
	return protoErr("expected %s, got another command", name)
}

// isZAPStatus reports whether an ERROR reason is a 3-digit ZAP status code,
// which libzmq uses to say that authentication failed.
func isZAPStatus(r string) bool {
	return len(r) == 3 && r[0] >= '3' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' && r[2] >= '0' && r[2] <= '9'
}
