package journal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNoState is returned by Open when state existed but none of it
// verifies, and Options.AcceptEmpty is not set: starting would present an
// empty state as the truth.
var ErrNoState = errors.New("journal: state existed but none of it verifies")

// QuarantineDir is the subdirectory where damaged files are kept.
const QuarantineDir = "quarantine"

// Loss is what recovery found damaged or missing. A torn tail (the end of
// the last segment cut by a crash) is the normal price of a crash and is
// counted apart.
type Loss struct {
	// SnapshotsQuarantined counts snapshots that did not verify; each was
	// moved to quarantine/ and an older one used.
	SnapshotsQuarantined int
	// SnapshotsMissing counts snapshots that a segment says were written
	// but that are gone.
	SnapshotsMissing int
	// SegmentsQuarantined counts segments kept in quarantine/ because of
	// damage (or a header naming another sequence number); a damaged one
	// is rewritten with the records that verify.
	SegmentsQuarantined int
	// SegmentsMissing counts segments absent from the chain being replayed.
	SegmentsMissing int
	// DamagedRegions counts runs of bytes inside segments that held no
	// record that verifies; each cost at least one record.
	DamagedRegions int
	// SkippedBytes is the size of those runs.
	SkippedBytes int64
	// TornTailBytes were cut off the end of the last segment: a record
	// being written when the process died.
	TornTailBytes int64
}

// Damaged reports whether anything but a torn tail was lost.
func (l Loss) Damaged() bool {
	return l.SnapshotsQuarantined+l.SnapshotsMissing+l.SegmentsQuarantined+l.SegmentsMissing+l.DamagedRegions > 0 || l.SkippedBytes > 0
}

// Recovery is what Open found on disk.
type Recovery struct {
	// Snapshot is the state recovery starts from: the newest snapshot that
	// verifies, nil for the empty state.
	Snapshot []byte
	// Base is the sequence number of that snapshot (0: the empty state
	// before the first segment).
	Base uint64
	// Records follow the snapshot, in order.
	Records [][]byte
	// Clean reports that the newest snapshot was written by a graceful
	// stop, verifies, no record follows it and nothing was lost: the
	// state is exactly what it was when the process stopped.
	Clean bool
	// Fresh reports a first start: no state existed.
	Fresh bool
	// FellBack reports that a newer snapshot than Snapshot existed but did
	// not verify or is missing: the state was rebuilt from an older one
	// and the segments after it.
	FellBack bool
	// StartedEmpty reports that state existed, nothing verified, and
	// Options.AcceptEmpty let Open start empty anyway.
	StartedEmpty bool
	// Newest is the highest sequence number of the files recovery kept.
	Newest uint64
	Loss   Loss
}

type dirFiles struct {
	snaps []uint64 // descending
	segs  map[uint64]bool
	last  uint64 // highest segment
}

func snapName(seq uint64) string { return fmt.Sprintf("snapshot-%016x.bin", seq) }
func segName(seq uint64) string  { return fmt.Sprintf("wal-%016x.log", seq) }

func parseSeq(name, prefix, suffix string) (uint64, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(prefix):len(name)-len(suffix)], 16, 64)
	return v, err == nil
}

func listDir(dir string) (dirFiles, error) {
	f := dirFiles{segs: map[uint64]bool{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return f, fmt.Errorf("journal: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if s, ok := parseSeq(name, "snapshot-", ".bin"); ok {
			f.snaps = append(f.snaps, s)
		} else if s, ok := parseSeq(name, "wal-", ".log"); ok {
			f.segs[s] = true
			f.last = max(f.last, s)
		} else if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name)) // an interrupted write
		}
	}
	slices.Sort(f.snaps)
	slices.Reverse(f.snaps)
	return f, nil
}

// recoverDir finds the newest state that verifies and the records after
// it, repairs what it can and quarantines what it cannot.
func recoverDir(dir string, opts Options) (*Recovery, error) {
	log := opts.Logger
	files, err := listDir(dir)
	if err != nil {
		return nil, err
	}
	rec := &Recovery{Newest: files.last}
	if len(files.snaps) > 0 {
		rec.Newest = max(rec.Newest, files.snaps[0])
	}
	snapSeen := map[uint64]bool{}
	for _, s := range files.snaps {
		snapSeen[s] = true
	}
	// Evidence that state existed, whatever verifies: a snapshot, a
	// segment after the first (version 2 keeps the chain from the first
	// segment until a snapshot replaces it), or the caller's knowledge.
	existed := opts.StateExpected || len(files.snaps) > 0 || files.last > 1

	found := false
	for _, s := range files.snaps {
		b, err := os.ReadFile(filepath.Join(dir, snapName(s)))
		var data []byte
		var clean bool
		if err == nil {
			data, clean, err = parseSnapshot(b, s)
		}
		if err != nil {
			rec.Loss.SnapshotsQuarantined++
			log.Warn("journal: a snapshot does not verify; it goes to quarantine and an older state is used", "seq", s, "err", err)
			if qerr := moveToQuarantine(dir, snapName(s)); qerr != nil {
				return nil, qerr
			}
			continue
		}
		rec.Snapshot, rec.Base, rec.Clean, found = data, s, clean, true
		break
	}
	if !found && files.segs[1] {
		// No snapshot verifies, but the chain from the first segment is
		// whole: the empty state and all of it.
		found = true
	} else if !found && len(files.snaps) == 0 && onlyV1(dir, files) {
		// Version 1 removed empty segments, so its chain may start later.
		found = true
	}
	if !found {
		if !existed {
			rec.Fresh = true
			return rec, nil
		}
		if !opts.AcceptEmpty {
			var why string
			switch {
			case len(files.snaps) == 0 && len(files.segs) == 0:
				why = "the journal is empty, but an earlier run used this data directory"
			case len(files.snaps) == 0:
				why = fmt.Sprintf("no snapshot, and segments %s do not start from the first one", seqRange(files.segs))
			default:
				why = fmt.Sprintf("none of %d snapshot(s) verifies (moved to %s/), and segments %s do not start from the first one",
					len(files.snaps), QuarantineDir, seqRange(files.segs))
			}
			return nil, fmt.Errorf("%w: %s", ErrNoState, why)
		}
		// Everything left belongs to the lost state: keep it aside, and
		// start a new chain from sequence 1.
		for s := range files.segs {
			if err := moveToQuarantine(dir, segName(s)); err != nil {
				return nil, err
			}
			rec.Loss.SegmentsQuarantined++
		}
		rec.StartedEmpty, rec.Newest = true, 0
		log.Error("journal: STARTING EMPTY although state existed: nothing of it verifies, and starting empty was accepted",
			"snapshots_quarantined", rec.Loss.SnapshotsQuarantined, "segments_quarantined", rec.Loss.SegmentsQuarantined)
		return rec, syncDir(dir)
	}
	rec.FellBack = rec.Loss.SnapshotsQuarantined > 0
	if err := replayChain(dir, files, snapSeen, rec, log); err != nil {
		return nil, err
	}
	rec.FellBack = rec.FellBack || rec.Loss.SnapshotsMissing > 0
	// Snapshots that went to quarantine no longer count: the next segment
	// follows what is kept.
	rec.Newest = max(files.last, rec.Base)
	if len(rec.Records) > 0 || rec.Loss.Damaged() || rec.Loss.TornTailBytes > 0 || rec.FellBack {
		rec.Clean = false
	}
	return rec, nil
}

// replayChain reads the segments from rec.Base on.
func replayChain(dir string, files dirFiles, snapSeen map[uint64]bool, rec *Recovery, log *slog.Logger) error {
	var chain []uint64
	for seq := range files.segs {
		if seq >= max(rec.Base, 1) {
			chain = append(chain, seq)
		}
	}
	slices.Sort(chain)
	expect := max(rec.Base, 1) // the next sequence number of the chain
	for _, seq := range chain {
		gap := int(min(seq-expect, 1<<20))
		expect = seq + 1
		name := segName(seq)
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		s := readSegment(b, seq)
		if !s.v1 {
			// Version 2 never leaves a hole in its chain; version 1
			// removed empty segments.
			rec.Loss.SegmentsMissing += gap
		}
		last := seq == files.last
		if s.foreign {
			log.Warn("journal: a segment's header names another sequence number; it goes to quarantine", "seq", seq)
			if err := moveToQuarantine(dir, name); err != nil {
				return err
			}
			rec.Loss.SegmentsQuarantined++
			rec.Loss.SegmentsMissing++
			continue
		}
		if s.tail > 0 && (!last || s.v1 || s.badHead) {
			// Only the end of the newest segment is a torn write; cut
			// records elsewhere are damage (and version 1 cannot tell).
			s.regions++
			s.skipped += s.tail
			s.tail = 0
		}
		if s.flags&segAtSnapshot != 0 && seq != rec.Base && !snapSeen[seq] {
			rec.Loss.SnapshotsMissing++
			log.Warn("journal: a snapshot is missing; the state is rebuilt from an older one", "seq", seq)
		}
		rec.Records = append(rec.Records, s.records...)
		switch {
		case s.badHead || s.regions > 0:
			rec.Loss.SegmentsQuarantined++
			rec.Loss.DamagedRegions += s.regions
			rec.Loss.SkippedBytes += s.skipped
			log.Warn("journal: a damaged segment goes to quarantine; the records that verify are kept",
				"seq", seq, "damaged_regions", s.regions, "skipped_bytes", s.skipped, "records_kept", len(s.records))
			if err := keepInQuarantine(dir, name); err != nil {
				return err
			}
			if err := rewriteSegment(dir, seq, s.flags, s.records); err != nil {
				return err
			}
		case s.tail > 0:
			rec.Loss.TornTailBytes += s.tail
			if s.good < segHeaderLen {
				err = rewriteSegment(dir, seq, s.flags, nil)
			} else {
				err = truncateFile(path, s.good)
			}
			if err != nil {
				return fmt.Errorf("journal: cutting the torn tail of %s: %w", name, err)
			}
		}
	}
	return nil
}

// onlyV1 reports whether every segment is in the version 1 format (empty,
// or beginning with a version 1 record that verifies).
func onlyV1(dir string, files dirFiles) bool {
	if len(files.segs) == 0 {
		return false
	}
	for s := range files.segs {
		f, err := os.Open(filepath.Join(dir, segName(s)))
		if err != nil {
			return false
		}
		head := make([]byte, 64<<10)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if n > 0 && (strings.HasPrefix(segMagic, string(head[:min(n, len(segMagic))])) || !validV1Start(head[:n])) {
			return false
		}
	}
	return true
}

func seqRange(segs map[uint64]bool) string {
	if len(segs) == 0 {
		return "(none)"
	}
	lo, hi := ^uint64(0), uint64(0)
	for s := range segs {
		lo, hi = min(lo, s), max(hi, s)
	}
	return fmt.Sprintf("%d..%d", lo, hi)
}

func quarantineName(dir, name string) (string, error) {
	q := filepath.Join(dir, QuarantineDir)
	if err := os.MkdirAll(q, 0o700); err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	return filepath.Join(q, name+"."+time.Now().UTC().Format("20060102T150405.000000000Z")), nil
}

// moveToQuarantine moves a file that recovery will not use out of the way.
func moveToQuarantine(dir, name string) error {
	dst, err := quarantineName(dir, name)
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, name), dst); err != nil {
		return fmt.Errorf("journal: quarantine: %w", err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("journal: quarantine: %w", err)
	}
	return syncDir(dir)
}

// keepInQuarantine keeps the file as it is (a hard link, or a copy) before
// it is rewritten: a crash at any point leaves either the original or the
// rewrite in place, and the original in quarantine.
func keepInQuarantine(dir, name string) error {
	dst, err := quarantineName(dir, name)
	if err != nil {
		return err
	}
	src := filepath.Join(dir, name)
	if err := os.Link(src, dst); err != nil {
		b, rerr := os.ReadFile(src)
		if rerr != nil {
			return fmt.Errorf("journal: quarantine: %w", rerr)
		}
		if err := writeAtomic(dst, b); err != nil {
			return fmt.Errorf("journal: quarantine: %w", err)
		}
	}
	return syncDir(filepath.Dir(dst))
}

// rewriteSegment replaces segment seq with a version 2 file of records.
func rewriteSegment(dir string, seq uint64, flags byte, records [][]byte) error {
	parts := [][]byte{segHeader(seq, flags)}
	for _, r := range records {
		var h [recHeaderLen]byte
		putRecordHeader(&h, r)
		parts = append(parts, h[:], r)
	}
	if err := writeAtomic(filepath.Join(dir, segName(seq)), parts...); err != nil {
		return fmt.Errorf("journal: rewriting segment %d: %w", seq, err)
	}
	return nil
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// WriteFileAtomic writes a small file durably: through a synced temporary
// file and a rename, then a sync of the directory. A crash leaves either
// the old file or the new one.
func WriteFileAtomic(path string, data []byte) error { return writeAtomic(path, data) }

// writeAtomic writes path through a synced temporary file and a rename,
// and syncs the directory.
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
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
