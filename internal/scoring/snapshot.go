package scoring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/dynfw/sentinel/internal/events"
)

// The snapshot format, version 1. Integers are varints (signed for times)
// unless said otherwise; str is a uvarint length and bytes.
//
//	"DFWS" version:byte v6bits
//	ntypes {name:str tag:str}       the event types by number at writing time
//	nkeys  {entry}                  in table order
//	nover  {override}
//	crc32:4 (IEEE, little endian, of everything before)
//
//	entry:    flags:byte addr:4|16 score:8 first last-first
//	          [since minEnd]         when listed
//	          [offences lastEnd]     when either is not 0
//	          nprobe:byte {id c:4}   c is a float32
//	          ntypes {type count}
//	          [n {open:byte start end reason:str endReason:str}]  when it has history
//	override: flags:byte addr:4|16 set until reason:str
//
// Types are written by name, since types registered at run time may get
// other numbers in the next process. The heap, the never-listed flags and
// the counters are derived again on Restore, the flags from the new
// configuration, so that an address added to the allow-list leaves the
// list at the first Tick after a restart.
const (
	snapMagic   = "DFWS"
	snapVersion = 1
	// minEntry is the size of the smallest entry, which bounds how many a
	// snapshot of a given length can claim.
	minEntry = 1 + 4 + 8 + 1 + 1 + 1 + 1
)

// Snapshot entry flags.
const (
	sV6 = 1 << iota
	sListed
	sSeen
	sProbesFull
	sOffences
	sHistory
	sUnblock // overrides only
)

// ErrSnapshot is wrapped by every error of Restore.
var ErrSnapshot = errors.New("scoring: bad snapshot")

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendKey(b []byte, flags byte, k key) []byte {
	if k.is4() {
		return binary.BigEndian.AppendUint32(append(b, flags), uint32(k.lo))
	}
	b = append(b, flags|sV6)
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, k.hi), k.lo)
}

// AppendSnapshot appends the whole state (keys, listings, histories,
// overrides) to b in a compact versioned encoding, and returns the
// extended slice. The same state always gives the same bytes.
func (s *Scorer) AppendSnapshot(b []byte) []byte {
	start := len(b)
	b = append(b, snapMagic...)
	b = append(b, snapVersion)
	b = binary.AppendUvarint(b, uint64(s.v6bits))
	n := events.Count()
	b = binary.AppendUvarint(b, uint64(n))
	for t := range n {
		b = appendStr(appendStr(b, events.Type(t).String()), events.Type(t).Tag())
	}
	b = binary.AppendUvarint(b, uint64(s.ents.n))
	for i := range s.ents.n {
		b = s.appendEntry(b, s.ents.at(i))
	}
	b = binary.AppendUvarint(b, uint64(len(s.ovr)))
	for i := range s.ents.n {
		en := s.ents.at(i)
		if en.flags&fOverride == 0 {
			continue
		}
		o := s.ovr[en.k]
		var f byte
		if o.unblock {
			f = sUnblock
		}
		b = appendKey(b, f, en.k)
		b = binary.AppendVarint(b, o.set)
		b = binary.AppendVarint(b, o.until)
		b = appendStr(b, o.reason)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

func (s *Scorer) appendEntry(b []byte, en *entry) []byte {
	var f byte
	if en.flags&fListed != 0 {
		f |= sListed
	}
	if en.flags&fSeen != 0 {
		f |= sSeen
	}
	if en.flags&fProbesFull != 0 {
		f |= sProbesFull
	}
	if en.offences > 0 || en.lastEnd != 0 {
		f |= sOffences
	}
	h := s.hist[en.k]
	if len(h) > 0 {
		f |= sHistory
	}
	b = appendKey(b, f, en.k)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(en.score))
	b = binary.AppendVarint(b, en.first)
	b = binary.AppendUvarint(b, uint64(en.last-en.first))
	if f&sListed != 0 {
		b = binary.AppendVarint(b, en.since)
		b = binary.AppendVarint(b, en.minEnd)
	}
	if f&sOffences != 0 {
		b = binary.AppendUvarint(b, uint64(en.offences))
		b = binary.AppendVarint(b, en.lastEnd)
	}
	b = append(b, en.nprobe)
	for _, p := range en.probes[:en.nprobe] {
		b = binary.AppendUvarint(b, uint64(p.id))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.c))
	}
	n := int(en.ntypes)
	more := s.more[en.k]
	if en.ntypes == inlineTypes {
		n += len(more)
	}
	b = binary.AppendUvarint(b, uint64(n))
	s.eachType(en, func(t events.Type, c uint32) {
		b = binary.AppendUvarint(binary.AppendUvarint(b, uint64(t)), uint64(c))
	})
	if f&sHistory != 0 {
		b = binary.AppendUvarint(b, uint64(len(h)))
		for _, l := range h {
			var open byte
			if l.open {
				open = 1
			}
			b = append(b, open)
			b = binary.AppendVarint(b, l.start)
			b = binary.AppendVarint(b, l.end)
			b = appendStr(appendStr(b, l.reason), l.endReason)
		}
	}
	return b
}

// reader decodes a snapshot. The first error sticks; later reads return
// zero values, so decoding code checks once per record.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, a...)...)
	}
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) byte() byte {
	if p := r.next(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.next(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.next(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of records of at least size bytes each, checking
// it against what is left, so that no allocation exceeds the input.
func (r *reader) count(size int, what string) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/size) {
		r.fail("%d %s cannot fit in %d bytes", n, what, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("truncated string")
		return ""
	}
	return string(r.next(int(n)))
}

func (r *reader) key(flags byte, v6bits int) key {
	if flags&sV6 == 0 {
		p := r.next(4)
		if p == nil {
			return key{}
		}
		return key{lo: v4Mark | uint64(binary.BigEndian.Uint32(p))}
	}
	p := r.next(16)
	if p == nil {
		return key{}
	}
	k := key{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])}
	if k.is4() || mask(k, v6bits) != k {
		r.fail("IPv6 key %v is not a /%d", k.addr(), v6bits)
	}
	return k
}

func finite(f float64) bool { return f >= 0 && !math.IsInf(f, 0) }

// Restore rebuilds a scorer from a snapshot taken by AppendSnapshot,
// under cfg. It checks the checksum and every length and value, and never
// panics: any fault gives an error wrapping ErrSnapshot. A snapshot taken
// with another IPv6Prefix is refused, since its keys cannot be split or
// merged faithfully. Counts of event types the process does not know are
// dropped: register custom types before restoring.
func Restore(cfg Config, b []byte) (*Scorer, error) {
	s := New(cfg)
	if len(b) < len(snapMagic)+1+4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrSnapshot, len(b))
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	if string(body[:4]) != snapMagic {
		return nil, fmt.Errorf("%w: not a scoring snapshot", ErrSnapshot)
	}
	if v := body[4]; v != snapVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSnapshot, v, snapVersion)
	}
	r := &reader{b: body[5:]}
	if bits := r.uvarint(); r.err == nil && bits != uint64(s.v6bits) {
		return nil, fmt.Errorf("%w: IPv6 keys are /%d, the configuration wants /%d", ErrSnapshot, bits, s.v6bits)
	}

	ntypes := r.count(2, "event types")
	if ntypes > 1<<16 {
		r.fail("%d event types", ntypes)
	}
	names := make([]string, 0, ntypes)
	byName := make(map[string]bool, ntypes)
	for range ntypes {
		name := r.str()
		r.str() // the tag, for readers of the format; the registry has it
		if byName[name] {
			r.fail("event type %q twice", name)
		}
		byName[name] = true
		names = append(names, name)
	}
	// seen[t] is the entry number+1 that last used type t, to refuse
	// duplicates in linear time.
	seen := make([]uint32, ntypes)

	nkeys := r.count(minEntry, "keys")
	if nkeys >= math.MaxUint32 {
		r.fail("%d keys", nkeys)
	}
	if r.err != nil {
		return nil, r.err
	}
	s.index = newTable(nkeys)
	invalid := slices.Index(names, events.Invalid.String())
	for i := range nkeys {
		s.readEntry(r, uint32(i), ntypes, invalid, seen)
		if r.err != nil {
			return nil, r.err
		}
	}
	// Index the keys in a loop of its own: its cache misses are
	// independent and overlap, where inside the decoding they would not.
	for i := range s.ents.n {
		if !s.index.add(s.ents.at(i).k, i, &s.ents) {
			return nil, fmt.Errorf("%w: key %v twice", ErrSnapshot, s.ents.at(i).k.addr())
		}
	}

	nover := r.count(1+4+1+1+1, "overrides")
	for range nover {
		f := r.byte()
		if f&^(sV6|sUnblock) != 0 {
			r.fail("override flags %#x", f)
		}
		k := r.key(f, s.v6bits)
		o := override{unblock: f&sUnblock != 0, set: r.varint(), until: r.varint(), reason: r.str()}
		if r.err != nil {
			return nil, r.err
		}
		i, ok := s.index.get(k, &s.ents)
		if !ok || s.ents.at(i).flags&fOverride != 0 {
			return nil, fmt.Errorf("%w: override of %v without its key, or twice", ErrSnapshot, k.addr())
		}
		s.ents.at(i).flags |= fOverride
		s.ovr[k] = o
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}

	// Everything is valid: map the types by name. Counts of types this
	// process does not know are dropped rather than registered, since
	// registering would make ingest accept a name the configuration no
	// longer has.
	tmap := make([]events.Type, ntypes)
	same := true
	for i, name := range names {
		tmap[i], _ = events.Lookup(name) // Invalid when unknown
		same = same && int(tmap[i]) == i
	}
	for i := range s.ents.n {
		if !same {
			s.retype(s.ents.at(i), tmap)
		}
	}
	// Derived state, under the new configuration.
	s.heap = make(deadlines, 0, int(s.ents.n)+len(s.ovr))
	for i := range s.ents.n {
		en := s.ents.at(i)
		en.flags |= s.classify(en.k)
		if en.flags&fNever != 0 && en.flags&fOverride != 0 && !s.ovr[en.k].unblock {
			delete(s.ovr, en.k) // the allow-list wins over an old block
			en.flags &^= fOverride
		}
		if en.flags&fListed != 0 {
			s.listed++
		}
		en.heapAt = s.nextAt(en)
		en.flags |= fInHeap
		s.heap = append(s.heap, item{en.heapAt, en.k})
	}
	s.heap.init()
	return s, nil
}

func (s *Scorer) readEntry(r *reader, i uint32, ntypes, invalid int, seen []uint32) {
	f := r.byte()
	if f&^(sV6|sListed|sSeen|sProbesFull|sOffences|sHistory) != 0 {
		r.fail("entry flags %#x", f)
		return
	}
	// Decode in place into memory make cleared: entries are big, and a
	// million copies show.
	s.ents.grow()
	en := s.ents.at(i)
	en.k = r.key(f, s.v6bits)
	en.score = math.Float64frombits(r.u64())
	en.first = r.varint()
	span := r.uvarint()
	if span > math.MaxInt64 || en.first > math.MaxInt64-int64(span) {
		r.fail("last seen overflows")
	}
	en.last = en.first + int64(span)
	if !finite(en.score) {
		r.fail("score %v", en.score)
	}
	if f&sListed != 0 {
		en.flags |= fListed
		en.since, en.minEnd = r.varint(), r.varint()
	}
	if f&sSeen != 0 {
		en.flags |= fSeen
	}
	if f&sProbesFull != 0 {
		en.flags |= fProbesFull
	}
	if f&sOffences != 0 {
		n := r.uvarint()
		if n > math.MaxUint16 {
			r.fail("%d offences", n)
		}
		en.offences = uint16(n)
		en.lastEnd = r.varint()
	}
	en.nprobe = r.byte()
	if en.nprobe > maxProbes {
		r.fail("%d probes", en.nprobe)
		return
	}
	for j := range en.nprobe {
		id := r.uvarint()
		c := math.Float32frombits(r.u32())
		if id > math.MaxUint32 || !finite(float64(c)) {
			r.fail("probe %d part %v", id, c)
		}
		en.probes[j] = probeSlot{events.ProbeID(id), c}
	}
	nt := r.count(2, "type counts")
	if nt > ntypes {
		r.fail("%d type counts of %d types", nt, ntypes)
	}
	if r.err != nil {
		return
	}
	var more []typeCount
	for range nt {
		t, n := r.uvarint(), r.uvarint()
		if r.err != nil {
			return
		}
		if t >= uint64(ntypes) || int(t) == invalid || seen[t] == i+1 || n > math.MaxUint32 {
			r.fail("type count %d:%d", t, n)
			return
		}
		seen[t] = i + 1
		if en.ntypes < inlineTypes {
			en.types[en.ntypes], en.counts[en.ntypes] = events.Type(t), uint32(n)
			en.ntypes++
		} else {
			more = append(more, typeCount{events.Type(t), uint32(n)})
		}
	}
	if f&sHistory != 0 {
		nh := r.count(1+1+1+1+1, "listings")
		h := make([]listing, 0, min(nh, s.cfg.History))
		for j := range nh {
			l := listing{open: r.byte() == 1, start: r.varint(), end: r.varint(), reason: r.str(), endReason: r.str()}
			if l.open && (j != nh-1 || en.flags&fListed == 0) {
				r.fail("open listing not the current one")
			}
			if j >= nh-s.cfg.History {
				h = append(h, l)
			}
		}
		if r.err != nil {
			return
		}
		if len(h) > 0 {
			s.hist[en.k] = h
		}
	}
	if more != nil {
		s.more[en.k] = more
	}
}

// retype maps an entry's types from snapshot numbers to this process's,
// dropping unknown ones (mapped to Invalid).
func (s *Scorer) retype(en *entry, tmap []events.Type) {
	var more []typeCount
	if en.ntypes == inlineTypes {
		more = s.more[en.k]
	}
	known := true
	for j := range en.ntypes {
		en.types[j] = tmap[en.types[j]]
		known = known && en.types[j] != events.Invalid
	}
	for j := range more {
		more[j].t = tmap[more[j].t]
		known = known && more[j].t != events.Invalid
	}
	if known {
		return
	}
	var all []typeCount
	for j := range en.ntypes {
		if en.types[j] != events.Invalid {
			all = append(all, typeCount{en.types[j], en.counts[j]})
		}
	}
	for _, tc := range more {
		if tc.t != events.Invalid {
			all = append(all, tc)
		}
	}
	en.ntypes = 0
	for _, tc := range all[:min(len(all), inlineTypes)] {
		en.types[en.ntypes], en.counts[en.ntypes] = tc.t, tc.n
		en.ntypes++
	}
	delete(s.more, en.k)
	if len(all) > inlineTypes {
		s.more[en.k] = all[inlineTypes:]
	}
}
