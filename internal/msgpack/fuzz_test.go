package msgpack

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func addSeeds(f *testing.F) {
	for _, b := range validMessages(f) {
		// The fuzzer minimises every new input it finds interesting, which
		// takes up to a minute for the 64 KiB messages; those stay in the
		// unit tests.
		if len(b) <= 4096 {
			f.Add(b)
		}
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x00})
	f.Add([]byte{0x81, 0x92, 0x01, 0xc0, 0xc3})
	f.Add([]byte{0xc1})
}

// FuzzReader drives the Reader over arbitrary input: no panics, errors leave
// the Reader in place, and Skip agrees with ReadValue on where a value ends.
func FuzzReader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		skip := NewReader(data)
		serr := skip.Skip()
		val := NewReader(data)
		_, verr := val.ReadValue()
		if verr == nil && (serr != nil || skip.Offset() != val.Offset()) {
			t.Fatalf("ReadValue ended at %d but Skip gave %v at %d", val.Offset(), serr, skip.Offset())
		}
		if serr != nil && verr == nil {
			t.Fatalf("Skip failed (%v) where ReadValue succeeded", serr)
		}
		if serr == nil && verr != nil && !errors.Is(verr, ErrTooDeep) {
			t.Fatalf("ReadValue failed (%v) where Skip succeeded", verr)
		}

		// Walk every value with the typed readers; on any error the reader
		// must not have moved.
		r := NewReader(data)
		for r.Remaining() > 0 {
			before := r.Offset()
			typ, err := r.PeekType()
			if err != nil {
				if r.Offset() != before {
					t.Fatal("PeekType moved the reader")
				}
				return
			}
			switch typ {
			case TypeNil:
				err = r.ReadNil()
			case TypeBool:
				_, err = r.ReadBool()
			case TypeInt:
				// A complete int fits one of the two; only ErrRange may
				// send us to the other.
				_, err = r.ReadUint()
				if errors.Is(err, ErrRange) {
					if _, err = r.ReadInt(); err != nil {
						t.Fatalf("an int is neither a uint64 nor an int64: %v", err)
					}
				}
			case TypeFloat:
				_, err = r.ReadFloat64()
			case TypeStr, TypeBin:
				var s []byte
				s, err = r.ReadStringBytes()
				if err == nil && (cap(s) != len(s) || r.Offset()-before < len(s)) {
					t.Fatalf("string of %d bytes (cap %d) from %d bytes of input", len(s), cap(s), r.Offset()-before)
				}
			case TypeExt:
				_, err = r.ReadExt()
			case TypeArray:
				var n int
				n, err = r.ReadArrayHeader()
				if err == nil && n > r.Remaining() {
					t.Fatalf("array of %d elements with %d bytes left", n, r.Remaining())
				}
			case TypeMap:
				var n int
				n, err = r.ReadMapHeader()
				if err == nil && 2*n > r.Remaining() {
					t.Fatalf("map of %d entries with %d bytes left", n, r.Remaining())
				}
			}
			if err != nil {
				if r.Offset() != before {
					t.Fatalf("failed read of %v moved the reader from %d to %d", typ, before, r.Offset())
				}
				return
			}
			if r.Offset() <= before {
				t.Fatalf("read of %v did not advance", typ)
			}
		}
	})
}

// FuzzDecode checks that whatever Decode accepts, Append re-encodes to bytes
// that decode to an equal value, and that this encoding is a fixed point.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := Append(nil, v)
		if err != nil {
			t.Fatalf("Append of decoded %#v: %v", v, err)
		}
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode of re-encoded %x: %v", enc, err)
		}
		if !Equal(v, v2) {
			t.Fatalf("round trip changed the value:\n%#v\n%#v", v, v2)
		}
		enc2, _ := Append(nil, v2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point: %x then %x", enc, enc2)
		}
	})
}

// FuzzAppendJSON checks that the transcoder always emits valid UTF-8 JSON,
// accepts exactly what Decode accepts, and leaves dst alone on failure.
func FuzzAppendJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := AppendJSON([]byte("x"), data)
		_, derr := Decode(data)
		if (err == nil) != (derr == nil) {
			t.Fatalf("AppendJSON error %v but Decode error %v", err, derr)
		}
		if err != nil {
			if string(out) != "x" {
				t.Fatalf("failed AppendJSON returned %q", out)
			}
			return
		}
		out = out[1:]
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("invalid JSON %q from %x", out, data)
		}
	})
}
