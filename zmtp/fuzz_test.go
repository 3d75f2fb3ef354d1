package zmtp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// FuzzFrameReader starts from the seeds below and from what a real libzmq
// client sends (testdata/fuzz/FuzzFrameReader, written by
// testdata/capture-frames.py): a greeting, a CURVE HELLO, and a NULL READY
// followed by a two-frame message.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', flagMore, 1, 'x', 0, 0})
	f.Add([]byte{flagCommand, 5, 4, 'P', 'I', 'N', 'G'})
	f.Add([]byte{flagLong, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{flagLong, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := frameReader{r: bufio.NewReader(bytes.NewReader(in)), max: 1 << 20}
		total := 0
		for {
			fl, err := fr.next(len(in)%2 == 0)
			if err != nil {
				return
			}
			total += 2 + len(fl.body)
			if total > len(in) {
				t.Fatalf("read %d bytes of frames from %d bytes of input", total, len(in))
			}
		}
	})
}

func FuzzGreeting(f *testing.F) {
	g := greeting{3, 1, "CURVE", true}.marshal()
	f.Add(g[:])
	g = greeting{3, 0, "NULL", false}.marshal()
	f.Add(g[:])
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) != greetingSize {
			in = append(in, make([]byte, greetingSize)...)[:greetingSize]
		}
		gr, err := parseGreeting(in)
		if err != nil {
			return
		}
		back := gr.marshal()
		again, err := parseGreeting(back[:])
		if err != nil || again != gr {
			t.Fatalf("round trip: %v -> %v %v", gr, again, err)
		}
	})
}

func FuzzCommand(f *testing.F) {
	f.Add(appendCommand(nil, cmdReady, appendMetadata(nil, metadata{{"Socket-Type", "SUB"}})))
	f.Add(appendCommand(nil, cmdPing, []byte{0, 10, 'c'}))
	f.Add(appendCommand(nil, cmdError, []byte{3}, []byte("400")))
	f.Fuzz(func(t *testing.T, in []byte) {
		cmd, err := parseCommand(in)
		if err != nil {
			return
		}
		if md, err := parseMetadata(cmd.data); err == nil {
			back, err := parseMetadata(appendMetadata(nil, md))
			if err != nil || len(back) != len(md) {
				t.Fatalf("metadata round trip: %v %v", back, err)
			}
		}
		_ = errorCommand(cmd.data)
	})
}

// fakeConn serves a fixed input and swallows output.
type fakeConn struct {
	r io.Reader
}

func (c *fakeConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// recordConn is the client half of a real handshake, recorded to seed the
// CURVE fuzzers with valid commands that mutations can start from.
func recordClientHandshake(f *testing.F, serverPub [32]byte) []byte {
	f.Helper()
	a, b := net.Pipe()
	var rec bytes.Buffer
	go func() {
		c := newConn(b)
		_ = c.handshake(&handshakeConfig{typ: SUB, curve: &CurveOptions{ServerKey: serverPub, PublicKey: serverPub}, maxSize: 1 << 20, timeout: time.Second})
		b.Close()
	}()
	// Play a greeting back, then record what the client sends until it
	// waits for WELCOME.
	g := greeting{3, 1, "CURVE", true}.marshal()
	go a.Write(g[:])
	a.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(&rec, a)
	a.Close()
	return rec.Bytes()
}

func FuzzCurveServerHandshake(f *testing.F) {
	spub, ssec, _ := box.GenerateKey(zeroReader{})
	client := recordClientHandshake(f, *spub)
	f.Add(client)
	f.Add(client[:greetingSize])
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newConn(&fakeConn{r: bytes.NewReader(in)})
		err := c.handshake(&handshakeConfig{typ: PUB, curve: &CurveOptions{Server: true, SecretKey: *ssec, PublicKey: *spub}, maxSize: 1 << 20})
		if err == nil {
			t.Fatal("handshake succeeded against recorded or random bytes")
		}
	})
}

func FuzzCurveClientHandshake(f *testing.F) {
	g := greeting{3, 1, "CURVE", true}.marshal()
	welcome := appendFrameHeader(nil, flagCommand, 1+len(cmdWelcome)+welcomeDataSize)
	welcome = appendCommand(welcome, cmdWelcome, make([]byte, welcomeDataSize))
	f.Add(append(g[:], welcome...))
	f.Add(append(g[:], appendFrameHeader(nil, flagCommand, 10)...))
	spub, _, _ := box.GenerateKey(zeroReader{})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newConn(&fakeConn{r: bytes.NewReader(in)})
		if err := c.handshake(&handshakeConfig{typ: SUB, curve: &CurveOptions{ServerKey: *spub, PublicKey: *spub}, maxSize: 1 << 20}); err == nil {
			t.Fatal("client handshake succeeded against forged input")
		}
	})
}

func FuzzCurveMessage(f *testing.F) {
	var key [32]byte
	key[0] = 1
	enc := &curveCodec{key: key, sendPrefix: prefixMessageC}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	enc.writePart(w, true, false, []byte("dynfw/delta"))
	enc.writePart(w, false, true, appendCommand(nil, cmdPing, []byte{0, 1}))
	w.Flush()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		dec := &curveCodec{key: key, recvPrefix: prefixMessageC}
		fr := frameReader{r: bufio.NewReader(bytes.NewReader(in)), max: 1 << 20}
		last := uint64(0)
		for {
			if _, err := dec.readPart(&fr); err != nil {
				return
			}
			if dec.recvNonce <= last {
				t.Fatalf("nonce did not increase: %d after %d", dec.recvNonce, last)
			}
			last = dec.recvNonce
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 7
	}
	return len(b), nil
}
