package passwords

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"time"
)

// Index is an open, immutable index file. Lookups on a memory-mapped index
// are zero-copy and allocation-free; where mapping fails (32-bit address
// space, other systems) it falls back to one ReadAt per lookup. An Index is
// safe for concurrent use; Close must not race with lookups.
type Index struct {
	f      *os.File
	path   string
	hdr    header
	size   int64
	mapped []byte // the whole file, or nil in ReadAt mode
	table  []byte // the offset table
}

// Open opens and checks an index file: header, size and offset table. A
// truncated, overwritten or foreign file gives an error wrapping ErrCorrupt.
func Open(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	ix, err := openFile(f, path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("password index %s: %w", path, err)
	}
	return ix, nil
}

func openFile(f *os.File, path string) (*Index, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	hb := make([]byte, headerSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: file of %d bytes is shorter than the %d-byte header", ErrCorrupt, size, headerSize)
		}
		return nil, err
	}
	hdr, err := decodeHeader(hb)
	if err != nil {
		return nil, err
	}
	if hdr.records > uint64(math.MaxInt64-dataOffset)/recordSize {
		return nil, fmt.Errorf("%w: implausible record count %d", ErrCorrupt, hdr.records)
	}
	if want := int64(dataOffset) + int64(hdr.records)*recordSize; size != want {
		return nil, fmt.Errorf("%w: size %d bytes, want %d for %d records (truncated or overwritten?)", ErrCorrupt, size, want, hdr.records)
	}
	ix := &Index{f: f, path: path, hdr: hdr, size: size}
	if m, err := mmapFile(f, size); err == nil {
		ix.mapped = m
		ix.table = m[headerSize:dataOffset]
	} else {
		ix.table = make([]byte, tableSize)
		if _, err := f.ReadAt(ix.table, headerSize); err != nil {
			return nil, err
		}
	}
	if err := ix.checkTable(); err != nil {
		ix.unmap()
		return nil, err
	}
	return ix, nil
}

func (ix *Index) checkTable() error {
	if crc32.Checksum(ix.table, castagnoli) != ix.hdr.tableCRC {
		return fmt.Errorf("%w: offset table checksum mismatch", ErrCorrupt)
	}
	var prev uint64
	for p := 0; p < tableEntries; p++ {
		v := binary.LittleEndian.Uint64(ix.table[8*p:])
		if v < prev || v > ix.hdr.records {
			return fmt.Errorf("%w: offset table entry %d out of order", ErrCorrupt, p)
		}
		prev = v
	}
	if binary.LittleEndian.Uint64(ix.table) != 0 || prev != ix.hdr.records {
		return fmt.Errorf("%w: offset table does not cover the %d records", ErrCorrupt, ix.hdr.records)
	}
	return nil
}

func (ix *Index) unmap() {
	if ix.mapped != nil {
		_ = munmap(ix.mapped)
		ix.mapped = nil
	}
}

// Close unmaps and closes the file. Buckets obtained from the index must
// not be used afterwards.
func (ix *Index) Close() error {
	if ix == nil {
		return nil
	}
	ix.unmap()
	ix.table = nil
	return ix.f.Close()
}

// Path is the file the index was opened from.
func (ix *Index) Path() string { return ix.path }

// Len is the number of distinct hashes.
func (ix *Index) Len() uint64 { return ix.hdr.records }

// Size is the file size in bytes.
func (ix *Index) Size() int64 { return ix.size }

// Mapped reports whether lookups are served from a memory mapping.
func (ix *Index) Mapped() bool { return ix.mapped != nil }

// Warm touches every page of a mapped index, so that later lookups do not
// take page faults (the file must fit in the page cache to stay warm). It
// returns the number of bytes touched.
func (ix *Index) Warm() int64 {
	var sum byte
	m := ix.mapped
	for i := 0; i < len(m); i += 4096 {
		sum += m[i]
	}
	runtime.KeepAlive(sum)
	return int64(len(m))
}

// Watermark is the time up to which stored password events are included in
// the file (zero if unknown): events stored from then on must be replayed
// into the live layer of a Corpus after a restart.
func (ix *Index) Watermark() time.Time {
	if ix.hdr.watermark == 0 {
		return time.Time{}
	}
	return time.Unix(0, ix.hdr.watermark)
}

func (ix *Index) bounds(prefix uint32) (lo, hi uint64) {
	return binary.LittleEndian.Uint64(ix.table[8*prefix:]), binary.LittleEndian.Uint64(ix.table[8*prefix+8:])
}

// Bucket is the sorted records of one 20-bit prefix. On a mapped index it
// points into the mapping and is valid until the index is closed.
type Bucket struct {
	prefix uint32
	recs   []byte
}

// Prefix is the 20-bit prefix of every hash in the bucket.
func (b Bucket) Prefix() uint32 { return b.prefix }

// Len is the number of hashes in the bucket.
func (b Bucket) Len() int { return len(b.recs) / recordSize }

// At decodes the i-th entry, in hash order.
func (b Bucket) At(i int) Entry { return getRecord(b.recs[i*recordSize:], b.prefix) }

// search returns the position of the first record whose stored suffix is
// not below suffix (bytes 2..19 of a hash).
func (b Bucket) search(suffix []byte) int {
	return sort.Search(b.Len(), func(i int) bool {
		return bytes.Compare(b.recs[i*recordSize:i*recordSize+suffixSize], suffix) >= 0
	})
}

// Range returns the bucket of a 20-bit prefix (0 ≤ prefix < NumBuckets).
func (ix *Index) Range(prefix uint32) (Bucket, error) {
	if prefix >= NumBuckets {
		return Bucket{}, fmt.Errorf("prefix %#x out of range", prefix)
	}
	lo, hi := ix.bounds(prefix)
	b := Bucket{prefix: prefix}
	if lo == hi {
		return b, nil
	}
	start := int64(dataOffset) + int64(lo)*recordSize
	n := int64(hi-lo) * recordSize
	if ix.mapped != nil {
		b.recs = ix.mapped[start : start+n : start+n]
		return b, nil
	}
	b.recs = make([]byte, n)
	if _, err := ix.f.ReadAt(b.recs, start); err != nil {
		return Bucket{}, fmt.Errorf("password index %s: %w", ix.path, err)
	}
	return b, nil
}

// Lookup finds one hash.
func (ix *Index) Lookup(h Hash) (Entry, bool, error) {
	b, err := ix.Range(h.Prefix())
	if err != nil {
		return Entry{}, false, err
	}
	i := b.search(h[2:])
	if i < b.Len() && bytes.Equal(b.recs[i*recordSize:i*recordSize+suffixSize], h[2:]) {
		return b.At(i), true, nil
	}
	return Entry{}, false, nil
}

// scan calls fn for every entry in hash order, reading the file
// sequentially (not through the mapping, so that a compaction does not
// evict the hot pages of the mapping).
func (ix *Index) scan(fn func(Entry) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(ix.f, dataOffset, int64(ix.hdr.records)*recordSize), 1<<20)
	var rec [recordSize]byte
	prefix := uint32(0)
	_, next := ix.bounds(0)
	for i := uint64(0); i < ix.hdr.records; i++ {
		for i >= next {
			prefix++
			_, next = ix.bounds(prefix)
		}
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			return fmt.Errorf("password index %s: %w", ix.path, err)
		}
		if err := fn(getRecord(rec[:], prefix)); err != nil {
			return err
		}
	}
	return nil
}

// Verify reads the whole file and checks the record checksum, the order and
// uniqueness of the hashes, and that each record is in its bucket.
func (ix *Index) Verify() error {
	crc := crc32.New(castagnoli)
	r := io.TeeReader(io.NewSectionReader(ix.f, dataOffset, int64(ix.hdr.records)*recordSize), crc)
	br := bufio.NewReaderSize(r, 1<<20)
	var rec [recordSize]byte
	var prev Hash
	prefix := uint32(0)
	_, next := ix.bounds(0)
	for i := uint64(0); i < ix.hdr.records; i++ {
		for i >= next {
			prefix++
			_, next = ix.bounds(prefix)
		}
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			return fmt.Errorf("password index %s: %w", ix.path, err)
		}
		if uint32(rec[0]>>4) != prefix&0xf {
			return fmt.Errorf("password index %s: %w: record %d is not in bucket %05x", ix.path, ErrCorrupt, i, prefix)
		}
		e := getRecord(rec[:], prefix)
		if i > 0 && bytes.Compare(e.Hash[:], prev[:]) <= 0 {
			return fmt.Errorf("password index %s: %w: record %d out of order", ix.path, ErrCorrupt, i)
		}
		prev = e.Hash
	}
	if crc.Sum32() != ix.hdr.dataCRC {
		return fmt.Errorf("password index %s: %w: record checksum mismatch", ix.path, ErrCorrupt)
	}
	return nil
}
