package zmtp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

func TestFrameReader(t *testing.T) {
	t.Parallel()
	long := append([]byte{flagLong, 0, 0, 0, 0, 0, 0, 1, 0}, make([]byte, 256)...)
	cases := []struct {
		name    string
		in      []byte
		max     uint64
		wantErr error
		flags   byte
		size    int
	}{
		{"short data", []byte{0, 3, 'a', 'b', 'c'}, 100, nil, 0, 3},
		{"more", []byte{flagMore, 1, 'x'}, 100, nil, flagMore, 1},
		{"command", []byte{flagCommand, 1, 'x'}, 100, nil, flagCommand, 1},
		{"long", long, 1000, nil, flagLong, 256},
		{"empty", []byte{0, 0}, 100, nil, 0, 0},
		{"too large short", []byte{0, 200}, 100, ErrFrameTooLarge, 0, 0},
		{"too large long", []byte{flagLong, 0xff, 0, 0, 0, 0, 0, 0, 0}, 1 << 30, ErrFrameTooLarge, 0, 0},
		{"reserved bits", []byte{0x08, 0}, 100, ErrProtocol, 0, 0},
		{"command with more", []byte{flagCommand | flagMore, 0}, 100, ErrProtocol, 0, 0},
		{"truncated body", []byte{0, 5, 'a'}, 100, io.ErrUnexpectedEOF, 0, 0},
		{"truncated long size", []byte{flagLong, 0, 0}, 100, io.ErrUnexpectedEOF, 0, 0},
		{"eof", nil, 100, io.EOF, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fr := frameReader{r: bufio.NewReader(bytes.NewReader(c.in)), max: c.max}
			f, err := fr.next(false)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || f.flags != c.flags || len(f.body) != c.size {
				t.Fatalf("got flags %x size %d err %v", f.flags, len(f.body), err)
			}
		})
	}
}

// A peer that announces a large frame and sends little must not make the
// reader allocate what it announced.
func TestFrameReaderAllocatesWhatArrives(t *testing.T) {
	// Not parallel: it measures the allocations of the whole process.
	hdr := []byte{flagLong, 0, 0, 0, 0, 0x04, 0, 0, 0} // 64 MiB announced
	in := append(hdr, make([]byte, 10)...)
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(in)), max: 1 << 30}
	before := memAlloc()
	if _, err := fr.next(false); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v", err)
	}
	if d := memAlloc() - before; d > 4<<20 {
		t.Fatalf("allocated %d bytes for a 10-byte frame announced as 64 MiB", d)
	}
}

func TestGreetingRoundTrip(t *testing.T) {
	t.Parallel()
	for _, g := range []greeting{{3, 1, "NULL", false}, {3, 0, "CURVE", true}, {3, 1, "PLAIN", false}} {
		b := g.marshal()
		got, err := parseGreeting(b[:])
		if err != nil || got != g {
			t.Fatalf("%v: got %v %v", g, got, err)
		}
	}
	bad := greeting{3, 1, "NULL", false}.marshal()
	bad[0] = 0
	if _, err := parseGreeting(bad[:]); !errors.Is(err, ErrProtocol) {
		t.Fatalf("bad signature accepted: %v", err)
	}
	old := greeting{2, 0, "NULL", false}.marshal()
	if _, err := parseGreeting(old[:]); !errors.Is(err, ErrProtocol) {
		t.Fatalf("ZMTP 2.0 accepted: %v", err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	md := metadata{{"Socket-Type", "PUB"}, {"Identity", ""}, {"X-Big", string(make([]byte, 1000))}}
	got, err := parseMetadata(appendMetadata(nil, md))
	if err != nil || len(got) != 3 || got[0] != md[0] || got[2] != md[2] {
		t.Fatalf("got %v %v", got, err)
	}
	if v, ok := got.get("socket-type"); !ok || v != "PUB" {
		t.Fatal("names must compare case-insensitively")
	}
	for _, bad := range [][]byte{{0}, {5, 'a'}, {1, 'a', 0, 0, 0, 9, 'x'}, {1, ' ', 0, 0, 0, 0}} {
		if _, err := parseMetadata(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// streamSeal must produce exactly what NaCl's box produces.
func TestStreamSealMatchesBox(t *testing.T) {
	t.Parallel()
	var key [32]byte
	rand.Read(key[:])
	nonce := shortNonce(prefixMessageS, 12345)
	for _, n := range []int{0, 1, 30, 31, 32, 33, 63, 64, 95, 96, 1000, streamChunk - 1, streamChunk, streamChunk + 31, 3*streamChunk + 17} {
		body := make([]byte, n)
		rand.Read(body)
		want := box.SealAfterPrecomputation([]byte("HDR"), append([]byte{innerMore}, body...), nonce, &key)
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := streamSeal(w, []byte("HDR"), innerMore, body, nonce, &key); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("size %d: stream seal differs from box", n)
		}
	}
}

// streamOpen must accept exactly what box produces and reject any change.
func TestStreamOpenMatchesBox(t *testing.T) {
	t.Parallel()
	var key [32]byte
	rand.Read(key[:])
	for _, n := range []int{streamSealCutoff, streamSealCutoff + 1, streamSealCutoff + 31, 3*streamChunk + 17, 2 << 20} {
		body := make([]byte, n)
		rand.Read(body)
		enc := &curveCodec{key: key, sendPrefix: prefixMessageS, sendNonce: 41}
		var wire bytes.Buffer
		w := bufio.NewWriter(&wire)
		if err := enc.writePart(w, true, false, body); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		for _, tamper := range []int{-1, 0, wire.Len() / 2, wire.Len() - 1} {
			b := bytes.Clone(wire.Bytes())
			if tamper >= 0 {
				b[len(b)-1-tamper%(len(b)-40)] ^= 1
			}
			dec := &curveCodec{key: key, recvPrefix: prefixMessageS, recvNonce: 41}
			fr := frameReader{r: bufio.NewReader(bytes.NewReader(b)), max: 1 << 30}
			p, err := dec.readPart(&fr)
			if tamper < 0 {
				if err != nil || !p.more || !bytes.Equal(p.body, body) {
					t.Fatalf("size %d: %v", n, err)
				}
			} else if err == nil {
				t.Fatalf("size %d: a flipped bit at %d went unnoticed", n, tamper)
			}
		}
	}
}
