package journal

import (
	"bytes"
	"testing"
)

func seedSegment() []byte {
	b := segHeader(7, segAtSnapshot)
	for _, r := range []string{"a", "bb", "", "record-000001"} {
		var h [recHeaderLen]byte
		putRecordHeader(&h, []byte(r))
		b = append(append(b, h[:]...), r...)
	}
	return b
}

// FuzzReadSegment: any bytes under a segment's name are read without a
// panic, and every record returned verifies where it was found.
func FuzzReadSegment(f *testing.F) {
	f.Add(seedSegment())
	f.Add(seedSegment()[:30])
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0, 0, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := readSegment(b, 7)
		var n int64
		for _, r := range s.records {
			if !bytes.Contains(b, r) {
				t.Fatalf("record %q not in the input", r)
			}
			n += int64(len(r))
		}
		if s.good > int64(len(b)) || s.tail < 0 || s.skipped < 0 || n > int64(len(b)) {
			t.Fatalf("%+v for %d bytes", s, len(b))
		}
	})
}

// FuzzParseSnapshot: any bytes under a snapshot's name are verified
// without a panic; what verifies re-encodes to the same bytes.
func FuzzParseSnapshot(f *testing.F) {
	f.Add(append(snapHeader(3, true, []byte("state")), "state"...))
	f.Add([]byte(snapMagicV1 + "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		data, clean, err := parseSnapshot(b, 3)
		if err != nil || !bytes.HasPrefix(b, []byte(snapMagic)) {
			return
		}
		if again := append(snapHeader(3, clean, data), data...); !bytes.Equal(again, b) {
			t.Fatalf("verified snapshot does not re-encode to itself")
		}
	})
}
