package msgpack

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

func TestReadIntegersEveryWidth(t *testing.T) {
	// Each value in every encoding wide enough to hold it, including the
	// wasteful ones other packers emit (5 as uint64 or as int8).
	for _, c := range []struct {
		enc  string
		u    uint64 // ReadUint result, if uerr is nil
		uerr error
		i    int64 // ReadInt result, if ierr is nil
		ierr error
	}{
		{enc: "00", u: 0, i: 0},
		{enc: "05", u: 5, i: 5},
		{enc: "7f", u: 127, i: 127},
		{enc: "cc 05", u: 5, i: 5},
		{enc: "cc ff", u: 255, i: 255},
		{enc: "cd 0005", u: 5, i: 5},
		{enc: "cd ffff", u: 65535, i: 65535},
		{enc: "ce 00000005", u: 5, i: 5},
		{enc: "ce ffffffff", u: 1<<32 - 1, i: 1<<32 - 1},
		{enc: "cf 0000000000000005", u: 5, i: 5},
		{enc: "cf 0000000100000005", u: 1<<32 + 5, i: 1<<32 + 5},
		{enc: "cf 7fffffffffffffff", u: math.MaxInt64, i: math.MaxInt64},
		{enc: "cf 8000000000000000", u: 1 << 63, ierr: ErrRange},
		{enc: "cf ffffffffffffffff", u: math.MaxUint64, ierr: ErrRange},
		{enc: "d0 05", u: 5, i: 5},
		{enc: "d0 7f", u: 127, i: 127},
		{enc: "d0 80", uerr: ErrRange, i: -128},
		{enc: "d0 ff", uerr: ErrRange, i: -1},
		{enc: "d1 0005", u: 5, i: 5},
		{enc: "d1 7fff", u: 32767, i: 32767},
		{enc: "d1 8000", uerr: ErrRange, i: -32768},
		{enc: "d2 00000005", u: 5, i: 5},
		{enc: "d2 7fffffff", u: math.MaxInt32, i: math.MaxInt32},
		{enc: "d2 80000000", uerr: ErrRange, i: math.MinInt32},
		{enc: "d3 0000000000000005", u: 5, i: 5},
		{enc: "d3 7fffffffffffffff", u: math.MaxInt64, i: math.MaxInt64},
		{enc: "d3 8000000000000000", uerr: ErrRange, i: math.MinInt64},
		{enc: "d3 ffffffffffffffff", uerr: ErrRange, i: -1},
		{enc: "e0", uerr: ErrRange, i: -32},
		{enc: "ff", uerr: ErrRange, i: -1},
	} {
		b := testenv.Hex(t, c.enc)
		r := NewReader(b)
		u, err := r.ReadUint()
		switch {
		case c.uerr != nil && !errors.Is(err, c.uerr):
			t.Errorf("ReadUint(%s) = %d, %v; want error %v", c.enc, u, err, c.uerr)
		case c.uerr == nil && (err != nil || u != c.u):
			t.Errorf("ReadUint(%s) = %d, %v; want %d", c.enc, u, err, c.u)
		case c.uerr == nil && r.Remaining() != 0:
			t.Errorf("ReadUint(%s) left %d bytes", c.enc, r.Remaining())
		case c.uerr != nil && r.Offset() != 0:
			t.Errorf("failed ReadUint(%s) moved the reader to %d", c.enc, r.Offset())
		}
		r = NewReader(b)
		i, err := r.ReadInt()
		switch {
		case c.ierr != nil && !errors.Is(err, c.ierr):
			t.Errorf("ReadInt(%s) = %d, %v; want error %v", c.enc, i, err, c.ierr)
		case c.ierr == nil && (err != nil || i != c.i):
			t.Errorf("ReadInt(%s) = %d, %v; want %d", c.enc, i, err, c.i)
		case c.ierr == nil && r.Remaining() != 0:
			t.Errorf("ReadInt(%s) left %d bytes", c.enc, r.Remaining())
		}
	}
}

func TestReadIntegersRoundTrip(t *testing.T) {
	for _, c := range intCases {
		if c.big {
			u, err := NewReader(AppendUint(nil, c.u)).ReadUint()
			if err != nil || u != c.u {
				t.Errorf("ReadUint(AppendUint(%d)) = %d, %v", c.u, u, err)
			}
			continue
		}
		i, err := NewReader(AppendInt(nil, c.v)).ReadInt()
		if err != nil || i != c.v {
			t.Errorf("ReadInt(AppendInt(%d)) = %d, %v", c.v, i, err)
		}
	}
}

func TestReadIntegerWrongType(t *testing.T) {
	for _, enc := range []string{"c0", "c2", "a1 31", "cb 3ff8000000000000", "90", "80", "c4 00"} {
		r := NewReader(testenv.Hex(t, enc))
		_, err := r.ReadUint()
		var te *TypeError
		if !errors.As(err, &te) || te.Want != "int" || !errors.Is(err, ErrType) {
			t.Errorf("ReadUint(%s): got %v, want a *TypeError wanting int", enc, err)
		}
		if r.Offset() != 0 {
			t.Errorf("ReadUint(%s) moved the reader after a type error", enc)
		}
	}
}

func TestReadStringBytesStrOrBin(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		text := strings.Repeat("q", n)
		for _, enc := range []struct {
			name string
			b    []byte
		}{
			{"str", AppendString(nil, text)},
			{"bin", AppendBytes(nil, []byte(text))},
		} {
			// A trailing value checks that exactly the string was consumed.
			in := AppendNil(bytes.Clone(enc.b))
			r := NewReader(in)
			got, err := r.ReadStringBytes()
			if err != nil || string(got) != text {
				t.Errorf("%s of %d: got %d bytes, %v", enc.name, n, len(got), err)
				continue
			}
			if err := r.ReadNil(); err != nil || r.Remaining() != 0 {
				t.Errorf("%s of %d: reader not left at the next value: %v", enc.name, n, err)
			}
			if n > 0 && &got[0] != &in[len(in)-1-n] {
				t.Errorf("%s of %d: ReadStringBytes copied instead of slicing the input", enc.name, n)
			}
			if cap(got) != len(got) {
				t.Errorf("%s of %d: capacity %d leaks the rest of the input", enc.name, n, cap(got))
			}
			s, err := NewReader(in).ReadString()
			if err != nil || s != text {
				t.Errorf("ReadString on %s of %d: %d bytes, %v", enc.name, n, len(s), err)
			}
		}
	}
	// The 32-bit encodings of short strings, which packb never emits but
	// other packers may.
	for _, enc := range []string{"d9 02 6869", "da 0002 6869", "db 00000002 6869", "c4 02 6869", "c5 0002 6869", "c6 00000002 6869"} {
		if s, err := NewReader(testenv.Hex(t, enc)).ReadString(); err != nil || s != "hi" {
			t.Errorf("ReadString(%s) = %q, %v", enc, s, err)
		}
	}
}

func TestReadStringWrongType(t *testing.T) {
	for _, enc := range []string{"c0", "01", "90", "80", "d4 01 00", "cb 0000000000000000"} {
		r := NewReader(testenv.Hex(t, enc))
		_, err := r.ReadStringBytes()
		var te *TypeError
		if !errors.As(err, &te) || te.Want != "str or bin" || te.Offset != 0 {
			t.Errorf("ReadStringBytes(%s): got %v, want a *TypeError at offset 0", enc, err)
		}
		if r.Offset() != 0 {
			t.Errorf("ReadStringBytes(%s) moved the reader after a type error", enc)
		}
		// After a type error the value can still be skipped.
		if err := r.Skip(); err != nil || r.Remaining() != 0 {
			t.Errorf("Skip after type error on %s: %v, %d left", enc, err, r.Remaining())
		}
	}
}

func TestReadScalars(t *testing.T) {
	r := NewReader(testenv.Hex(t, "c0 c2 c3 ca 3fc00000 cb 3ff8000000000000 d6 ff 01020304 c7 03 07 616263"))
	if !r.IsNil() {
		t.Error("IsNil = false on nil")
	}
	if err := r.ReadNil(); err != nil {
		t.Errorf("ReadNil: %v", err)
	}
	if r.IsNil() {
		t.Error("IsNil = true on a bool")
	}
	if v, err := r.ReadBool(); err != nil || v {
		t.Errorf("ReadBool = %v, %v; want false", v, err)
	}
	if v, err := r.ReadBool(); err != nil || !v {
		t.Errorf("ReadBool = %v, %v; want true", v, err)
	}
	if v, err := r.ReadFloat64(); err != nil || v != 1.5 {
		t.Errorf("ReadFloat64 of float32 = %v, %v", v, err)
	}
	if v, err := r.ReadFloat64(); err != nil || v != 1.5 {
		t.Errorf("ReadFloat64 of float64 = %v, %v", v, err)
	}
	if e, err := r.ReadExt(); err != nil || e.Type != -1 || !bytes.Equal(e.Data, []byte{1, 2, 3, 4}) {
		t.Errorf("ReadExt timestamp = %+v, %v", e, err)
	}
	if e, err := r.ReadExt(); err != nil || e.Type != 7 || string(e.Data) != "abc" {
		t.Errorf("ReadExt ext8 = %+v, %v", e, err)
	}
	if r.Remaining() != 0 {
		t.Errorf("%d bytes left", r.Remaining())
	}
	for name, read := range map[string]func(*Reader) error{
		"ReadNil":     func(r *Reader) error { return r.ReadNil() },
		"ReadBool":    func(r *Reader) error { _, err := r.ReadBool(); return err },
		"ReadFloat64": func(r *Reader) error { _, err := r.ReadFloat64(); return err },
		"ReadExt":     func(r *Reader) error { _, err := r.ReadExt(); return err },
	} {
		r := NewReader([]byte{0x01})
		if err := read(r); !errors.Is(err, ErrType) || r.Offset() != 0 {
			t.Errorf("%s on an int: %v (offset %d); want a type error and no advance", name, err, r.Offset())
		}
		if err := read(NewReader(nil)); !errors.Is(err, ErrShortBuffer) {
			t.Errorf("%s on empty input: %v; want ErrShortBuffer", name, err)
		}
	}
}

func TestPeekType(t *testing.T) {
	for _, c := range []struct {
		b    byte
		want Type
	}{
		{0x00, TypeInt}, {0x7f, TypeInt}, {0x80, TypeMap}, {0x8f, TypeMap},
		{0x90, TypeArray}, {0x9f, TypeArray}, {0xa0, TypeStr}, {0xbf, TypeStr},
		{0xc0, TypeNil}, {0xc2, TypeBool}, {0xc3, TypeBool},
		{0xc4, TypeBin}, {0xc5, TypeBin}, {0xc6, TypeBin},
		{0xc7, TypeExt}, {0xc8, TypeExt}, {0xc9, TypeExt},
		{0xca, TypeFloat}, {0xcb, TypeFloat},
		{0xcc, TypeInt}, {0xcf, TypeInt}, {0xd0, TypeInt}, {0xd3, TypeInt},
		{0xd4, TypeExt}, {0xd8, TypeExt},
		{0xd9, TypeStr}, {0xda, TypeStr}, {0xdb, TypeStr},
		{0xdc, TypeArray}, {0xdd, TypeArray}, {0xde, TypeMap}, {0xdf, TypeMap},
		{0xe0, TypeInt}, {0xff, TypeInt},
	} {
		r := NewReader([]byte{c.b})
		if got, err := r.PeekType(); err != nil || got != c.want {
			t.Errorf("PeekType(%#x) = %v, %v; want %v", c.b, got, err, c.want)
		}
		if r.Offset() != 0 {
			t.Errorf("PeekType(%#x) consumed input", c.b)
		}
	}
	if _, err := NewReader([]byte{0xc1}).PeekType(); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("PeekType(0xc1): %v, want ErrInvalidCode", err)
	}
	if _, err := NewReader(nil).PeekType(); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("PeekType at end: %v, want ErrShortBuffer", err)
	}
	if got := Type(200).String(); got != "Type(200)" {
		t.Errorf("Type(200).String() = %q", got)
	}
}

func TestInvalidCode(t *testing.T) {
	for _, enc := range []string{"c1", "91 c1", "81 a1 61 c1", "81 c1 00"} {
		b := testenv.Hex(t, enc)
		if _, err := Decode(b); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("Decode(%s): %v, want ErrInvalidCode", enc, err)
		}
		if err := NewReader(b).Skip(); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("Skip(%s): %v, want ErrInvalidCode", enc, err)
		}
		if _, err := AppendJSON(nil, b); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("AppendJSON(%s): %v, want ErrInvalidCode", enc, err)
		}
	}
}

func TestReadHeaders(t *testing.T) {
	for _, c := range []struct {
		enc   string
		array bool
		n     int
	}{
		{"90", true, 0},
		{"9f" + strings.Repeat("c0", 15), true, 15},
		{"dc 0002 c0c0", true, 2},
		{"dd 00000002 c0c0", true, 2},
		{"80", false, 0},
		{"81 c0c0", false, 1},
		{"de 0001 c0c0", false, 1},
		{"df 00000001 c0c0", false, 1},
	} {
		r := NewReader(testenv.Hex(t, c.enc))
		var n int
		var err error
		if c.array {
			n, err = r.ReadArrayHeader()
		} else {
			n, err = r.ReadMapHeader()
		}
		if err != nil || n != c.n {
			t.Errorf("header %s: %d, %v; want %d", c.enc, n, err, c.n)
		}
		per := 1
		if !c.array {
			per = 2
		}
		if r.Remaining() != n*per {
			t.Errorf("header %s: %d bytes left, want %d", c.enc, r.Remaining(), n*per)
		}
	}
	r := NewReader(testenv.Hex(t, "80"))
	if _, err := r.ReadArrayHeader(); !errors.Is(err, ErrType) || r.Offset() != 0 {
		t.Errorf("ReadArrayHeader on a map: %v", err)
	}
	if _, err := NewReader(testenv.Hex(t, "90")).ReadMapHeader(); !errors.Is(err, ErrType) {
		t.Errorf("ReadMapHeader on an array: %v", err)
	}
}

// validMessages are well-formed encodings covering every kind of value; the
// truncation and skip tests cut them everywhere.
func validMessages(t testing.TB) map[string][]byte {
	m := map[string][]byte{}
	add := func(name string, v any) {
		b, err := Append(nil, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m[name] = b
	}
	add("delta", Map{{"serial", uint64(70000)}, {"delta", "positive"}, {"ip", "192.0.2.1"}, {"ts", uint64(1700000000)}})
	add("list", Map{{"version", uint64(1)}, {"serial", uint64(2)}, {"list", []any{"1.2.3.4", "2001:db8::1", strings.Repeat("x", 40)}}, {"ts", uint64(3)}})
	add("scalars", []any{nil, true, false, int64(-5), int64(-200), int64(-70000), int64(math.MinInt64), uint64(300), uint64(math.MaxUint64), 1.5, float32(2.5)})
	add("bins", []any{[]byte{}, []byte("abc"), bytes.Repeat([]byte{0xff}, 300), bytes.Repeat([]byte{1}, 70000)})
	add("strs", []any{"", strings.Repeat("s", 31), strings.Repeat("s", 32), strings.Repeat("s", 256), strings.Repeat("s", 65536)})
	add("exts", []any{Ext{-1, []byte{1, 2, 3, 4}}, Ext{1, nil}, Ext{2, make([]byte, 16)}, Ext{3, make([]byte, 300)}})
	add("nested", Map{{"a", []any{Map{{"b", []any{[]any{}, Map{}}}}}}, {"c", make([]any, 20)}})
	m["wide ints"] = testenv.Hex(t, "94 cf0000000000000005 d3fffffffffffffffb ce00000007 d1fff0")
	m["wide headers"] = testenv.Hex(t, "94 dd00000002c0c0 df000000010102 dc0001c0 de0001a0c0")
	return m
}

func TestTruncationEverywhere(t *testing.T) {
	for name, full := range validMessages(t) {
		if _, err := Decode(full); err != nil {
			t.Fatalf("%s: full message does not decode: %v", name, err)
		}
		for i := range len(full) {
			// Every header sits in the first or last 2 KiB; cuts inside a
			// 64 KiB payload all take the same path, so sample those.
			if i >= 2048 && i < len(full)-2048 && i%61 != 0 {
				continue
			}
			cut := full[:i]
			if v, err := Decode(cut); err == nil {
				t.Fatalf("%s cut at %d of %d: Decode succeeded with %v", name, i, len(full), v)
			} else if !errors.Is(err, ErrShortBuffer) {
				t.Fatalf("%s cut at %d: Decode error %v is not ErrShortBuffer", name, i, err)
			}
			r := NewReader(cut)
			if err := r.Skip(); !errors.Is(err, ErrShortBuffer) || r.Offset() != 0 {
				t.Fatalf("%s cut at %d: Skip: %v at offset %d", name, i, err, r.Offset())
			}
			if out, err := AppendJSON([]byte("x"), cut); err == nil || string(out) != "x" {
				t.Fatalf("%s cut at %d: AppendJSON = %q, %v", name, i, out, err)
			}
		}
	}
}

func TestSkip(t *testing.T) {
	for name, full := range validMessages(t) {
		in := append(bytes.Clone(full), 0x2a)
		r := NewReader(in)
		if err := r.Skip(); err != nil {
			t.Errorf("%s: Skip: %v", name, err)
			continue
		}
		if r.Offset() != len(full) {
			t.Errorf("%s: Skip stopped at %d, want %d", name, r.Offset(), len(full))
		}
		if v, err := r.ReadUint(); err != nil || v != 42 {
			t.Errorf("%s: value after skipped one: %d, %v", name, v, err)
		}
	}
}

func TestSkipDeepNesting(t *testing.T) {
	// Skip is iterative, so it takes nesting that Decode refuses.
	const depth = 100000
	b := append(bytes.Repeat([]byte{0x91}, depth), 0x01)
	r := NewReader(b)
	if err := r.Skip(); err != nil || r.Remaining() != 0 {
		t.Errorf("Skip of %d nested arrays: %v, %d left", depth, err, r.Remaining())
	}
	if err := NewReader(b[:depth]).Skip(); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("Skip of truncated nesting: %v", err)
	}
}

func TestDepthLimit(t *testing.T) {
	for _, c := range []struct {
		arrays int
		ok     bool
	}{{1, true}, {MaxDepth, true}, {MaxDepth + 1, false}, {10000, false}} {
		for _, open := range []byte{0x91, 0x81} {
			var b []byte
			for range c.arrays {
				b = append(b, open)
				if open == 0x81 {
					b = append(b, 0xa0) // key ""
				}
			}
			b = append(b, 0x07)
			_, err := Decode(b)
			_, jerr := AppendJSON(nil, b)
			if c.ok {
				if err != nil || jerr != nil {
					t.Errorf("%d levels of %#x: Decode %v, AppendJSON %v", c.arrays, open, err, jerr)
				}
				continue
			}
			if !errors.Is(err, ErrTooDeep) || !errors.Is(jerr, ErrTooDeep) {
				t.Errorf("%d levels of %#x: Decode %v, AppendJSON %v; want ErrTooDeep", c.arrays, open, err, jerr)
			}
		}
	}
	// A container used as a map key counts as one level deeper.
	key := append(bytes.Repeat([]byte{0x91}, MaxDepth), 0x07)
	b := append(append([]byte{0x81}, key...), 0x01)
	if _, err := Decode(b); !errors.Is(err, ErrTooDeep) {
		t.Errorf("key nested %d deep inside a map: %v, want ErrTooDeep", MaxDepth, err)
	}
}

func TestHostileLengths(t *testing.T) {
	// Each header claims far more than the input holds; decoding must fail
	// without allocating for the claim.
	for _, enc := range []string{
		"dd ffffffff 00 00 00 00 00",
		"df ffffffff 00 00 00 00 00",
		"dc ffff 00",
		"de ffff 00 00",
		"db ffffffff 61 62",
		"c6 ffffffff 61 62",
		"c9 ffffffff 01 61",
		"91 dd ffffffff 00",
		"dd 00000002 dd ffffffff 00",
		"81 a1 6b dd 80000000 00",
		"df 00000003 01 01 01 01 01",                   // 3 entries need 6 bytes, 5 remain
		"9f 00 00 00 00 00 00 00 00 00 00 00 00 00 00", // 15 elements, 14 present
	} {
		b := testenv.Hex(t, enc)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, derr := Decode(b)
		_, jerr := AppendJSON(nil, b)
		serr := NewReader(b).Skip()
		runtime.ReadMemStats(&after)
		for name, err := range map[string]error{"Decode": derr, "AppendJSON": jerr, "Skip": serr} {
			if !errors.Is(err, ErrShortBuffer) {
				t.Errorf("%s(%s): %v, want ErrShortBuffer", name, enc, err)
			}
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("%s: decoding allocated %d bytes", enc, grew)
		}
	}
	r := NewReader(testenv.Hex(t, "dd ffffffff 00"))
	if _, err := r.ReadArrayHeader(); !errors.Is(err, ErrShortBuffer) || r.Offset() != 0 {
		t.Errorf("ReadArrayHeader with hostile count: %v", err)
	}
	r = NewReader(testenv.Hex(t, "df 00000002 00 00 00"))
	if _, err := r.ReadMapHeader(); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("ReadMapHeader of 2 entries in 3 bytes: %v", err)
	}
	var de *DecodeError
	if _, err := Decode(testenv.Hex(t, "a0 a5 61")[1:]); !errors.As(err, &de) || de.Offset != 0 {
		t.Errorf("truncated fixstr: %v, want *DecodeError at offset 0", err)
	}
}

func TestErrorOffsets(t *testing.T) {
	// 93 01 02 | c1: the invalid byte is at offset 3.
	var de *DecodeError
	if _, err := Decode(testenv.Hex(t, "93 01 02 c1")); !errors.As(err, &de) || de.Offset != 3 {
		t.Errorf("error %v, want offset 3", err)
	}
	if _, err := Decode(testenv.Hex(t, "01 02")); !errors.Is(err, ErrTrailing) || !errors.As(err, &de) || de.Offset != 1 {
		t.Errorf("trailing byte: %v, want ErrTrailing at offset 1", err)
	}
	msg := (&TypeError{Want: "int", Got: TypeStr, Offset: 7}).Error()
	if msg != "msgpack: at offset 7: want int, got str" {
		t.Errorf("TypeError message %q", msg)
	}
}

func TestReset(t *testing.T) {
	var r Reader
	if r.Remaining() != 0 {
		t.Error("zero Reader is not empty")
	}
	r.Reset([]byte{0x01, 0x02})
	if v, _ := r.ReadUint(); v != 1 || r.Offset() != 1 {
		t.Errorf("after Reset: %d at %d", v, r.Offset())
	}
	r.Reset([]byte{0x03})
	if v, _ := r.ReadUint(); v != 3 || r.Remaining() != 0 {
		t.Errorf("after second Reset: %d, %d left", v, r.Remaining())
	}
}
