package mqtt

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/msgpack"
)

// minipotEvent returns a msgpack payload as minipot sends it: one map.
func minipotEvent(ip string) []byte {
	b := msgpack.AppendMapHeader(nil, 5)
	b = msgpack.AppendString(b, "type")
	b = msgpack.AppendString(b, "telnet")
	b = msgpack.AppendString(b, "action")
	b = msgpack.AppendString(b, "login")
	b = msgpack.AppendString(b, "ip")
	b = msgpack.AppendString(b, ip)
	b = msgpack.AppendString(b, "ts")
	b = msgpack.AppendInt(b, 1700000000)
	b = msgpack.AppendString(b, "data")
	b = msgpack.AppendMapHeader(b, 2)
	b = msgpack.AppendString(b, "username")
	b = msgpack.AppendString(b, "root")
	b = msgpack.AppendString(b, "password")
	b = msgpack.AppendString(b, "admin")
	return b
}

// compress returns b as zlib's compress2 at level would.
func compress(t testing.TB, b []byte, level int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := zlib.NewWriterLevel(&out, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// zeroBomb returns a zlib stream of at least n zero bytes, written by hand
// because compressing a gigabyte takes seconds (and minutes under -race).
// It is one fixed-Huffman block: a literal 0, then <length 258, distance 1>
// repeated, 13 bits per 258 bytes, so 1 GiB costs 6.5 MiB. compress/flate
// packs zeros tighter, but not faster.
func zeroBomb(t testing.TB, n int64) []byte {
	t.Helper()
	repeats := (n - 1 + 257) / 258
	total := 1 + 258*repeats
	w := bitWriter{out: []byte{0x78, 0x01}} // zlib header: deflate, 32 KiB window
	w.bits(1, 1)                            // BFINAL
	w.bits(1, 2)                            // BTYPE 01: fixed Huffman codes
	w.code(0b00110000, 8)                   // literal 0
	for range repeats {
		w.code(0b11000101, 8) // length code 285: 258 bytes
		w.code(0, 5)          // distance code 0: 1 byte back
	}
	w.code(0, 7) // end of block
	w.flush()
	// Adler-32 of total zeros: a stays 1, b adds 1 per byte.
	adler := uint32(total%65521)<<16 | 1
	return append(w.out, byte(adler>>24), byte(adler>>16), byte(adler>>8), byte(adler))
}

// bitWriter writes a deflate bit stream: fields LSB first, Huffman codes MSB
// first.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) code(c uint64, n uint) {
	var r uint64
	for i := uint(0); i < n; i++ {
		r = r<<1 | c>>i&1
	}
	w.bits(r, n)
}

func (w *bitWriter) flush() {
	if w.n > 0 {
		w.bits(0, 8-w.n)
	}
}

func TestZeroBombIsValid(t *testing.T) {
	bomb := zeroBomb(t, 100_000)
	r, err := zlib.NewReader(bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 100_000 || len(out) > 100_258 || bytes.IndexFunc(out, func(r rune) bool { return r != 0 }) >= 0 {
		t.Fatalf("%d bytes, not all zero", len(out))
	}
	if got, _, err := decodePayload(bomb, 1<<20); err != nil || !bytes.Equal(got, out) {
		t.Fatalf("decodePayload: %v", err)
	}
}

func TestIsZlib(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"compress2 level 9", []byte{0x78, 0xda}, true},
		{"default level", []byte{0x78, 0x9c}, true},
		{"level 1", []byte{0x78, 0x01}, true},
		{"small window", []byte{0x08, 0x1d}, true},
		{"single 0x78 is msgpack 120", []byte{0x78}, false},
		{"bad FCHECK", []byte{0x78, 0xdb}, false},
		{"method 7", []byte{0x77, 0x01}, false},
		{"window above 32 KiB", []byte{0x88, 0x98}, false},
		{"fixmap", []byte{0x81, 0xa1}, false},
		{"fixarray", []byte{0x91, 0x80}, false},
		{"map16", []byte{0xde, 0x00}, false},
		{"empty", nil, false},
	} {
		if got := isZlib(c.b); got != c.want {
			t.Errorf("%s: isZlib(% x) = %v", c.name, c.b, got)
		}
	}
	// Every header Go's compressor writes is recognised.
	for level := zlib.HuffmanOnly; level <= zlib.BestCompression; level++ {
		if b := compress(t, []byte("x"), level); !isZlib(b) {
			t.Errorf("level %d: header % x not recognised", level, b[:2])
		}
	}
}

func TestDecodePayload(t *testing.T) {
	event := minipotEvent("192.0.2.1")
	big := bytes.Repeat(event, 1000)
	stream := compress(t, event, zlib.BestCompression)
	corrupt := bytes.Clone(stream)
	corrupt[len(corrupt)-1] ^= 1 // Adler-32
	dict := []byte{0x78, 0xbb, 0, 0, 0, 0}
	const max = 64 << 10

	for _, c := range []struct {
		name    string
		in      []byte
		want    []byte
		zlib    bool
		reason  DropReason
		wantErr error
	}{
		{name: "msgpack map", in: event, want: event},
		{name: "msgpack array", in: msgpack.AppendArrayHeader(nil, 0), want: []byte{0x90}},
		{name: "a lone fixint 120 is msgpack", in: []byte{0x78}, want: []byte{0x78}},
		{name: "zlib level 9", in: stream, want: event, zlib: true},
		{name: "zlib stored", in: compress(t, event, zlib.NoCompression), want: event, zlib: true},
		{name: "zlib of a large batch", in: compress(t, big[:max], zlib.BestCompression), want: big[:max], zlib: true},
		{name: "exactly at the limit", in: bytes.Repeat([]byte{1}, max), want: bytes.Repeat([]byte{1}, max)},
		{name: "empty", in: []byte{}, reason: DropEmpty, wantErr: ErrEmptyPayload},
		{name: "too large", in: bytes.Repeat([]byte{1}, max+1), reason: DropTooLarge, wantErr: ErrTooLarge},
		{name: "inflates one byte past the limit", in: compress(t, big[:max+1], zlib.BestCompression), reason: DropInflateLimit, wantErr: ErrInflateLimit},
		{name: "zip bomb", in: zeroBomb(t, 1<<20), reason: DropInflateLimit, wantErr: ErrInflateLimit},
		{name: "truncated stream", in: stream[:len(stream)-5], reason: DropBadZlib, wantErr: ErrBadZlib},
		{name: "bad checksum", in: corrupt, reason: DropBadZlib, wantErr: ErrBadZlib},
		{name: "trailing bytes", in: append(bytes.Clone(stream), 0x80), reason: DropBadZlib, wantErr: ErrBadZlib},
		{name: "two streams", in: append(bytes.Clone(stream), stream...), reason: DropBadZlib, wantErr: ErrBadZlib},
		{name: "header only", in: stream[:2], reason: DropBadZlib, wantErr: ErrBadZlib},
		{name: "preset dictionary", in: dict, reason: DropBadZlib, wantErr: ErrBadZlib},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, zl, err := decodePayload(c.in, max)
			if c.reason != "" {
				var de *DropError
				if !errors.As(err, &de) || de.Reason != c.reason || !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %s (%v)", err, c.reason, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if zl != c.zlib || !bytes.Equal(got, c.want) {
				t.Fatalf("got %d bytes (zlib %v), want %d (zlib %v)", len(got), zl, len(c.want), c.zlib)
			}
		})
	}
}

// TestZipBombIsCheap feeds a 1 GiB bomb (6.5 MiB compressed) to the default
// limit: decoding stops just past 16 MiB.
func TestZipBombIsCheap(t *testing.T) {
	bomb := zeroBomb(t, 1<<30)
	t.Logf("bomb: %d bytes compressed", len(bomb))
	start := time.Now()
	_, _, err := decodePayload(bomb, DefaultMaxPayload)
	if !errors.Is(err, ErrInflateLimit) {
		t.Fatalf("error %v, want ErrInflateLimit", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestParseStatus(t *testing.T) {
	received := time.Date(2024, 5, 1, 12, 0, 30, 500_000_000, time.UTC)
	status := func(kv ...any) []byte {
		b := msgpack.AppendMapHeader(nil, len(kv)/2)
		for _, v := range kv {
			var err error
			if b, err = msgpack.Append(b, v); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	// The proxy packs ts with pack_long_long, which picks the smallest
	// encoding; here every width is tried.
	ts := int64(1714564800)
	for _, c := range []struct {
		name  string
		in    []byte
		want  *Status
		error bool
	}{
		{name: "heartbeat", in: status("action", "heartbeat", "ts", ts),
			want: &Status{Action: StatusHeartbeat, Time: time.Unix(ts, 0)}},
		{name: "disconnect, ts first", in: status("ts", ts, "action", "disconnect"),
			want: &Status{Action: StatusDisconnect, Time: time.Unix(ts, 0)}},
		{name: "last will", in: status("action", "last_will_disconnect"),
			want: &Status{Action: StatusLastWill, Time: received.Truncate(time.Second), TimeAdded: true}},
		{name: "ts as int64", in: withoutNil(status("action", "heartbeat", "ts", nil), 0xd3, 0, 0, 0, 0, 0x66, 0x32, 0x2e, 0xc0),
			want: &Status{Action: StatusHeartbeat, Time: time.Unix(0x66322ec0, 0)}},
		{name: "ts as fixint", in: status("action", "heartbeat", "ts", 5),
			want: &Status{Action: StatusHeartbeat, Time: time.Unix(5, 0)}},
		{name: "negative ts", in: status("action", "heartbeat", "ts", -1),
			want: &Status{Action: StatusHeartbeat, Time: time.Unix(-1, 0)}},
		{name: "action as bin", in: status("action", []byte("heartbeat"), "ts", ts),
			want: &Status{Action: StatusHeartbeat, Time: time.Unix(ts, 0)}},
		{name: "extra keys are skipped", in: status("v", []any{1, 2}, "action", "heartbeat", 7, "x", "ts", ts),
			want: &Status{Action: StatusHeartbeat, Time: time.Unix(ts, 0)}},
		{name: "duplicate key: last wins", in: status("action", "heartbeat", "action", "disconnect"),
			want: &Status{Action: StatusDisconnect, Time: received.Truncate(time.Second), TimeAdded: true}},

		{name: "not a map", in: msgpack.AppendString(nil, "heartbeat"), error: true},
		{name: "empty map", in: status(), error: true},
		{name: "no action", in: status("ts", ts), error: true},
		{name: "empty action", in: status("action", ""), error: true},
		{name: "unknown action", in: status("action", "reboot", "ts", ts), error: true},
		{name: "a minipot event on the status topic", in: minipotEvent("192.0.2.1"), error: true},
		{name: "action not a string", in: status("action", 1), error: true},
		{name: "ts not an integer", in: status("action", "heartbeat", "ts", "now"), error: true},
		{name: "ts above int64", in: status("action", "heartbeat", "ts", uint64(math.MaxUint64)), error: true},
		{name: "trailing bytes", in: append(status("action", "heartbeat"), 0xc0), error: true},
		{name: "truncated", in: status("action", "heartbeat")[:5], error: true},
		{name: "empty", in: nil, error: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStatus(c.in, received)
			if c.error {
				var de *DropError
				if !errors.As(err, &de) || de.Reason != DropBadStatus || !errors.Is(err, ErrBadStatus) {
					t.Fatalf("got %+v, %v; want a bad_status error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != c.want.Action || !got.Time.Equal(c.want.Time) || got.TimeAdded != c.want.TimeAdded {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// withoutNil replaces the final nil of b with v: a way to write a value in an
// encoding that the encoder would not choose.
func withoutNil(b []byte, v ...byte) []byte {
	if b[len(b)-1] != 0xc0 {
		panic("no final nil")
	}
	return append(b[:len(b)-1], v...)
}

func BenchmarkInflate(b *testing.B) {
	payload := bytes.Repeat(minipotEvent("192.0.2.1"), 10)
	stream := compress(b, payload, zlib.BestCompression)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodePayload(stream, DefaultMaxPayload); err != nil {
			b.Fatal(err)
		}
	}
}
