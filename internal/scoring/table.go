package scoring

import (
	"math/bits"
	"math/rand/v2"
)

// table maps keys to positions in the entry table. It replaces a Go map
// because a lookup there costs two cache misses (control word, then slot)
// before the entry itself is touched; here a slot holds a 32-bit hash and
// the entry's position, eight to a cache line, and the key is compared in
// the entry, which Observe reads anyway. It uses linear probing with
// backward-shift deletion, so it needs no tombstones.
//
// The hash is seeded at random: sources of fwlogs packets can be spoofed,
// and a fixed hash would let anyone aim a million addresses at one probe
// sequence. The seed changes only the layout, never what the scorer
// decides or writes, so determinism holds.
type table struct {
	slots []slot // a power of two long
	mask  uint32
	n     int
	seed  [2]uint64
}

// slot is empty when pos is 0; otherwise pos-1 indexes the entries.
type slot struct {
	hash uint32
	pos  uint32
}

const minTable = 16

func newTable(n int) table {
	t := table{seed: [2]uint64{rand.Uint64(), rand.Uint64()}}
	t.resize(n)
	return t
}

// hash is one round of wyhash's multiply-and-fold on the two halves of
// the key, each mixed with its own secret.
func (t *table) hash(k key) uint32 {
	hi, lo := bits.Mul64(k.hi^t.seed[0], k.lo^t.seed[1])
	h := hi ^ lo
	return uint32(h ^ h>>32)
}

// resize makes room for n keys at a load of at most 3/4 and reinserts.
func (t *table) resize(n int) {
	size := minTable
	for size*3/4 < n {
		size *= 2
	}
	if size == len(t.slots) {
		return
	}
	old := t.slots
	t.slots = make([]slot, size)
	t.mask = uint32(size - 1)
	for _, s := range old {
		if s.pos != 0 {
			t.place(s)
		}
	}
}

func (t *table) place(s slot) {
	i := s.hash & t.mask
	for t.slots[i].pos != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = s
}

// find returns the slot of k, or -1.
func (t *table) find(k key, ents *entries) int {
	h := t.hash(k)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.pos == 0 {
			return -1
		}
		if s.hash == h && ents.at(s.pos-1).k == k {
			return int(i)
		}
	}
}

// get returns the position of k's entry.
func (t *table) get(k key, ents *entries) (uint32, bool) {
	if i := t.find(k, ents); i >= 0 {
		return t.slots[i].pos - 1, true
	}
	return 0, false
}

// insert adds k, which must be absent, at entry position p.
func (t *table) insert(k key, p uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(t.n + 1)
	}
	t.place(slot{t.hash(k), p + 1})
	t.n++
}

// add inserts k at entry position p unless it is present already, in
// one probe sequence, and reports whether it did.
func (t *table) add(k key, p uint32, ents *entries) bool {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(t.n + 1)
	}
	h := t.hash(k)
	i := h & t.mask
	for ; t.slots[i].pos != 0; i = (i + 1) & t.mask {
		if t.slots[i].hash == h && ents.at(t.slots[i].pos-1).k == k {
			return false
		}
	}
	t.slots[i] = slot{h, p + 1}
	t.n++
	return true
}

// move records that k's entry is now at position p.
func (t *table) move(k key, p uint32, ents *entries) {
	if i := t.find(k, ents); i >= 0 {
		t.slots[i].pos = p + 1
	}
}

// remove deletes k, shifting back the slots that probed past it.
func (t *table) remove(k key, ents *entries) {
	i := t.find(k, ents)
	if i < 0 {
		return
	}
	t.n--
	hole := uint32(i)
	for j := (hole + 1) & t.mask; t.slots[j].pos != 0; j = (j + 1) & t.mask {
		home := t.slots[j].hash & t.mask
		// The slot at j stays if its home lies cyclically in (hole, j].
		if hole <= j && hole < home && home <= j || hole > j && (hole < home || home <= j) {
			continue
		}
		t.slots[hole] = t.slots[j]
		hole = j
	}
	t.slots[hole] = slot{}
}
