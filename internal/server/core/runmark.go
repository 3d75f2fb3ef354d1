package core

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/dynfw/sentinel/internal/journal"
)

// The run mark, <data>/dynfw.run, is written at every start before the
// first publication: the version this run publishes and the journal segment
// it starts writing. It is a second witness beside the journal, kept outside
// journal/:
//   - a clean stop is proven only if the newest snapshot is clean and was
//     written after the segment the mark names (otherwise a run started
//     after that snapshot and its journal is gone);
//   - its version is a floor for the next one, even when the journal is lost
//     (with --accept-empty-state);
//   - its presence says that this data directory published before, so an
//     empty or missing journal is a loss, not a first start.
//
// Layout: "SNTLRUN1" | version uint64 | segment uint64 | CRC-32C of the 24
// bytes before it.
const (
	// RunMarkName is the run mark's file in the data directory.
	RunMarkName  = "dynfw.run"
	runMarkMagic = "SNTLRUN1"
	runMarkLen   = 8 + 8 + 8 + 4
)

type runMark struct {
	Version uint64 // the version the run published
	Seq     uint64 // the journal segment it started writing
}

var errRunMark = errors.New("server: the run mark " + RunMarkName + " does not verify")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readRunMark returns the mark and whether the file exists; a file that
// exists but does not verify gives errRunMark.
func readRunMark(dir string) (runMark, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, RunMarkName))
	if errors.Is(err, os.ErrNotExist) {
		return runMark{}, false, nil
	}
	if err != nil {
		return runMark{}, true, err
	}
	if len(b) != runMarkLen || string(b[:8]) != runMarkMagic ||
		crc32.Checksum(b[:runMarkLen-4], castagnoli) != binary.BigEndian.Uint32(b[runMarkLen-4:]) {
		return runMark{}, true, errRunMark
	}
	return runMark{Version: binary.BigEndian.Uint64(b[8:]), Seq: binary.BigEndian.Uint64(b[16:])}, true, nil
}

func writeRunMark(dir string, m runMark) error {
	b := append([]byte(nil), runMarkMagic...)
	b = binary.BigEndian.AppendUint64(b, m.Version)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return journal.WriteFileAtomic(filepath.Join(dir, RunMarkName), b)
}
