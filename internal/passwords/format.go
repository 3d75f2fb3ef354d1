package passwords

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Layout constants of the index file; see the package documentation.
const (
	magic        = "SNTLPWIX"
	version      = 1
	headerSize   = 64
	PrefixBits   = 20               // bits of the bucket prefix: 5 hex digits
	NumBuckets   = 1 << PrefixBits  // buckets of the range API
	tableEntries = NumBuckets + 1   // one extra entry holds the total
	tableSize    = 8 * tableEntries // bytes of the offset table
	dataOffset   = headerSize + tableSize
	suffixSize   = 18 // bytes 2..19 of the hash
	recordSize   = suffixSize + 4 + 4 + 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error about a malformed index file.
var ErrCorrupt = errors.New("corrupt password index")

// Hash is a SHA-1 digest.
type Hash [20]byte

// String is the hash as 40 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Prefix is the 20-bit bucket of the hash (its first 5 hex digits).
func (h Hash) Prefix() uint32 {
	return uint32(h[0])<<12 | uint32(h[1])<<4 | uint32(h[2])>>4
}

// ParseHash parses 40 hex digits of either case.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 40 {
		return h, fmt.Errorf("hash %q: want 40 hex digits", s)
	}
	for i := 0; i < 40; i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return h, fmt.Errorf("hash %q: not hex", s)
		}
		h[i/2] = hi<<4 | lo
	}
	return h, nil
}

// ParsePrefix parses a 5-hex-digit range prefix of either case.
func ParsePrefix(s string) (uint32, bool) {
	if len(s) != 5 {
		return 0, false
	}
	var p uint32
	for i := 0; i < 5; i++ {
		v, ok := unhex(s[i])
		if !ok {
			return 0, false
		}
		p = p<<4 | uint32(v)
	}
	return p, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Entry is one hash of the corpus.
type Entry struct {
	Hash Hash
	// Count is how often the honeypots saw the password.
	Count uint64
	// HIBP is the count imported from a Have I Been Pwned download.
	HIBP uint64
	// Sources are the honeypots that saw it (none for HIBP-only entries).
	Sources Source
}

// Total is the honeypot and the imported count together, as the range API
// reports it.
func (e Entry) Total() uint64 { return satAdd(e.Count, e.HIBP) }

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

func sat32(v uint64) uint32 {
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// merge adds o into e (same hash): counts sum, sources OR.
func (e *Entry) merge(o Entry) {
	e.Count = satAdd(e.Count, o.Count)
	e.HIBP = satAdd(e.HIBP, o.HIBP)
	e.Sources |= o.Sources
}

// putRecord encodes e into a recordSize buffer.
func putRecord(b []byte, e *Entry) {
	_ = b[recordSize-1]
	copy(b[:suffixSize], e.Hash[2:])
	binary.LittleEndian.PutUint32(b[18:], sat32(e.Count))
	binary.LittleEndian.PutUint32(b[22:], sat32(e.HIBP))
	b[26] = byte(e.Sources)
}

// getRecord decodes a record of bucket prefix.
func getRecord(b []byte, prefix uint32) Entry {
	_ = b[recordSize-1]
	var e Entry
	e.Hash[0] = byte(prefix >> 12)
	e.Hash[1] = byte(prefix >> 4)
	copy(e.Hash[2:], b[:suffixSize])
	e.Count = uint64(binary.LittleEndian.Uint32(b[18:]))
	e.HIBP = uint64(binary.LittleEndian.Uint32(b[22:]))
	e.Sources = Source(b[26])
	return e
}

// header is the decoded file header.
type header struct {
	records   uint64
	watermark int64
	tableCRC  uint32
	dataCRC   uint32
}

func (h *header) encode() []byte {
	b := make([]byte, headerSize)
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:], version)
	binary.LittleEndian.PutUint32(b[12:], PrefixBits)
	binary.LittleEndian.PutUint32(b[16:], recordSize)
	binary.LittleEndian.PutUint64(b[24:], h.records)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.watermark))
	binary.LittleEndian.PutUint32(b[40:], h.tableCRC)
	binary.LittleEndian.PutUint32(b[44:], h.dataCRC)
	binary.LittleEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
	return b
}

func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("%w: file shorter than its %d-byte header", ErrCorrupt, headerSize)
	}
	if !bytes.Equal(b[:8], []byte(magic)) {
		return h, fmt.Errorf("%w: bad magic %q (not a password index)", ErrCorrupt, b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != version {
		return h, fmt.Errorf("%w: unsupported version %d (want %d)", ErrCorrupt, v, version)
	}
	if got, want := binary.LittleEndian.Uint32(b[60:]), crc32.Checksum(b[:60], castagnoli); got != want {
		return h, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if pb, rs := binary.LittleEndian.Uint32(b[12:]), binary.LittleEndian.Uint32(b[16:]); pb != PrefixBits || rs != recordSize {
		return h, fmt.Errorf("%w: prefix bits %d / record size %d, want %d / %d", ErrCorrupt, pb, rs, PrefixBits, recordSize)
	}
	h.records = binary.LittleEndian.Uint64(b[24:])
	h.watermark = int64(binary.LittleEndian.Uint64(b[32:]))
	h.tableCRC = binary.LittleEndian.Uint32(b[40:])
	h.dataCRC = binary.LittleEndian.Uint32(b[44:])
	return h, nil
}
