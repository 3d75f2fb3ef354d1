package msgpack

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// intCases lists every boundary of every integer encoding, with the bytes
// msgpack-python produces (checked against the real library in
// TestPythonByteIdentity).
var intCases = []struct {
	v    int64
	u    uint64 // used when big is set
	big  bool   // value above MaxInt64, held in u
	want string
}{
	{v: 0, want: "00"},
	{v: 1, want: "01"},
	{v: 127, want: "7f"},
	{v: 128, want: "cc 80"},
	{v: 255, want: "cc ff"},
	{v: 256, want: "cd 0100"},
	{v: 65535, want: "cd ffff"},
	{v: 65536, want: "ce 00010000"},
	{v: 1<<32 - 1, want: "ce ffffffff"},
	{v: 1 << 32, want: "cf 0000000100000000"},
	{v: 1<<32 + 5, want: "cf 0000000100000005"},
	{v: math.MaxInt64, want: "cf 7fffffffffffffff"},
	{big: true, u: 1 << 63, want: "cf 8000000000000000"},
	{big: true, u: math.MaxUint64, want: "cf ffffffffffffffff"},
	{v: -1, want: "ff"},
	{v: -32, want: "e0"},
	{v: -33, want: "d0 df"},
	{v: -128, want: "d0 80"},
	{v: -129, want: "d1 ff7f"},
	{v: -32768, want: "d1 8000"},
	{v: -32769, want: "d2 ffff7fff"},
	{v: math.MinInt32, want: "d2 80000000"},
	{v: math.MinInt32 - 1, want: "d3 ffffffff7fffffff"},
	{v: math.MinInt64, want: "d3 8000000000000000"},
}

func TestAppendIntegers(t *testing.T) {
	for _, c := range intCases {
		want := testenv.Hex(t, c.want)
		if c.big {
			if got := AppendUint(nil, c.u); !bytes.Equal(got, want) {
				t.Errorf("AppendUint(%d) = %x, want %x", c.u, got, want)
			}
			continue
		}
		if got := AppendInt(nil, c.v); !bytes.Equal(got, want) {
			t.Errorf("AppendInt(%d) = %x, want %x", c.v, got, want)
		}
		if c.v >= 0 {
			if got := AppendUint(nil, uint64(c.v)); !bytes.Equal(got, want) {
				t.Errorf("AppendUint(%d) = %x, want %x", c.v, got, want)
			}
		}
	}
}

func TestAppendAppends(t *testing.T) {
	// Every Append function must keep what b already holds.
	prefix := []byte{0xde, 0xad}
	for name, f := range map[string]func([]byte) []byte{
		"Nil":         AppendNil,
		"Bool":        func(b []byte) []byte { return AppendBool(b, true) },
		"Uint":        func(b []byte) []byte { return AppendUint(b, 1<<40) },
		"Int":         func(b []byte) []byte { return AppendInt(b, -1<<40) },
		"Float64":     func(b []byte) []byte { return AppendFloat64(b, 1.5) },
		"Float32":     func(b []byte) []byte { return AppendFloat32(b, 1.5) },
		"String":      func(b []byte) []byte { return AppendString(b, "x") },
		"StringBytes": func(b []byte) []byte { return AppendStringBytes(b, []byte("x")) },
		"Bytes":       func(b []byte) []byte { return AppendBytes(b, []byte("x")) },
		"Array":       func(b []byte) []byte { return AppendArrayHeader(b, 70000) },
		"Map":         func(b []byte) []byte { return AppendMapHeader(b, 70000) },
		"Ext":         func(b []byte) []byte { return AppendExt(b, 3, []byte("xyz")) },
	} {
		got := f(bytes.Clone(prefix))
		alone := f(nil)
		if !bytes.Equal(got, append(bytes.Clone(prefix), alone...)) {
			t.Errorf("Append%s: got %x, want %x followed by %x", name, got, prefix, alone)
		}
	}
}

func TestAppendScalars(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"nil", AppendNil(nil), "c0"},
		{"false", AppendBool(nil, false), "c2"},
		{"true", AppendBool(nil, true), "c3"},
		{"float64 1.5", AppendFloat64(nil, 1.5), "cb 3ff8000000000000"},
		{"float64 -0", AppendFloat64(nil, math.Copysign(0, -1)), "cb 8000000000000000"},
		{"float64 +Inf", AppendFloat64(nil, math.Inf(1)), "cb 7ff0000000000000"},
		{"float32 1.5", AppendFloat32(nil, 1.5), "ca 3fc00000"},
	} {
		if want := testenv.Hex(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("%s: got %x, want %x", c.name, c.got, want)
		}
	}
}

func TestAppendLengths(t *testing.T) {
	for _, c := range []struct {
		n                        int
		str, bin, array, mapHead string
	}{
		{0, "a0", "c4 00", "90", "80"},
		{1, "a1", "c4 01", "91", "81"},
		{15, "af", "c4 0f", "9f", "8f"},
		{16, "b0", "c4 10", "dc 0010", "de 0010"},
		{31, "bf", "c4 1f", "dc 001f", "de 001f"},
		{32, "d9 20", "c4 20", "dc 0020", "de 0020"},
		{255, "d9 ff", "c4 ff", "dc 00ff", "de 00ff"},
		{256, "da 0100", "c5 0100", "dc 0100", "de 0100"},
		{65535, "da ffff", "c5 ffff", "dc ffff", "de ffff"},
		{65536, "db 00010000", "c6 00010000", "dd 00010000", "df 00010000"},
	} {
		data := bytes.Repeat([]byte{'x'}, c.n)
		check := func(kind string, got []byte, head string, payload []byte) {
			t.Helper()
			want := append(testenv.Hex(t, head), payload...)
			if !bytes.Equal(got, want) {
				t.Errorf("%s of %d: got header %x, want %x", kind, c.n, got[:min(len(got), 5)], want[:min(len(want), 5)])
			}
		}
		check("AppendString", AppendString(nil, string(data)), c.str, data)
		check("AppendStringBytes", AppendStringBytes(nil, data), c.str, data)
		check("AppendBytes", AppendBytes(nil, data), c.bin, data)
		check("AppendArrayHeader", AppendArrayHeader(nil, c.n), c.array, nil)
		check("AppendMapHeader", AppendMapHeader(nil, c.n), c.mapHead, nil)
	}
}

func TestAppendExt(t *testing.T) {
	for _, c := range []struct {
		n    int
		head string
	}{
		{0, "c7 00 05"},
		{1, "d4 05"},
		{2, "d5 05"},
		{3, "c7 03 05"},
		{4, "d6 05"},
		{8, "d7 05"},
		{16, "d8 05"},
		{17, "c7 11 05"},
		{256, "c8 0100 05"},
		{65536, "c9 00010000 05"},
	} {
		data := bytes.Repeat([]byte{0xaa}, c.n)
		want := append(testenv.Hex(t, c.head), data...)
		if got := AppendExt(nil, 5, data); !bytes.Equal(got, want) {
			t.Errorf("AppendExt of %d bytes: got %x, want %x", c.n, got[:min(len(got), 8)], want[:min(len(want), 8)])
		}
	}
	if got, want := AppendExt(nil, -1, make([]byte, 4)), testenv.Hex(t, "d6 ff 00000000"); !bytes.Equal(got, want) {
		t.Errorf("timestamp ext: got %x, want %x", got, want)
	}
}

func TestAppendHeaderPanicsOnNegative(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AppendArrayHeader(-1) did not panic")
		}
	}()
	AppendArrayHeader(nil, -1)
}

func TestAppendGeneric(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, "c0"},
		{"bool", true, "c3"},
		{"int", int(-33), "d0 df"},
		{"int8", int8(-1), "ff"},
		{"int16", int16(300), "cd 012c"},
		{"int32", int32(-40000), "d2 ffff63c0"},
		{"int64 non-negative uses uint encodings", int64(200), "cc c8"},
		{"uint", uint(7), "07"},
		{"uint8", uint8(200), "cc c8"},
		{"uint16", uint16(70), "46"},
		{"uint32", uint32(70000), "ce 00011170"},
		{"uint64", uint64(math.MaxUint64), "cf ffffffffffffffff"},
		{"float32", float32(1.5), "ca 3fc00000"},
		{"float64", 1.5, "cb 3ff8000000000000"},
		{"string", "ab", "a2 6162"},
		{"bytes", []byte("ab"), "c4 02 6162"},
		{"ext", Ext{Type: 1, Data: []byte{9}}, "d4 01 09"},
		{"strings", []string{"a", ""}, "92 a1 61 a0"},
		{"array", []any{1, "a", nil}, "93 01 a1 61 c0"},
		{"ordered map keeps order", Map{{"z", 1}, {"a", 2}}, "82 a1 7a 01 a1 61 02"},
		{"go map sorts keys", map[string]any{"z": 1, "a": 2}, "82 a1 61 02 a1 7a 01"},
		{"nested", Map{{"l", []any{Map{}}}}, "81 a1 6c 91 80"},
	} {
		got, err := Append([]byte{0x01}, c.v)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if want := append([]byte{0x01}, testenv.Hex(t, c.want)...); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", c.name, got, want)
		}
	}
}

func TestAppendGenericErrors(t *testing.T) {
	prefix := []byte{1, 2, 3}
	for _, c := range []struct {
		name string
		v    any
		is   error
	}{
		{"unsupported type", struct{}{}, nil},
		{"unsupported nested", []any{1, map[int]int{}}, nil},
		{"too deep", nest(MaxDepth + 1), ErrTooDeep},
		{"self reference", selfRef(), ErrTooDeep},
	} {
		got, err := Append(prefix, c.v)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %v is not %v", c.name, err, c.is)
		}
		if !bytes.Equal(got, prefix) {
			t.Errorf("%s: returned %x, want the input %x unchanged", c.name, got, prefix)
		}
	}
	if _, err := Append(nil, nest(MaxDepth)); err != nil {
		t.Errorf("nesting of exactly MaxDepth: %v", err)
	}
}

// nest returns n arrays nested in each other.
func nest(n int) any {
	var v any = "leaf"
	for range n {
		v = []any{v}
	}
	return v
}

func selfRef() any {
	a := []any{nil}
	a[0] = a
	return a
}
