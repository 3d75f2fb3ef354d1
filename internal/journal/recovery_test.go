package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A toy state for recovery tests: the list of every record applied. A
// snapshot holds that list, one record per line; recovering means the
// snapshot's lines followed by the replayed records.
type toy struct {
	t       *testing.T
	dir     string
	j       *Journal
	applied []string
	n       int
}

func newToy(t *testing.T, opts Options) *toy {
	t.Helper()
	dir := t.TempDir()
	j, _, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &toy{t: t, dir: dir, j: j}
}

func (y *toy) add(n int) {
	y.t.Helper()
	for i := 0; i < n; i++ {
		r := fmt.Sprintf("record-%06d", y.n)
		y.n++
		if err := y.j.Append([]byte(r)); err != nil {
			y.t.Fatal(err)
		}
		y.applied = append(y.applied, r)
	}
}

func (y *toy) snapshot(clean bool) {
	y.t.Helper()
	if err := y.j.Snapshot([]byte(strings.Join(y.applied, "\n")), clean); err != nil {
		y.t.Fatal(err)
	}
}

func (y *toy) close() {
	y.t.Helper()
	if err := y.j.Close(); err != nil {
		y.t.Fatal(err)
	}
}

// recovered is the state a Recovery describes.
func recovered(r *Recovery) []string {
	var out []string
	if len(r.Snapshot) > 0 {
		out = strings.Split(string(r.Snapshot), "\n")
	}
	for _, rec := range r.Records {
		out = append(out, string(rec))
	}
	return out
}

func same(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func files(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func flip(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(b)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if size < 0 {
		size += len(b)
	}
	if err := os.WriteFile(path, b[:size], 0o600); err != nil {
		t.Fatal(err)
	}
}

// twoGenerations leaves a journal stopped cleanly after two snapshots,
// with records before, between and after them.
func twoGenerations(t *testing.T) *toy {
	y := newToy(t, Options{SyncInterval: -1})
	y.add(30)
	y.snapshot(false)
	y.add(20)
	y.snapshot(false)
	y.add(10)
	y.snapshot(true)
	y.close()
	return y
}

// TestDamagedNewestSnapshotFallsBack: whatever part of the newest snapshot
// is damaged (or if it is cut short or gone), recovery loads the previous
// one and replays the segments after it, reaching the same state; the
// damaged file is kept in quarantine, and the start is not clean.
func TestDamagedNewestSnapshotFallsBack(t *testing.T) {
	damages := map[string]func(t *testing.T, path string){
		"magic":       func(t *testing.T, p string) { flip(t, p, 2) },
		"sequence":    func(t *testing.T, p string) { flip(t, p, 12) },
		"flags":       func(t *testing.T, p string) { flip(t, p, 16) },
		"length":      func(t *testing.T, p string) { flip(t, p, 22) },
		"checksum":    func(t *testing.T, p string) { flip(t, p, 27) },
		"body start":  func(t *testing.T, p string) { flip(t, p, 30) },
		"body end":    func(t *testing.T, p string) { flip(t, p, -1) },
		"truncated":   func(t *testing.T, p string) { truncate(t, p, -5) },
		"header only": func(t *testing.T, p string) { truncate(t, p, 20) },
		"empty":       func(t *testing.T, p string) { truncate(t, p, 0) },
		"deleted":     func(t *testing.T, p string) { os.Remove(p) },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			y := twoGenerations(t)
			snaps := files(t, y.dir, "snapshot-*.bin")
			if len(snaps) < 2 {
				t.Fatalf("only %d snapshot(s) kept: nothing to fall back to", len(snaps))
			}
			damage(t, snaps[len(snaps)-1])
			j, r, err := Open(y.dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if got := recovered(r); !same(got, y.applied) {
				t.Fatalf("recovered %d records of %d", len(got), len(y.applied))
			}
			if r.Clean || !r.FellBack {
				t.Fatalf("clean %v, fell back %v", r.Clean, r.FellBack)
			}
			if name == "deleted" {
				if r.Loss.SnapshotsMissing != 1 || r.Loss.SnapshotsQuarantined != 0 {
					t.Fatalf("loss %+v", r.Loss)
				}
				return
			}
			if r.Loss.SnapshotsQuarantined != 1 || len(files(t, y.dir, "quarantine/snapshot-*")) != 1 {
				t.Fatalf("loss %+v; the damaged snapshot is not in quarantine", r.Loss)
			}
		})
	}
}

// TestDamagedSegmentMiddleIsQuarantined: one flipped byte in the middle of
// a segment loses the record it hits, not the ones after it, and the file
// is kept aside rather than truncated.
func TestDamagedSegmentMiddleIsQuarantined(t *testing.T) {
	y := newToy(t, Options{SyncInterval: -1})
	y.add(100)
	y.close()
	segs := files(t, y.dir, "wal-*.log")
	seg := segs[len(segs)-1]
	before, _ := os.ReadFile(seg)
	flip(t, seg, len(before)/2)
	j, r, err := Open(y.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := recovered(r); len(got) != 99 || got[0] != y.applied[0] || got[98] != y.applied[99] {
		t.Fatalf("recovered %d of 100 records", len(got))
	}
	q := files(t, y.dir, "quarantine/wal-*")
	if len(q) != 1 {
		t.Fatalf("quarantine %v", q)
	}
	if b, _ := os.ReadFile(q[0]); len(b) != len(before) {
		t.Fatalf("the quarantined copy has %d bytes of %d", len(b), len(before))
	}
	if r.Loss.SegmentsQuarantined != 1 || r.Loss.DamagedRegions != 1 || r.Loss.SkippedBytes == 0 || r.Loss.TornTailBytes != 0 {
		t.Fatalf("loss %+v", r.Loss)
	}
}

// TestNothingVerifiesRefuses: when state existed and no snapshot of it
// verifies (and the segments from the beginning are gone), Open refuses to
// start empty.
func TestNothingVerifiesRefuses(t *testing.T) {
	y := twoGenerations(t)
	for _, s := range files(t, y.dir, "snapshot-*.bin") {
		flip(t, s, -3)
	}
	j, r, err := Open(y.dir, Options{})
	if !errors.Is(err, ErrNoState) {
		if err == nil {
			j.Close()
		}
		t.Fatalf("started with %d records, err %v", len(recovered(r)), err)
	}
	// Refusing changes nothing but the quarantine: a second try refuses
	// too, and accepting starts empty with every file kept aside.
	if _, _, err := Open(y.dir, Options{}); !errors.Is(err, ErrNoState) {
		t.Fatalf("second try: %v", err)
	}
	j, r, err = Open(y.dir, Options{AcceptEmpty: true})
	if err != nil || !r.StartedEmpty || r.Snapshot != nil || len(r.Records) != 0 || r.Clean {
		t.Fatalf("accepting an empty start: %+v, %v", r, err)
	}
	if len(files(t, y.dir, "snapshot-*")) != 0 || len(files(t, y.dir, "quarantine/*")) < 3 {
		t.Fatalf("files left %v", files(t, y.dir, "*"))
	}
	j.Append([]byte("after"))
	j.Close()
	// The new chain is a normal one: no refusal on the next start.
	j, r, err = Open(y.dir, Options{})
	if err != nil || len(r.Records) != 1 || r.Loss.Damaged() {
		t.Fatalf("after the accepted empty start: %+v, %v", r, err)
	}
	j.Close()
}

// TestEvidenceOfStateRefuses: the ways to know that state existed when no
// base for it verifies.
func TestEvidenceOfStateRefuses(t *testing.T) {
	t.Run("caller knows", func(t *testing.T) {
		_, _, err := Open(t.TempDir(), Options{StateExpected: true})
		if !errors.Is(err, ErrNoState) {
			t.Fatal(err)
		}
	})
	t.Run("segments without their snapshot", func(t *testing.T) {
		y := twoGenerations(t)
		for _, s := range files(t, y.dir, "snapshot-*.bin") {
			os.Remove(s)
		}
		if _, _, err := Open(y.dir, Options{}); !errors.Is(err, ErrNoState) {
			t.Fatal(err)
		}
	})
	t.Run("a later segment alone", func(t *testing.T) {
		y := newToy(t, Options{SyncInterval: -1})
		y.add(3)
		y.close()
		j, _, _ := Open(y.dir, Options{}) // segment 2
		j.Append([]byte("x"))
		j.Close()
		os.Remove(filepath.Join(y.dir, segName(1)))
		if _, _, err := Open(y.dir, Options{}); !errors.Is(err, ErrNoState) {
			t.Fatal(err)
		}
	})
	t.Run("first start", func(t *testing.T) {
		j, r, err := Open(t.TempDir(), Options{})
		if err != nil || !r.Fresh {
			t.Fatalf("%+v %v", r, err)
		}
		j.Close()
	})
}

// segmentDamage is one way to damage a segment, given where its records
// start.
type segmentDamage struct {
	name string
	// damage returns the damaged bytes and how many of the segment's
	// records are lost.
	damage func(b []byte, starts []int) ([]byte, int)
	torn   bool // a torn tail, not damage (only in the newest segment)
}

func recordStarts(b []byte) []int {
	var out []int
	for off := segHeaderLen; off < len(b); {
		_, next, ok := parseRecord(b, off)
		if !ok {
			break
		}
		out = append(out, off)
		off = next
	}
	return out
}

func flipped(b []byte, off int) []byte { c := slices.Clone(b); c[off] ^= 0x04; return c }

var segmentDamages = []segmentDamage{
	{name: "header magic", damage: func(b []byte, _ []int) ([]byte, int) { return flipped(b, 3), 0 }},
	{name: "header sequence", damage: func(b []byte, _ []int) ([]byte, int) { return flipped(b, 15), 0 }},
	{name: "header flags", damage: func(b []byte, _ []int) ([]byte, int) { return flipped(b, 16), 0 }},
	{name: "header checksum", damage: func(b []byte, _ []int) ([]byte, int) { return flipped(b, 19), 0 }},
	{name: "record marker", damage: func(b []byte, s []int) ([]byte, int) { return flipped(b, s[4]+1), 1 }},
	{name: "record length", damage: func(b []byte, s []int) ([]byte, int) { return flipped(b, s[4]+5), 1 }},
	{name: "record length huge", damage: func(b []byte, s []int) ([]byte, int) { c := slices.Clone(b); c[s[4]+2] = 0x7f; return c, 1 }},
	{name: "record checksum", damage: func(b []byte, s []int) ([]byte, int) { return flipped(b, s[4]+7), 1 }},
	{name: "record body", damage: func(b []byte, s []int) ([]byte, int) { return flipped(b, s[4]+recHeaderLen+3), 1 }},
	{name: "two records", damage: func(b []byte, s []int) ([]byte, int) { return flipped(flipped(b, s[2]+12), s[6]+12), 2 }},
	{name: "bytes lost in the middle", damage: func(b []byte, s []int) ([]byte, int) {
		return append(slices.Clone(b[:s[3]+4]), b[s[5]+6:]...), 3
	}},
	{name: "last record body", torn: true, damage: func(b []byte, s []int) ([]byte, int) { return flipped(b, len(b)-2), 1 }},
	{name: "cut in the last record", torn: true, damage: func(b []byte, s []int) ([]byte, int) { return b[:len(b)-3], 1 }},
	{name: "cut in the last header", torn: true, damage: func(b []byte, s []int) ([]byte, int) { return b[:s[len(s)-1]+5], 1 }},
	{name: "cut in the segment header", torn: true, damage: func(b []byte, s []int) ([]byte, int) { return b[:11], len(s) }},
}

// TestDamagedSegments: each damage in the middle segment of a chain, and in
// the newest one. Damage loses only the records it hits, is kept in
// quarantine and counted; a cut at the end of the newest segment is a torn
// tail. A second start finds the repaired chain and reports nothing.
func TestDamagedSegments(t *testing.T) {
	for _, d := range segmentDamages {
		for _, newest := range []bool{false, true} {
			if d.torn && !newest {
				continue
			}
			where := "middle segment"
			if newest {
				where = "newest segment"
			}
			t.Run(d.name+" in the "+where, func(t *testing.T) {
				t.Parallel()
				y := newToy(t, Options{SyncInterval: -1})
				y.add(5)
				y.snapshot(false) // snapshot 2; segment 2 follows
				y.add(10)
				y.close()
				j, _, _ := Open(y.dir, Options{SyncInterval: -1}) // segment 3
				y.j = j
				y.add(10)
				y.close()
				seq := uint64(3)
				if !newest {
					seq = 2
				}
				path := filepath.Join(y.dir, segName(seq))
				orig, _ := os.ReadFile(path)
				starts := recordStarts(orig)
				damaged, lost := d.damage(orig, starts)
				os.WriteFile(path, damaged, 0o600)

				j, r, err := Open(y.dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				j.Close()
				got := recovered(r)
				if len(got) != len(y.applied)-lost || !isSubsequence(got, y.applied) {
					t.Fatalf("recovered %d records of %d, want %d lost\n%v", len(got), len(y.applied), lost, got)
				}
				q := files(t, y.dir, "quarantine/*")
				if d.torn {
					if r.Loss.Damaged() || r.Loss.TornTailBytes == 0 || len(q) != 0 {
						t.Fatalf("torn tail: loss %+v, quarantine %v", r.Loss, q)
					}
				} else {
					if !r.Loss.Damaged() || r.Loss.SegmentsQuarantined != 1 || len(q) != 1 {
						t.Fatalf("damage: loss %+v, quarantine %v", r.Loss, q)
					}
					if b, _ := os.ReadFile(q[0]); !bytes.Equal(b, damaged) {
						t.Fatal("the quarantined file is not the damaged segment as it was")
					}
				}
				if r.Clean {
					t.Fatal("clean after a loss")
				}
				j, r, err = Open(y.dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				j.Close()
				if again := recovered(r); !same(again, got) || r.Loss.Damaged() || r.Loss.TornTailBytes != 0 {
					t.Fatalf("second start: %d records, loss %+v", len(again), r.Loss)
				}
			})
		}
	}
}

func isSubsequence(sub, all []string) bool {
	i := 0
	for _, s := range all {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// TestMissingAndForeignSegments: a segment deleted from the middle of the
// chain, or replaced by another one's file, is reported; the rest replays.
func TestMissingAndForeignSegments(t *testing.T) {
	build := func(t *testing.T) *toy {
		y := newToy(t, Options{SyncInterval: -1})
		for range 3 {
			y.add(4)
			y.close()
			y.j, _, _ = Open(y.dir, Options{SyncInterval: -1})
		}
		y.add(4)
		y.close()
		return y // segments 1..4, 4 records each
	}
	t.Run("deleted", func(t *testing.T) {
		y := build(t)
		os.Remove(filepath.Join(y.dir, segName(2)))
		j, r, err := Open(y.dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
		if len(r.Records) != 12 || r.Loss.SegmentsMissing != 1 {
			t.Fatalf("%d records, loss %+v", len(r.Records), r.Loss)
		}
	})
	t.Run("foreign", func(t *testing.T) {
		y := build(t)
		b, _ := os.ReadFile(filepath.Join(y.dir, segName(3)))
		os.WriteFile(filepath.Join(y.dir, segName(2)), b, 0o600)
		j, r, err := Open(y.dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
		if len(r.Records) != 12 || r.Loss.SegmentsMissing != 1 || r.Loss.SegmentsQuarantined != 1 {
			t.Fatalf("%d records, loss %+v", len(r.Records), r.Loss)
		}
	})
}

// TestEveryByteFlipped flips each byte of each file of a journal with two
// snapshot generations in turn. Open never fails, never invents or
// reorders a record, and whenever the state is not complete it reports a
// loss; a damaged snapshot costs nothing.
func TestEveryByteFlipped(t *testing.T) {
	y := newToy(t, Options{SyncInterval: -1})
	y.add(3)
	y.snapshot(false)
	y.add(3)
	y.snapshot(false)
	y.add(3)
	y.close()
	orig := map[string][]byte{}
	for _, f := range files(t, y.dir, "*") {
		b, _ := os.ReadFile(f)
		orig[filepath.Base(f)] = b
	}
	cases := 0
	for name, b := range orig {
		for off := range b {
			dir := t.TempDir()
			for n, c := range orig {
				if n == name {
					c = flipped(c, off)
				}
				os.WriteFile(filepath.Join(dir, n), c, 0o600)
			}
			j, r, err := Open(dir, Options{})
			if err != nil {
				t.Fatalf("%s byte %d: %v", name, off, err)
			}
			j.Close()
			got := recovered(r)
			complete := same(got, y.applied)
			switch {
			case !isSubsequence(got, y.applied):
				t.Fatalf("%s byte %d: recovered %v", name, off, got)
			case !complete && !r.Loss.Damaged() && r.Loss.TornTailBytes == 0:
				t.Fatalf("%s byte %d: %d of %d records and no loss reported", name, off, len(got), len(y.applied))
			case strings.HasPrefix(name, "snapshot-") && !complete:
				t.Fatalf("%s byte %d: a damaged snapshot lost records", name, off)
			case r.Clean:
				t.Fatalf("%s byte %d: clean", name, off)
			}
			cases++
		}
	}
	t.Logf("%d single-byte flips", cases)
}

// TestVersion1Files: a journal written before checksummed headers is still
// read; damage in it is quarantined, not cut in place.
func TestVersion1Files(t *testing.T) {
	v1rec := func(b []byte, r string) []byte {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = binary.BigEndian.AppendUint32(b, checksum([]byte(r)))
		return append(b, r...)
	}
	v1snap := func(data string, clean bool) []byte {
		b := []byte(snapMagicV1)
		if clean {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = binary.BigEndian.AppendUint64(b, uint64(len(data)))
		b = binary.BigEndian.AppendUint32(b, checksum([]byte(data)))
		return append(b, data...)
	}
	t.Run("clean stop", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, snapName(5)), v1snap("a\nb", true), 0o600)
		os.WriteFile(filepath.Join(dir, segName(5)), nil, 0o600)
		j, r, err := Open(dir, Options{})
		if err != nil || !r.Clean || string(r.Snapshot) != "a\nb" || len(r.Records) != 0 {
			t.Fatalf("%+v %v", r, err)
		}
		j.Close()
	})
	t.Run("damage", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, snapName(5)), v1snap("a", false), 0o600)
		var seg []byte
		for i := range 10 {
			seg = v1rec(seg, fmt.Sprint("r", i))
		}
		seg[20] ^= 1
		os.WriteFile(filepath.Join(dir, segName(6)), seg, 0o600)
		j, r, err := Open(dir, Options{})
		if err != nil || r.Clean || len(r.Records) == 0 || len(r.Records) >= 10 || !r.Loss.Damaged() {
			t.Fatalf("%d records, %+v %v", len(r.Records), r.Loss, err)
		}
		j.Close()
		if q := files(t, dir, "quarantine/wal-*"); len(q) != 1 {
			t.Fatalf("quarantine %v", q)
		}
	})
}

// TestInterruptedSnapshot: a crash after a snapshot was written but before
// the segment after it: recovery uses the snapshot, reports nothing lost,
// and the next segment fills the place.
func TestInterruptedSnapshot(t *testing.T) {
	y := newToy(t, Options{SyncInterval: -1})
	y.add(5)
	y.snapshot(true)
	y.close()
	segs := files(t, y.dir, "wal-*")
	os.Remove(segs[len(segs)-1])
	j, r, err := Open(y.dir, Options{})
	if err != nil || !r.Clean || r.Loss.Damaged() {
		t.Fatalf("%+v %v", r, err)
	}
	if j.Seq() != r.Base {
		t.Fatalf("segment %d after snapshot %d", j.Seq(), r.Base)
	}
	j.Close()
}

// TestStrayNames: files named with sequence numbers far from the chain (0,
// the highest) neither stall recovery nor exhaust the numbers.
func TestStrayNames(t *testing.T) {
	y := newToy(t, Options{SyncInterval: -1})
	y.add(3)
	y.snapshot(false)
	y.add(3)
	y.close()
	os.WriteFile(filepath.Join(y.dir, segName(0)), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(y.dir, snapName(^uint64(0))), []byte("junk"), 0o600)
	j, r, err := Open(y.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if got := recovered(r); !same(got, y.applied) || r.Loss.SegmentsMissing != 0 || r.Loss.SnapshotsQuarantined != 1 {
		t.Fatalf("%d records, %+v", len(got), r.Loss)
	}
	// A segment far ahead: counted as the hole it leaves, quickly.
	os.WriteFile(filepath.Join(y.dir, segName(1<<40)), segHeader(1<<40, 0), 0o600)
	j, r, err = Open(y.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if r.Loss.SegmentsMissing == 0 {
		t.Fatalf("%+v", r.Loss)
	}
}
