package msgpack

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

// pyMap is a map for Python to pack whose keys need not be strings.
type pyMap [][2]any

// tag converts a Go value into the tagged JSON form testdata/packb.py reads.
func tag(v any) any {
	switch v := v.(type) {
	case nil:
		return []any{"nil"}
	case bool:
		return []any{"bool", v}
	case int64:
		return []any{"int", strconv.FormatInt(v, 10)}
	case uint64:
		return []any{"int", strconv.FormatUint(v, 10)}
	case float64:
		return []any{"float", strconv.FormatUint(math.Float64bits(v), 10)}
	case string:
		return []any{"str", v}
	case []byte:
		return []any{"bin", hex.EncodeToString(v)}
	case Ext:
		return []any{"ext", v.Type, hex.EncodeToString(v.Data)}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = tag(e)
		}
		return []any{"array", out}
	case Map:
		out := make([]any, len(v))
		for i, kv := range v {
			out[i] = []any{tag(kv.Key), tag(kv.Value)}
		}
		return []any{"map", out}
	case pyMap:
		out := make([]any, len(v))
		for i, kv := range v {
			out[i] = []any{tag(kv[0]), tag(kv[1])}
		}
		return []any{"map", out}
	}
	panic(fmt.Sprintf("tag: unsupported %T", v))
}

type pyCase struct {
	Name string         `json:"name"`
	V    any            `json:"v"`
	Opts map[string]any `json:"opts,omitempty"`
}

// canon returns v as Decode would produce it: non-negative integers as
// uint64.
func canon(v any) any {
	switch v := v.(type) {
	case int64:
		if v >= 0 {
			return uint64(v)
		}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = canon(e)
		}
		return out
	case Map:
		out := make(Map, len(v))
		for i, kv := range v {
			out[i] = KV{kv.Key, canon(kv.Value)}
		}
		return out
	}
	return v
}

func seq(n int, f func(i int) any) []any {
	a := make([]any, n)
	for i := range a {
		a[i] = f(i)
	}
	return a
}

// identityValues are encoded by Append and by packb; the bytes must match.
func identityValues() map[string]any {
	vals := map[string]any{
		"nil":   nil,
		"false": false,
		"true":  true,
	}
	for _, c := range intCases {
		if c.big {
			vals["uint_"+strconv.FormatUint(c.u, 10)] = c.u
		} else {
			vals["int_"+strconv.FormatInt(c.v, 10)] = c.v
		}
	}
	for i, f := range []float64{0, math.Copysign(0, -1), 1.5, -2.25, 1e300, 5e-324, math.Inf(1), math.Inf(-1), math.NaN(), 0.1} {
		vals["float_"+strconv.Itoa(i)] = f
	}
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		vals["str_"+strconv.Itoa(n)] = strings.Repeat("s", n)
		vals["bin_"+strconv.Itoa(n)] = bytes.Repeat([]byte{0xb5}, n)
	}
	vals["str_unicode"] = "€ 日本 🙂"
	for _, n := range []int{0, 1, 15, 16, 65535, 65536} {
		vals["array_"+strconv.Itoa(n)] = seq(n, func(i int) any { return uint64(i % 200) })
		m := make(Map, n)
		for i := range m {
			m[i] = KV{Key: "k" + strconv.Itoa(i), Value: int64(-i)}
		}
		vals["map_"+strconv.Itoa(n)] = m
	}
	for _, n := range []int{0, 1, 2, 3, 4, 8, 16, 17, 255, 256, 65536} {
		vals["ext_"+strconv.Itoa(n)] = Ext{Type: 42, Data: bytes.Repeat([]byte{7}, n)}
	}
	vals["probe_message"] = Map{
		{"ts", uint64(1700000000)}, {"type", "telnet"}, {"action", "login"},
		{"ip", "2001:db8::1"}, {"data", Map{{"username", "root"}, {"password", "\u00e9"}}},
		{"ports", []any{uint64(22), uint64(23), uint64(65535)}}, {"score", -0.5}, {"raw", []byte{0, 1}},
	}
	return vals
}

func TestPythonByteIdentity(t *testing.T) {
	vals := identityValues()
	var cases []pyCase
	for name, v := range vals {
		cases = append(cases, pyCase{Name: name, V: tag(v)})
	}
	want := testenv.Packb(t, cases)
	for name, v := range vals {
		got, err := Append(nil, v)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want[name]) {
			t.Errorf("%s: Append differs from packb\n got %.64x\nwant %.64x", name, got, want[name])
			continue
		}
		back, err := Decode(want[name])
		if err != nil || !Equal(back, canon(v)) {
			t.Errorf("%s: Decode of packb output = %.80v, %v", name, back, err)
		}
	}
}

func TestDecodePythonPacked(t *testing.T) {
	text40 := strings.Repeat("t", 40)
	cases := []struct {
		name string
		v    any
		opts map[string]any
		want any
	}{
		// The old raw format has no str8: a 40-byte string becomes raw16.
		{name: "legacy_raw16", v: text40, opts: map[string]any{"use_bin_type": false}, want: text40},
		{name: "legacy_bytes_as_raw", v: []byte("ab"), opts: map[string]any{"use_bin_type": false}, want: "ab"},
		{name: "bin_value", v: []byte("1.2.3.4"), want: []byte("1.2.3.4")},
		{name: "int_and_bin_keys", v: pyMap{{int64(5), "a"}, {[]byte("k"), "b"}, {int64(-3), nil}, {false, true}},
			want: Map{{"5", "a"}, {"k", "b"}, {"-3", nil}, {"false", true}}},
		{name: "extremes", v: []any{uint64(math.MaxUint64), int64(math.MinInt64)},
			want: []any{uint64(math.MaxUint64), int64(math.MinInt64)}},
	}
	var pc []pyCase
	for _, c := range cases {
		pc = append(pc, pyCase{Name: c.name, V: tag(c.v), Opts: c.opts})
	}
	packed := testenv.Packb(t, pc)
	if b := packed["legacy_raw16"]; len(b) < 3 || b[0] != 0xda {
		t.Errorf("expected packb to use raw16 for a 40-byte legacy string, got %x", b[:min(len(b), 3)])
	}
	for _, c := range cases {
		got, err := Decode(packed[c.name])
		if err != nil || !Equal(got, c.want) {
			t.Errorf("%s: Decode(%x) = %#v, %v; want %#v", c.name, packed[c.name], got, err, c.want)
		}
		if _, err := AppendJSON(nil, packed[c.name]); err != nil {
			t.Errorf("%s: AppendJSON: %v", c.name, err)
		}
	}
}
