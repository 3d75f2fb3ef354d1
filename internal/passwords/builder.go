package passwords

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// BuilderOptions tune a Builder.
type BuilderOptions struct {
	// TempDir holds the sorted runs (about 29 bytes per added entry);
	// default os.TempDir().
	TempDir string
	// MemoryLimit bounds the in-memory sort buffer in bytes (32 bytes per
	// entry); default 256 MiB. The merge adds 256 KiB per run.
	MemoryLimit int
	// Watermark is stored in the file; see Index.Watermark.
	Watermark time.Time
	// Progress, if set, is called during the final merge with the number
	// of entries merged so far and the number added.
	Progress func(merged, total uint64)
}

// Builder builds an index file from entries in any order, with duplicates.
// Entries are buffered up to the memory limit, sorted, merged and spilled
// to temporary run files; Finish merges the runs into the index, so a build
// of hundreds of millions of entries needs bounded memory and about 29
// bytes of temporary disk per entry. A Builder is not safe for concurrent
// use.
type Builder struct {
	opts  BuilderOptions
	buf   []brec
	limit int
	runs  []string
	added uint64
	done  bool
}

// brec is the compact in-memory form of an entry while building.
type brec struct {
	h       Hash
	count   uint32
	hibp    uint32
	sources Source
}

const runRecordSize = 20 + 4 + 4 + 1

// NewBuilder returns an empty Builder.
func NewBuilder(opts BuilderOptions) *Builder {
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = 256 << 20
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	limit := max(opts.MemoryLimit/32, 1024)
	return &Builder{opts: opts, limit: limit}
}

// Add adds an entry; counts of equal hashes are summed and sources OR'ed.
func (b *Builder) Add(e Entry) error {
	if b.done {
		return errors.New("password index builder: Add after Finish")
	}
	if b.buf == nil {
		// Allocated at full size once: growing by doubling would keep
		// the old arrays as garbage, up to twice the limit. Untouched
		// pages of the fresh allocation cost no memory.
		b.buf = make([]brec, 0, b.limit)
	}
	b.buf = append(b.buf, brec{e.Hash, sat32(e.Count), sat32(e.HIBP), e.Sources})
	b.added++
	if len(b.buf) >= b.limit {
		return b.spill()
	}
	return nil
}

// AddIndex adds every entry of an existing index.
func (b *Builder) AddIndex(ix *Index) error {
	return ix.scan(func(e Entry) error { return b.Add(e) })
}

// Added is the number of entries added so far (before merging).
func (b *Builder) Added() uint64 { return b.added }

func cmpHash(a, b *Hash) int {
	if x, y := binary.BigEndian.Uint64(a[0:]), binary.BigEndian.Uint64(b[0:]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	if x, y := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	x, y := binary.BigEndian.Uint32(a[16:]), binary.BigEndian.Uint32(b[16:])
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// sortBuf sorts the buffer and merges duplicates in place.
func (b *Builder) sortBuf() {
	buf := b.buf
	slices.SortFunc(buf, func(x, y brec) int { return cmpHash(&x.h, &y.h) })
	out := buf[:0]
	for i := range buf {
		if n := len(out); n > 0 && out[n-1].h == buf[i].h {
			o := &out[n-1]
			o.count = sat32(uint64(o.count) + uint64(buf[i].count))
			o.hibp = sat32(uint64(o.hibp) + uint64(buf[i].hibp))
			o.sources |= buf[i].sources
			continue
		}
		out = append(out, buf[i])
	}
	b.buf = out
}

// spill sorts the buffer and writes it as a run file.
func (b *Builder) spill() (err error) {
	b.sortBuf()
	f, err := os.CreateTemp(b.opts.TempDir, "sentinel-pwrun-*")
	if err != nil {
		return fmt.Errorf("password index builder: %w", err)
	}
	b.runs = append(b.runs, f.Name())
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("password index builder: %w", cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var rec [runRecordSize]byte
	for i := range b.buf {
		r := &b.buf[i]
		copy(rec[:20], r.h[:])
		binary.LittleEndian.PutUint32(rec[20:], r.count)
		binary.LittleEndian.PutUint32(rec[24:], r.hibp)
		rec[28] = byte(r.sources)
		if _, err := w.Write(rec[:]); err != nil {
			return fmt.Errorf("password index builder: %w", err)
		}
	}
	b.buf = b.buf[:0]
	if err := w.Flush(); err != nil {
		return fmt.Errorf("password index builder: %w", err)
	}
	return nil
}

// Finish writes the index to out atomically and returns the number of
// distinct hashes. The Builder cannot be reused; its temporary files are
// removed.
func (b *Builder) Finish(ctx context.Context, out string) (uint64, error) {
	if b.done {
		return 0, errors.New("password index builder: Finish called twice")
	}
	b.done = true
	defer b.Close()
	w, err := newWriter(out)
	if err != nil {
		return 0, fmt.Errorf("password index builder: %w", err)
	}
	if err := b.mergeInto(ctx, w); err != nil {
		w.abort()
		return 0, err
	}
	n, err := w.commit(b.opts.Watermark)
	if err != nil {
		return 0, fmt.Errorf("password index builder: %w", err)
	}
	return n, nil
}

func (b *Builder) progress(done uint64) {
	if b.opts.Progress != nil {
		b.opts.Progress(done, b.added)
	}
}

func (b *Builder) mergeInto(ctx context.Context, w *writer) error {
	if len(b.runs) == 0 {
		// Everything fit in memory: no temporary files.
		b.sortBuf()
		for i := range b.buf {
			if i&0xffff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				b.progress(uint64(i))
			}
			r := &b.buf[i]
			if err := w.add(Entry{Hash: r.h, Count: uint64(r.count), HIBP: uint64(r.hibp), Sources: r.sources}); err != nil {
				return err
			}
		}
		b.progress(b.added)
		return nil
	}
	if len(b.buf) > 0 {
		if err := b.spill(); err != nil {
			return err
		}
	}
	b.buf = nil // release the sort buffer before merging
	h := make(runHeap, 0, len(b.runs))
	defer func() {
		for _, r := range h {
			r.f.Close()
		}
	}()
	for _, name := range b.runs {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("password index builder: %w", err)
		}
		r := &runReader{f: f, r: bufio.NewReaderSize(f, 256<<10)}
		ok, err := r.next()
		if err != nil {
			f.Close()
			return err
		}
		if ok {
			h = append(h, r)
		} else {
			f.Close()
		}
	}
	heap.Init(&h)
	var done uint64
	for len(h) > 0 {
		r := h[0]
		if done&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			b.progress(done)
		}
		done++
		if err := w.add(r.cur); err != nil {
			return err
		}
		ok, err := r.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			r.f.Close()
			heap.Pop(&h)
		}
	}
	b.progress(b.added)
	return nil
}

// Close removes the temporary files of an unfinished build.
func (b *Builder) Close() error {
	for _, name := range b.runs {
		os.Remove(name)
	}
	b.runs = nil
	b.buf = nil
	b.done = true
	return nil
}

type runReader struct {
	f   *os.File
	r   *bufio.Reader
	cur Entry
	rec [runRecordSize]byte
}

func (r *runReader) next() (bool, error) {
	if _, err := io.ReadFull(r.r, r.rec[:]); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("password index builder: run %s: %w", r.f.Name(), err)
	}
	copy(r.cur.Hash[:], r.rec[:20])
	r.cur.Count = uint64(binary.LittleEndian.Uint32(r.rec[20:]))
	r.cur.HIBP = uint64(binary.LittleEndian.Uint32(r.rec[24:]))
	r.cur.Sources = Source(r.rec[28])
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return cmpHash(&h[i].cur.Hash, &h[j].cur.Hash) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
