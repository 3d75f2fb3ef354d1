package passwords

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// writer writes entries in ascending hash order into a new index file. It
// writes to a temporary file next to the destination and renames it into
// place on commit, so readers see either the old or the complete new file.
// Consecutive entries with the same hash are merged; entries without any
// count are dropped.
type writer struct {
	out, tmp string
	f        *os.File
	bw       *bufio.Writer
	crc      hash.Hash32
	table    []uint64 // table[p] = records before bucket p, filled up to bucket cur
	cur      uint32   // bucket of the last record written
	n        uint64
	pending  Entry
	have     bool
	rec      [recordSize]byte
}

func newWriter(out string) (*writer, error) {
	dir, base := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	w := &writer{out: out, tmp: f.Name(), f: f, crc: crc32.New(castagnoli), table: make([]uint64, tableEntries)}
	if _, err := f.Seek(dataOffset, 0); err != nil {
		w.abort()
		return nil, err
	}
	w.bw = bufio.NewWriterSize(f, 1<<20)
	return w, nil
}

// add appends e, whose hash must not be below the previous one.
func (w *writer) add(e Entry) error {
	if w.have {
		switch c := bytes.Compare(e.Hash[:], w.pending.Hash[:]); {
		case c == 0:
			w.pending.merge(e)
			return nil
		case c < 0:
			return fmt.Errorf("password index writer: hash %s after %s (input not sorted)", e.Hash, w.pending.Hash)
		}
		if err := w.flushPending(); err != nil {
			return err
		}
	}
	w.pending, w.have = e, true
	return nil
}

func (w *writer) flushPending() error {
	e := &w.pending
	w.have = false
	if e.Count == 0 && e.HIBP == 0 {
		return nil
	}
	for p := e.Hash.Prefix(); w.cur < p; {
		w.cur++
		w.table[w.cur] = w.n
	}
	putRecord(w.rec[:], e)
	w.crc.Write(w.rec[:])
	w.n++
	_, err := w.bw.Write(w.rec[:])
	return err
}

// commit finishes the file and renames it over the destination.
func (w *writer) commit(watermark time.Time) (uint64, error) {
	if err := w.finish(watermark); err != nil {
		w.abort()
		return 0, err
	}
	return w.n, nil
}

func (w *writer) finish(watermark time.Time) error {
	if w.have {
		if err := w.flushPending(); err != nil {
			return err
		}
	}
	for w.cur < NumBuckets {
		w.cur++
		w.table[w.cur] = w.n
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	tb := make([]byte, tableSize)
	for i, v := range w.table {
		binary.LittleEndian.PutUint64(tb[8*i:], v)
	}
	h := header{records: w.n, tableCRC: crc32.Checksum(tb, castagnoli), dataCRC: w.crc.Sum32()}
	if !watermark.IsZero() {
		h.watermark = watermark.UnixNano()
	}
	if _, err := w.f.WriteAt(h.encode(), 0); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(tb, headerSize); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	w.f = nil
	if err := os.Rename(w.tmp, w.out); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(w.out)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// abort removes the temporary file.
func (w *writer) abort() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	os.Remove(w.tmp)
}
