// Package journal is the server's durable memory: an append-only log of
// records written since the last snapshot, and that snapshot. Records are
// opaque bytes (the server encodes events, clock ticks and admin actions);
// a snapshot is the whole state at a point of the log.
//
// Writes go through a buffer that a background loop flushes to the operating
// system and fsyncs every SyncInterval (1 s by default). So after a kill -9
// or a power failure, at most the records of the last SyncInterval are lost;
// after a graceful Close nothing is.
//
// Files in the directory: snapshot-<seq>.bin holds the state before log
// segment <seq>; wal-<seq>.log are the segments. Damage to any byte of
// either is detected by a CRC-32C (the format is described in format.go). A new
// snapshot is read back and verified before anything older is deleted, and
// the previous snapshot and every segment after it are kept: if the newest
// snapshot is damaged later, the previous one plus the segments reproduce
// the same state.
//
// Open recovers from the newest snapshot that verifies and replays the
// segments after it. What does not verify is never silently dropped: a
// damaged snapshot is moved to quarantine/, a segment damaged in the middle
// is kept in quarantine/ and rewritten with the records that verify
// (records after the damage are found again by their marker and checksum),
// and every loss is counted in Recovery.Loss. The end of the newest segment
// cut by a crash (a torn write) is the normal case: it is cut off and
// counted as TornTailBytes. If state existed and none of it verifies, Open
// returns ErrNoState unless Options.AcceptEmpty is set.
package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// MaxRecord bounds one record.
const MaxRecord = 16 << 20

// Options tunes a Journal.
type Options struct {
	// SyncInterval is how often buffered records reach the disk. Default
	// 1 s; negative syncs after every Append (slow, for tests).
	SyncInterval time.Duration
	Logger       *slog.Logger
	// StateExpected tells Open that the caller knows state was written
	// before (a marker of an earlier run): an empty or missing journal is
	// then a loss, not a first start.
	StateExpected bool
	// AcceptEmpty lets Open start with the empty state when state existed
	// but none of it verifies; the files left are moved to quarantine/.
	// Without it Open returns ErrNoState.
	AcceptEmpty bool
}

// Journal appends records and writes snapshots. Append, Snapshot and Close
// must be called from one goroutine; the sync loop runs in its own.
type Journal struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu    sync.Mutex // guards f, bw and err against the sync loop
	seq   uint64     // the segment being written
	base  uint64     // the snapshot the current chain starts from (0: empty state)
	f     *os.File
	bw    *bufio.Writer
	dirty bool
	err   error

	stop chan struct{}
	done chan struct{}
	hdr  [recHeaderLen]byte
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
	rec, err := recoverDir(dir, opts)
	if err != nil {
		return nil, nil, err
	}
	next := rec.Newest + 1
	if rec.Newest > 0 && rec.Newest == rec.Base && !exists(filepath.Join(dir, segName(rec.Base))) {
		// The snapshot was written but not the segment after it: that
		// segment is this one, so the chain has no hole.
		next = rec.Base
	}
	if next == 0 {
		return nil, nil, errors.New("journal: sequence numbers exhausted (a file named with the highest one?)")
	}
	j := &Journal{dir: dir, opts: opts, log: opts.Logger, seq: next, base: rec.Base, stop: make(chan struct{}), done: make(chan struct{})}
	if err := j.openSegment(0); err != nil {
		return nil, nil, err
	}
	go j.syncLoop()
	return j, rec, nil
}

// Seq returns the sequence number of the segment being written.
func (j *Journal) Seq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// openSegment creates segment j.seq with its header, synced with its
// directory entry before any record goes in.
func (j *Journal) openSegment(flags byte) error {
	path := filepath.Join(j.dir, segName(j.seq))
	// Exclusive: a segment that exists holds records, never overwrite it.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.Write(segHeader(j.seq, flags)); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	j.f = f
	j.bw = bufio.NewWriterSize(f, 256<<10)
	return nil
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
	putRecordHeader(&j.hdr, rec)
	j.bw.Write(j.hdr[:])
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
// shutdown (nothing may be appended afterwards).
//
// The snapshot is read back and verified before anything is deleted. Then
// a new segment starts, and what only the snapshot before the previous one
// needed goes: the previous snapshot and the segments from it on stay, as
// the fallback if this snapshot is damaged later.
func (j *Journal) Snapshot(state []byte, clean bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.syncLocked(); err != nil {
		return err
	}
	next := j.seq + 1
	path := filepath.Join(j.dir, snapName(next))
	if err := writeAtomic(path, snapHeader(next, clean, state), state); err != nil {
		return fmt.Errorf("journal: snapshot: %w", err)
	}
	if err := verifySnapshot(path, next, state); err != nil {
		// Keep appending to the current segment: recovery goes on from
		// the previous state as if this snapshot had never been tried.
		os.Remove(path)
		syncDir(j.dir)
		return fmt.Errorf("journal: snapshot %d does not read back: %w", next, err)
	}
	old := j.f
	prev := j.base
	j.seq = next
	if err := j.openSegment(segAtSnapshot); err != nil {
		j.err = err
		old.Close()
		return err
	}
	j.base = next
	if err := old.Close(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	entries, _ := os.ReadDir(j.dir)
	for _, e := range entries {
		if s, ok := parseSeq(e.Name(), "wal-", ".log"); ok && s < prev {
			os.Remove(filepath.Join(j.dir, e.Name()))
		}
		if s, ok := parseSeq(e.Name(), "snapshot-", ".bin"); ok && s < prev {
			os.Remove(filepath.Join(j.dir, e.Name()))
		}
	}
	return syncDir(j.dir)
}

// verifySnapshot reads a snapshot back from the disk and checks that it
// verifies and holds state.
func verifySnapshot(path string, seq uint64, state []byte) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data, _, err := parseSnapshot(b, seq)
	if err != nil {
		return err
	}
	if !bytes.Equal(data, state) {
		return errors.New("the data read back differs")
	}
	return nil
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
