package msgpack

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dynfw/sentinel/internal/testenv"
)

func TestAppendJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		enc  string
		want string
	}{
		{"nil", "c0", `null`},
		{"bools", "92 c2 c3", `[false,true]`},
		{"uint64 max", "cf ffffffffffffffff", `18446744073709551615`},
		{"int64 min", "d3 8000000000000000", `-9223372036854775808`},
		{"wide small int", "d3 0000000000000005", `5`},
		{"float64", "cb 3ff8000000000000", `1.5`},
		{"float64 integral", "cb 4059000000000000", `100`},
		{"float64 huge", "cb 7fefffffffffffff", `1.7976931348623157e+308`},
		{"float64 tiny", "cb 0000000000000001", `5e-324`},
		{"float32 at its own precision", "ca 3dcccccd", `0.1`},
		{"NaN", "cb 7ff8000000000001", `null`},
		{"+Inf", "cb 7ff0000000000000", `null`},
		{"-Inf float32", "ca ff800000", `null`},
		{"empty str", "a0", `""`},
		{"escapes", "a8 22 5c 0a 0d 09 08 0c 01", `"\"\\\n\r\t\u0008\u000c\u0001"`},
		{"DEL and slash pass", "a2 7f 2f", "\"\x7f/\""},
		{"utf-8 kept", "a3 e282ac", `"€"`},
		{"invalid utf-8 replaced", "a3 61 ff 62", "\"a\ufffdb\""},
		{"truncated rune replaced", "a2 e2 82", "\"\ufffd\ufffd\""},
		{"surrogate replaced", "a3 eda080", "\"\ufffd\ufffd\ufffd\""},
		{"line separators escaped", "a6 e280a8 e280a9", `"\u2028\u2029"`},
		{"bin text", "c4 02 6869", `"hi"`},
		{"bin binary", "c4 03 00ff10", `"base64:AP8Q"`},
		{"bin control chars are text", "c4 01 00", `"\u0000"`},
		{"ext", "d6 ff 00000001", `"ext:-1:base64:AAAAAQ=="`},
		{"array", "93 01 a1 61 90", `[1,"a",[]]`},
		{"map keeps order and duplicates", "83 a1 7a 01 a1 61 02 a1 7a 03", `{"z":1,"a":2,"z":3}`},
		{"empty map", "80", `{}`},
		{"int key", "81 05 c0", `{"5":null}`},
		{"nil key", "81 c0 c0", `{"<nil>":null}`},
		{"array key", "81 92 01 a1 61 c0", `{"[1 a]":null}`},
		{"map key", "81 81 a1 6b 01 c0", `{"[{k 1}]":null}`},
		{"bin key", "81 c4 01 6b 01", `{"k":1}`},
		{"binary bin key", "81 c4 01 ff 01", `{"base64:/w==":1}`},
		{"delta", "84 a6 73657269616c 01 a5 64656c7461 a8 706f736974697665 a2 6970 a7 312e322e332e34 a2 7473 ce 6553f100",
			`{"serial":1,"delta":"positive","ip":"1.2.3.4","ts":1700000000}`},
	} {
		got, err := AppendJSON([]byte("prefix:"), testenv.Hex(t, c.enc))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != "prefix:"+c.want {
			t.Errorf("%s:\n got %s\nwant prefix:%s", c.name, got, c.want)
		}
		if !json.Valid(got[len("prefix:"):]) {
			t.Errorf("%s: invalid JSON %s", c.name, got)
		}
	}
}

func TestAppendJSONStringsRoundTrip(t *testing.T) {
	// Every valid string must come back unchanged through encoding/json.
	for _, s := range []string{
		"", "plain", "quote\" backslash\\ slash/", "\x00\x1f\x7f", "tab\tnl\n",
		"日本語", "emoji 🙂", "\u2028\u2029", strings.Repeat("x", 70000),
	} {
		out, err := AppendJSON(nil, AppendString(nil, s))
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != s {
			t.Errorf("%q: JSON %s decodes to %q, %v", s, out, back, err)
		}
	}
}

func TestAppendJSONErrors(t *testing.T) {
	for _, c := range []struct {
		enc string
		is  error
	}{
		{"", ErrShortBuffer},
		{"01 02", ErrTrailing},
		{"c1", ErrInvalidCode},
		{"81 a1 6b", ErrShortBuffer},
		{"81 92 01", ErrShortBuffer},
	} {
		dst := []byte("keep")
		out, err := AppendJSON(dst, testenv.Hex(t, c.enc))
		if !errors.Is(err, c.is) {
			t.Errorf("%q: %v, want %v", c.enc, err, c.is)
		}
		if string(out) != "keep" {
			t.Errorf("%q: returned %q, want dst unchanged", c.enc, out)
		}
	}
}

func TestNestedKeysDoNotAmplify(t *testing.T) {
	// Maps used as keys of maps used as keys, MaxDepth-1 levels: rendering
	// must stay linear in the input (escaping per level would double it each
	// time).
	const levels = MaxDepth - 1
	b := append(bytes.Repeat([]byte{0x81}, levels), bytes.Repeat([]byte{0xc0}, levels+1)...)
	out, err := AppendJSON(nil, b)
	if err != nil || len(out) > 100*len(b) || !json.Valid(out) {
		t.Errorf("%d bytes of nested keys gave %d bytes of JSON, %v", len(b), len(out), err)
	}
	v, err := Decode(b)
	if err != nil || len(v.(Map)[0].Key) > 100*len(b) {
		t.Errorf("Decode of nested keys: %v", err)
	}
}
