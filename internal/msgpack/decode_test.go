package msgpack

import (
	"bytes"
	"math"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name string
		enc  string
		want any
	}{
		{"nil", "c0", nil},
		{"true", "c3", true},
		{"positive fixint is uint64", "05", uint64(5)},
		{"non-negative signed encoding is uint64", "d3 0000000000000005", uint64(5)},
		{"negative fixint is int64", "ff", int64(-1)},
		{"int64 min", "d3 8000000000000000", int64(math.MinInt64)},
		{"uint64 max", "cf ffffffffffffffff", uint64(math.MaxUint64)},
		{"float32 widens", "ca 3fc00000", 1.5},
		{"float64", "cb 4000000000000000", 2.0},
		{"str", "a3 616263", "abc"},
		{"str keeps invalid UTF-8", "a2 ff fe", "\xff\xfe"},
		{"str8", "d9 01 61", "a"},
		{"bin", "c4 02 0001", []byte{0, 1}},
		{"empty bin", "c4 00", []byte{}},
		{"timestamp ext", "d6 ff 00000001", Ext{Type: -1, Data: []byte{0, 0, 0, 1}}},
		{"ext8", "c7 02 05 abcd", Ext{Type: 5, Data: []byte{0xab, 0xcd}}},
		{"array", "93 01 a1 61 c0", []any{uint64(1), "a", nil}},
		{"array16", "dc 0001 c2", []any{false}},
		{"empty map", "80", Map{}},
		{"map keeps order", "82 a1 7a 01 a1 61 02", Map{{"z", uint64(1)}, {"a", uint64(2)}}},
		{"map keeps duplicates", "82 a1 61 01 a1 61 02", Map{{"a", uint64(1)}, {"a", uint64(2)}}},
		{"bin key", "81 c4 01 6b 01", Map{{"k", uint64(1)}}},
		{"int key", "81 05 01", Map{{"5", uint64(1)}}},
		{"negative key", "81 ff 01", Map{{"-1", uint64(1)}}},
		{"nil key", "81 c0 01", Map{{"<nil>", uint64(1)}}},
		{"bool key", "81 c3 01", Map{{"true", uint64(1)}}},
		{"float key", "81 cb 3ff8000000000000 01", Map{{"1.5", uint64(1)}}},
		{"array key", "81 92 01 a1 61 01", Map{{"[1 a]", uint64(1)}}},
		{"map key", "81 81 a1 6b c0 01", Map{{"[{k <nil>}]", uint64(1)}}},
		{"map16", "de 0001 a1 6b 90", Map{{"k", []any{}}}},
	} {
		got, err := Decode(testenv.Hex(t, c.enc))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !Equal(got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, got, c.want)
		}
	}
}

func TestDecodeCopies(t *testing.T) {
	in := testenv.Hex(t, "93 a1 61 c4 01 62 d4 01 63")
	v, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0
	}
	want := []any{"a", []byte("b"), Ext{Type: 1, Data: []byte("c")}}
	if !Equal(v, want) {
		t.Errorf("decoded value changed with its input: %#v", v)
	}
}

func TestReadValueLeavesReaderOnError(t *testing.T) {
	r := NewReader(testenv.Hex(t, "01 92 01"))
	if v, err := r.ReadValue(); err != nil || v != uint64(1) {
		t.Fatalf("first value: %v, %v", v, err)
	}
	if _, err := r.ReadValue(); err == nil {
		t.Fatal("truncated array decoded")
	}
	if r.Offset() != 1 {
		t.Errorf("failed ReadValue left the reader at %d, want 1", r.Offset())
	}
}

func TestAppendDecodeRoundTrip(t *testing.T) {
	for _, v := range []any{
		nil, true, uint64(0), int64(-1), uint64(math.MaxUint64), int64(math.MinInt64),
		math.NaN(), math.Inf(-1), math.Copysign(0, -1), "", "text", []byte{}, []byte{0xff},
		Ext{Type: -1, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		[]any{}, Map{}, Map{{"a", []any{Map{{"b", nil}}}}, {"a", "dup"}},
	} {
		b, err := Append(nil, v)
		if err != nil {
			t.Errorf("Append(%#v): %v", v, err)
			continue
		}
		got, err := Decode(b)
		if err != nil || !Equal(got, v) {
			t.Errorf("Decode(Append(%#v)) = %#v, %v", v, got, err)
		}
	}
}

func TestEqual(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		a, b any
		want bool
	}{
		{nil, nil, true},
		{nil, uint64(0), false},
		{uint64(1), int64(1), false},
		{nan, nan, true},
		{0.0, math.Copysign(0, -1), false},
		{[]byte{}, []byte(nil), true},
		{[]byte{1}, "\x01", false},
		{[]any{uint64(1)}, []any{uint64(1)}, true},
		{[]any{uint64(1)}, []any{uint64(1), nil}, false},
		{Map{{"a", nil}}, Map{{"b", nil}}, false},
		{Map{{"a", nil}}, Map{{"a", nil}}, true},
		{Ext{1, []byte{2}}, Ext{1, []byte{2}}, true},
		{Ext{1, []byte{2}}, Ext{2, []byte{2}}, false},
		{struct{}{}, struct{}{}, false},
	} {
		if got := Equal(c.a, c.b); got != c.want {
			t.Errorf("Equal(%#v, %#v) = %v", c.a, c.b, got)
		}
	}
}

func TestMapGet(t *testing.T) {
	m := Map{{"a", uint64(1)}, {"b", "x"}, {"a", uint64(2)}}
	if v, ok := m.Get("a"); !ok || v != uint64(1) {
		t.Errorf("Get(a) = %v, %v; want the first entry", v, ok)
	}
	if _, ok := m.Get("c"); ok {
		t.Error("Get(c) found a missing key")
	}
}

func TestDecodeLargeArrayOfStrings(t *testing.T) {
	// A whole-list-sized input through Decode, checking sizes rather than
	// speed (see the benchmarks).
	const n = 100000
	b := AppendArrayHeader(nil, n)
	for i := range n {
		b = AppendString(b, string(rune('a'+i%26)))
	}
	v, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	a := v.([]any)
	if len(a) != n || a[27] != "b" {
		t.Errorf("got %d elements, a[27] = %v", len(a), a[27])
	}
	if !bytes.Equal(b[:5], []byte{0xdd, 0, 1, 0x86, 0xa0}) {
		t.Errorf("array32 header %x", b[:5])
	}
}
