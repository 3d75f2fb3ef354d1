package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func rec(i int) []byte { return []byte(fmt.Sprintf("record-%06d", i)) }

func TestRecoveryAfterCleanAndUncleanStops(t *testing.T) {
	dir := t.TempDir()
	j, r, err := Open(dir, Options{})
	if err != nil || r.Snapshot != nil || len(r.Records) != 0 {
		t.Fatalf("fresh journal: %+v %v", r, err)
	}
	for i := 0; i < 100; i++ {
		j.Append(rec(i))
	}
	if err := j.Snapshot([]byte("state-at-100"), false); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 150; i++ {
		j.Append(rec(i))
	}
	j.Close() // no clean snapshot: a restart replays 100..149

	j, r, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Snapshot) != "state-at-100" || r.Clean || len(r.Records) != 50 || string(r.Records[0]) != string(rec(100)) {
		t.Fatalf("recovered snapshot %q clean %v, %d records", r.Snapshot, r.Clean, len(r.Records))
	}
	j.Snapshot([]byte("final"), true)
	j.Close()

	j, r, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if string(r.Snapshot) != "final" || !r.Clean || len(r.Records) != 0 {
		t.Fatalf("after a clean stop: %q clean %v, %d records", r.Snapshot, r.Clean, len(r.Records))
	}
	// Two generations stay: the snapshot before the last one and the
	// segments from it on, the fallback if the newest is damaged.
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshot-*"))
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*"))
	if len(snaps) != 2 || len(segs) != 4 {
		t.Fatalf("files left: %v %v", snaps, segs)
	}
}

func TestTornTailIsCutOff(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := Open(dir, Options{SyncInterval: -1})
	for i := 0; i < 10; i++ {
		j.Append(rec(i))
	}
	j.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	seg := segs[len(segs)-1]
	full, _ := os.ReadFile(seg)
	// A crash in the middle of the last record, and garbage after a
	// flipped bit.
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)-3] },
		func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-2] ^= 0x40; return c },
	} {
		os.WriteFile(seg, damage(full), 0o600)
		j, r, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Records) != 9 || r.Loss.TornTailBytes == 0 || r.Loss.Damaged() {
			t.Fatalf("recovered %d records, loss %+v", len(r.Records), r.Loss)
		}
		// New records after recovery are kept too.
		j.Append(rec(99))
		j.Close()
		_, r, _ = Open(dir, Options{})
		if got := r.Records[len(r.Records)-1]; string(got) != string(rec(99)) || len(r.Records) != 10 {
			t.Fatalf("after recovery and more records: %d, last %q", len(r.Records), got)
		}
		// Reset for the next damage.
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o700)
		j, _, _ = Open(dir, Options{SyncInterval: -1})
		for i := 0; i < 10; i++ {
			j.Append(rec(i))
		}
		j.Close()
		segs, _ = filepath.Glob(filepath.Join(dir, "wal-*.log"))
		seg = segs[len(segs)-1]
		full, _ = os.ReadFile(seg)
	}
}

func TestSyncLoopMakesRecordsDurable(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := Open(dir, Options{SyncInterval: 20 * time.Millisecond})
	j.Append(rec(1))
	time.Sleep(100 * time.Millisecond)
	// Read the segment as a second process would after a kill -9: the
	// record must be there without Close.
	b, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if s := readSegment(b, 1); err != nil || len(s.records) != 1 {
		t.Fatalf("%d records on disk, %v", len(s.records), err)
	}
	j.Close()
}

func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := Open(dir, Options{})
	j.Snapshot([]byte("good"), false)
	j.Append(rec(1))
	j.Close()
	// A newer snapshot that is corrupt must be ignored.
	os.WriteFile(filepath.Join(dir, snapName(99)), []byte("SNTLSNP1garbage"), 0o600)
	j, r, err := Open(dir, Options{})
	if err != nil || string(r.Snapshot) != "good" || len(r.Records) != 1 {
		t.Fatalf("%q %d %v", r.Snapshot, len(r.Records), err)
	}
	j.Close()
}

func BenchmarkAppend(b *testing.B) {
	j, _, _ := Open(b.TempDir(), Options{})
	defer j.Close()
	r := make([]byte, 60)
	b.SetBytes(int64(len(r)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		j.Append(r)
	}
}

// BenchmarkRecover: Open on a journal of 100,000 records of 60 bytes after
// a crash (no snapshot), the time a restart spends reading it.
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	j, _, _ := Open(dir, Options{})
	r := make([]byte, 60)
	for range 100_000 {
		j.Append(r)
	}
	j.Close()
	seg, _ := os.ReadFile(filepath.Join(dir, segName(1)))
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := b.TempDir()
		os.WriteFile(filepath.Join(d, segName(1)), seg, 0o600)
		b.StartTimer()
		j, r, err := Open(d, Options{})
		if err != nil || len(r.Records) != 100_000 {
			b.Fatal(err)
		}
		j.Close()
	}
}
