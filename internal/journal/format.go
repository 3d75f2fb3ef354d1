package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk format, version 2. Damage to any byte is detected by a CRC-32C
// (a record's marker and length are not summed, but damage to them makes
// the record fail its checksum or its framing).
//
// Segment wal-<seq>.log: a header, then records.
//
//	header: "SNTLWAL2" | seq uint64 | flags byte | CRC-32C of the 17 bytes before it
//	record: 0xA7 0x5C | length uint32 | CRC-32C of the data | data
//
// Header flag bit 0 says that the segment was opened right after
// snapshot-<seq>.bin, so that a snapshot deleted later is noticed. The seq in
// the header must match the file name: a renamed or foreign file is not
// replayed. The two marker bytes let recovery find the next record after a
// damaged one: it scans for a position where marker, length and CRC agree.
//
// Snapshot snapshot-<seq>.bin:
//
//	"SNTLSNP2" | seq uint64 | flags byte (bit 0: clean) | length uint64 | CRC-32C of the 25 bytes before it and the data | data
//
// Version 1, written before, is still read: segments are records of uvarint
// length | CRC-32C of the data | data, with no header; snapshots are
// "SNTLSNP1" | flags | length uint64 | CRC-32C of the data | data. Version 1
// records have no marker, so nothing after a damaged one can be found again.
// Integers are big-endian.
const (
	segMagic      = "SNTLWAL2"
	segHeaderLen  = 8 + 8 + 1 + 4
	segAtSnapshot = 1 // header flag: opened right after snapshot-<seq>.bin

	marker0, marker1 = 0xA7, 0x5C
	recHeaderLen     = 2 + 4 + 4

	snapMagic     = "SNTLSNP2"
	snapMagicV1   = "SNTLSNP1"
	snapHeaderLen = 8 + 8 + 1 + 8 + 4
	snapClean     = 1 // snapshot flag: written by a graceful stop
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

func segHeader(seq uint64, flags byte) []byte {
	b := make([]byte, 0, segHeaderLen)
	b = append(b, segMagic...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, flags)
	return binary.BigEndian.AppendUint32(b, checksum(b))
}

// parseSegHeader reports the sequence number and flags of a valid header.
func parseSegHeader(b []byte) (seq uint64, flags byte, ok bool) {
	if len(b) < segHeaderLen || string(b[:8]) != segMagic ||
		checksum(b[:segHeaderLen-4]) != binary.BigEndian.Uint32(b[segHeaderLen-4:]) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[8:]), b[16], true
}

// putRecordHeader fills hdr for rec.
func putRecordHeader(hdr *[recHeaderLen]byte, rec []byte) {
	hdr[0], hdr[1] = marker0, marker1
	binary.BigEndian.PutUint32(hdr[2:], uint32(len(rec)))
	binary.BigEndian.PutUint32(hdr[6:], checksum(rec))
}

// parseRecord reads the record at b[p:], if one verifies there.
func parseRecord(b []byte, p int) (rec []byte, next int, ok bool) {
	if len(b)-p < recHeaderLen || b[p] != marker0 || b[p+1] != marker1 {
		return nil, 0, false
	}
	size := binary.BigEndian.Uint32(b[p+2:])
	if size > MaxRecord || uint64(len(b)-p-recHeaderLen) < uint64(size) {
		return nil, 0, false
	}
	end := p + recHeaderLen + int(size)
	data := b[p+recHeaderLen : end]
	if checksum(data) != binary.BigEndian.Uint32(b[p+6:]) {
		return nil, 0, false
	}
	return data, end, true
}

// nextRecord returns the first position at or after from where a record
// verifies, or -1.
func nextRecord(b []byte, from int) int {
	for from < len(b) {
		i := bytes.IndexByte(b[from:], marker0)
		if i < 0 {
			return -1
		}
		p := from + i
		if _, _, ok := parseRecord(b, p); ok {
			return p
		}
		from = p + 1
	}
	return -1
}

// parseRecordV1 reads a version 1 record at b[p:].
func parseRecordV1(b []byte, p int) (rec []byte, next int, ok bool) {
	size, n := binary.Uvarint(b[p:])
	if n <= 0 || size > MaxRecord || uint64(len(b)-p-n) < 4 || uint64(len(b)-p-n-4) < size {
		return nil, 0, false
	}
	start := p + n + 4
	data := b[start : start+int(size)]
	if checksum(data) != binary.BigEndian.Uint32(b[p+n:]) {
		return nil, 0, false
	}
	return data, start + int(size), true
}

// segment is what a read of one segment file found.
type segment struct {
	records [][]byte
	v1      bool  // version 1 format (no header)
	flags   byte  // header flags
	foreign bool  // a valid header of another sequence number
	badHead bool  // a damaged header (records are still looked for)
	regions int   // damaged runs of bytes between records
	skipped int64 // bytes in those runs
	tail    int64 // bytes after the last record that verifies
	good    int64 // end of the last record that verifies (or of the header)
}

// readSegment parses the bytes of segment seq. It never fails: whatever
// does not verify is counted.
func readSegment(b []byte, seq uint64) segment {
	var s segment
	off := 0
	switch hseq, flags, ok := parseSegHeader(b); {
	case ok && hseq != seq:
		s.foreign = true
		return s
	case ok:
		s.flags, off = flags, segHeaderLen
	case len(b) == 0:
		s.v1 = true // an empty file: version 1 left these, and an interrupted open
		return s
	case len(b) < segHeaderLen && bytes.HasPrefix(segHeader(seq, 0), b[:min(len(b), 8+8)]):
		// Cut while the header was being written: nothing was in it yet.
		s.tail = int64(len(b))
		return s
	case !bytes.HasPrefix(b, []byte(segMagic)) && validV1Start(b):
		return readSegmentV1(b)
	default:
		// A damaged header: the records after it may still verify.
		s.badHead = true
		first := nextRecord(b, 0)
		if first < 0 {
			s.tail = int64(len(b))
			return s
		}
		if first > segHeaderLen {
			s.regions++
			s.skipped += int64(first - segHeaderLen)
		}
		off = first
	}
	s.good = int64(off)
	for off < len(b) {
		if rec, next, ok := parseRecord(b, off); ok {
			s.records = append(s.records, rec)
			off = next
			s.good = int64(off)
			continue
		}
		p := nextRecord(b, off+1)
		if p < 0 {
			s.tail = int64(len(b) - off)
			break
		}
		s.regions++
		s.skipped += int64(p - off)
		off = p
	}
	return s
}

// validV1Start reports whether b begins with a version 1 record.
func validV1Start(b []byte) bool {
	_, _, ok := parseRecordV1(b, 0)
	return ok
}

func readSegmentV1(b []byte) segment {
	s := segment{v1: true}
	off := 0
	for off < len(b) {
		rec, next, ok := parseRecordV1(b, off)
		if !ok {
			s.tail = int64(len(b) - off)
			break
		}
		s.records = append(s.records, rec)
		off = next
	}
	s.good = int64(off)
	return s
}

func snapHeader(seq uint64, clean bool, data []byte) []byte {
	b := make([]byte, 0, snapHeaderLen)
	b = append(b, snapMagic...)
	b = binary.BigEndian.AppendUint64(b, seq)
	var flags byte
	if clean {
		flags = snapClean
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(len(data)))
	return binary.BigEndian.AppendUint32(b, crc32.Update(checksum(b), crcTable, data))
}

// parseSnapshot verifies the bytes of snapshot seq and returns its data.
func parseSnapshot(b []byte, seq uint64) (data []byte, clean bool, err error) {
	switch {
	case len(b) >= len(snapMagic) && string(b[:len(snapMagic)]) == snapMagic:
		if len(b) < snapHeaderLen {
			return nil, false, errors.New("cut short in its header")
		}
		h := b[:snapHeaderLen]
		size := binary.BigEndian.Uint64(h[17:])
		data = b[snapHeaderLen:]
		if uint64(len(data)) != size {
			return nil, false, fmt.Errorf("%d bytes of data where the header says %d", len(data), size)
		}
		if crc32.Update(checksum(h[:snapHeaderLen-4]), crcTable, data) != binary.BigEndian.Uint32(h[snapHeaderLen-4:]) {
			return nil, false, errors.New("checksum mismatch")
		}
		if s := binary.BigEndian.Uint64(h[8:]); s != seq {
			return nil, false, fmt.Errorf("holds sequence %d, not the %d of its name", s, seq)
		}
		return data, h[16]&snapClean != 0, nil
	case len(b) >= len(snapMagicV1) && string(b[:len(snapMagicV1)]) == snapMagicV1:
		const hl = 8 + 1 + 8 + 4
		if len(b) < hl {
			return nil, false, errors.New("cut short in its header")
		}
		size := binary.BigEndian.Uint64(b[9:])
		data = b[hl:]
		if uint64(len(data)) != size || checksum(data) != binary.BigEndian.Uint32(b[17:]) {
			return nil, false, errors.New("cut short or checksum mismatch")
		}
		return data, b[8]&snapClean != 0, nil
	case len(b) == 0:
		return nil, false, errors.New("empty")
	}
	return nil, false, errors.New("not a snapshot")
}
