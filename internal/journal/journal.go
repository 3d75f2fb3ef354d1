// Package journal is the server's durable memory: an append-only log of
// records written since the last snapshot, and that snapshot. Records are
// opaque bytes (the server encodes events, clock ticks and admin actions);
// a snapshot is the whole state at a point of the log.
//
// Writes go through a buffer that a background loop flushes to the operating
// system and fsyncs every SyncInterval (1 s by default). So after a kill -9
// or a power failure, at most the records of the last SyncInterval are lost;
// after a graceful Close nothing is. Each record carries its length and a
// CRC-32C: a torn write at the end of the log is detected and cut off on
// recovery, and the log continues from there.
//
// Files in the directory: snapshot-<seq>.bin holds the state before log
// segment <seq>; wal-<seq>.log are the segments. Recovery loads the newest
// valid snapshot and the segments from its sequence number on.
package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxRecord bounds one record.
const MaxRecord = 16 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options tunes a Journal.
type Options struct {
	// SyncInterval is how often buffered records reach the disk. Default
	// 1 s; negative syncs after every Append (slow, for tests).
	SyncInterval time.Duration
	Logger       *slog.Logger
}

// Recovery is what Open found on disk.
type Recovery struct {
	// Snapshot is the newest valid snapshot, nil if there is none.
	Snapshot []byte
	// Clean reports that the snapshot was written by a graceful shutdown
	// and no record follows it: the state is exactly what it was.
	Clean bool
	// Records follow the snapshot, in order.
	Records [][]byte
	// Truncated counts bytes cut off the end of the log (a torn write).
	Truncated int64
}

// Journal appends records and writes snapshots. Append, Snapshot and Close
// must be called from one goroutine; the sync loop runs in its own.
type Journal struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu    sync.Mutex // guards f, bw and err against the sync loop
	seq   uint64
	f     *os.File
	bw    *bufio.Writer
	dirty bool
	err   error

	stop chan struct{}
	done chan struct{}
	hdr  [binary.MaxVarintLen64 + 4]byte
}

// Open recovers the journal in dir (created if missing) and opens a new log
// segment after it.
func Open(dir string, opts Options) (*Journal, *Recovery, error) {
	if opts.SyncInterval == 0 {
		opts.SyncInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	rec, last, err := recover(dir, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	j := &Journal{dir: dir, opts: opts, log: opts.Logger, seq: last + 1, stop: make(chan struct{}), done: make(chan struct{})}
	if err := j.openSegment(); err != nil {
		return nil, nil, err
	}
	go j.syncLoop()
	return j, rec, nil
}

func segName(seq uint64) string  { return fmt.Sprintf("wal-%016x.log", seq) }
func snapName(seq uint64) string { return fmt.Sprintf("snapshot-%016x.bin", seq) }

func parseSeq(name, prefix, suffix string) (uint64, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(prefix):len(name)-len(suffix)], 16, 64)
	return v, err == nil
}

func (j *Journal) openSegment() error {
	f, err := os.OpenFile(filepath.Join(j.dir, segName(j.seq)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.f = f
	j.bw = bufio.NewWriterSize(f, 256<<10)
	return syncDir(j.dir)
}

// recover reads the newest valid snapshot and the segments after it, and
// returns the highest sequence number in use.
func recover(dir string, log *slog.Logger) (*Recovery, uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("journal: %w", err)
	}
	var snaps, segs []uint64
	for _, e := range entries {
		if s, ok := parseSeq(e.Name(), "snapshot-", ".bin"); ok {
			snaps = append(snaps, s)
		}
		if s, ok := parseSeq(e.Name(), "wal-", ".log"); ok {
			segs = append(segs, s)
		}
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, e.Name())) // an interrupted snapshot
		}
	}
	sort.Slice(snaps, func(i, k int) bool { return snaps[i] > snaps[k] })
	sort.Slice(segs, func(i, k int) bool { return segs[i] < segs[k] })
	rec := &Recovery{}
	var from uint64
	for _, s := range snaps {
		data, clean, err := readSnapshot(filepath.Join(dir, snapName(s)))
		if err != nil {
			log.Warn("journal: skipping an unreadable snapshot", "seq", s, "err", err)
			continue
		}
		rec.Snapshot, rec.Clean, from = data, clean, s
		break
	}
	last := from
	for _, s := range segs {
		last = max(last, s)
		if s < from {
			continue
		}
		recs, cut, err := readSegment(filepath.Join(dir, segName(s)))
		if err != nil {
			return nil, 0, err
		}
		if len(recs) == 0 {
			// Nothing to replay: the new segment replaces it.
			os.Remove(filepath.Join(dir, segName(s)))
		}
		rec.Records = append(rec.Records, recs...)
		rec.Truncated += cut
	}
	if len(rec.Records) > 0 {
		rec.Clean = false
	}
	if len(snaps) > 0 {
		last = max(last, snaps[0])
	}
	return rec, last, nil
}

// readSegment returns the valid records of a segment and cuts a torn tail.
func readSegment(path string) ([][]byte, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("journal: %w", err)
	}
	br := bufio.NewReaderSize(f, 256<<10)
	var recs [][]byte
	var good int64
	for {
		rec, n, err := readRecord(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			// A torn or corrupt tail: everything after it is lost.
			if terr := f.Truncate(good); terr != nil {
				return nil, 0, fmt.Errorf("journal: truncating %s: %w", path, terr)
			}
			return recs, info.Size() - good, nil
		}
		recs = append(recs, rec)
		good += int64(n)
	}
	return recs, 0, nil
}

func readRecord(br *bufio.Reader) ([]byte, int, error) {
	size, err := binary.ReadUvarint(br)
	if err != nil {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, err
	}
	if size > MaxRecord {
		return nil, 0, fmt.Errorf("journal: record of %d bytes", size)
	}
	var crc [4]byte
	if _, err := io.ReadFull(br, crc[:]); err != nil {
		return nil, 0, io.ErrUnexpectedEOF
	}
	rec := make([]byte, size)
	if _, err := io.ReadFull(br, rec); err != nil {
		return nil, 0, io.ErrUnexpectedEOF
	}
	if crc32.Checksum(rec, crcTable) != binary.BigEndian.Uint32(crc[:]) {
		return nil, 0, errors.New("journal: record checksum mismatch")
	}
	return rec, uvarintLen(size) + 4 + int(size), nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Snapshot file: magic, flags (bit 0: clean), length, CRC-32C, data.
const snapMagic = "SNTLSNP1"

func readSnapshot(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	if len(b) < len(snapMagic)+1+8+4 || string(b[:len(snapMagic)]) != snapMagic {
		return nil, false, errors.New("not a snapshot")
	}
	flags := b[len(snapMagic)]
	rest := b[len(snapMagic)+1:]
	size := binary.BigEndian.Uint64(rest)
	crc := binary.BigEndian.Uint32(rest[8:])
	data := rest[12:]
	if uint64(len(data)) != size || crc32.Checksum(data, crcTable) != crc {
		return nil, false, errors.New("snapshot truncated or corrupt")
	}
	return data, flags&1 != 0, nil
}

// Append adds a record. It is durable after the next sync (at most
// SyncInterval later), or after Sync or Close.
func (j *Journal) Append(rec []byte) error {
	if len(rec) > MaxRecord {
		return fmt.Errorf("journal: record of %d bytes exceeds %d", len(rec), MaxRecord)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	n := binary.PutUvarint(j.hdr[:], uint64(len(rec)))
	binary.BigEndian.PutUint32(j.hdr[n:], crc32.Checksum(rec, crcTable))
	j.bw.Write(j.hdr[:n+4])
	if _, err := j.bw.Write(rec); err != nil {
		j.err = fmt.Errorf("journal: %w", err)
		return j.err
	}
	j.dirty = true
	if j.opts.SyncInterval < 0 {
		return j.syncLocked()
	}
	return nil
}

// Sync writes buffered records and fsyncs them.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.syncLocked()
}

func (j *Journal) syncLocked() error {
	if j.err != nil || !j.dirty {
		return j.err
	}
	if err := j.bw.Flush(); err != nil {
		j.err = fmt.Errorf("journal: %w", err)
		return j.err
	}
	if err := j.f.Sync(); err != nil {
		j.err = fmt.Errorf("journal: %w", err)
		return j.err
	}
	j.dirty = false
	return nil
}

func (j *Journal) syncLoop() {
	defer close(j.done)
	if j.opts.SyncInterval < 0 {
		<-j.stop
		return
	}
	t := time.NewTicker(j.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			if err := j.Sync(); err != nil {
				j.log.Error("journal: sync failed; records since the last sync may be lost on a crash", "err", err)
			}
		}
	}
}

// Snapshot writes state as the new starting point: after it, recovery loads
// this state and replays only later records. With clean it marks a graceful
// shutdown (nothing may be appended afterwards). Older segments and
// snapshots are deleted.
func (j *Journal) Snapshot(state []byte, clean bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.syncLocked(); err != nil {
		return err
	}
	next := j.seq + 1
	var hdr [len(snapMagic) + 1 + 8 + 4]byte
	copy(hdr[:], snapMagic)
	if clean {
		hdr[len(snapMagic)] = 1
	}
	binary.BigEndian.PutUint64(hdr[len(snapMagic)+1:], uint64(len(state)))
	binary.BigEndian.PutUint32(hdr[len(snapMagic)+9:], crc32.Checksum(state, crcTable))
	path := filepath.Join(j.dir, snapName(next))
	if err := writeAtomic(path, hdr[:], state); err != nil {
		return fmt.Errorf("journal: snapshot: %w", err)
	}
	// The snapshot covers everything up to here: start a new segment and
	// drop what the snapshot replaces.
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	old := j.seq
	j.seq = next
	if err := j.openSegment(); err != nil {
		j.err = err
		return err
	}
	entries, _ := os.ReadDir(j.dir)
	for _, e := range entries {
		if s, ok := parseSeq(e.Name(), "wal-", ".log"); ok && s <= old {
			os.Remove(filepath.Join(j.dir, e.Name()))
		}
		if s, ok := parseSeq(e.Name(), "snapshot-", ".bin"); ok && s < next {
			os.Remove(filepath.Join(j.dir, e.Name()))
		}
	}
	return syncDir(j.dir)
}

// Close syncs and closes the journal. Call Snapshot(state, true) before it
// for a clean shutdown.
func (j *Journal) Close() error {
	close(j.stop)
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.syncLocked()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeAtomic(path string, parts ...[]byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
