package core

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/dynfw/sentinel/internal/events"
)

// Journal record kinds. Every change of the scorer's state is driven by
// one of these, so replaying them reproduces the state exactly.
const (
	recEvent   = 1 // an ingested event (or one derived by the port-scan detector)
	recTick    = 2 // a clock tick: listings may end, overrides expire
	recBlock   = 3 // admin: list a key until a time
	recUnblock = 4 // admin: keep a key off the list until a time
	recClear   = 5 // admin: remove an override
	// recStart opens every run, synced before its first publication: it
	// consumes the clean-stop mark of the snapshot before it (a start that
	// follows it is not clean) and keeps the version the run publishes, the
	// floor of the next one.
	recStart = 6
)

var errRecord = errors.New("server: corrupt journal record")

// appendEventRecord encodes an event. Types and probes are written by name:
// interned numbers are not stable across restarts.
func appendEventRecord(b []byte, e *events.Event, probe string, derived bool) []byte {
	b = append(b, recEvent)
	b = binary.AppendVarint(b, e.Time)
	b = binary.AppendVarint(b, e.TS)
	b = appendString(b, e.Type.String())
	b = appendAddr(b, e.Addr)
	b = appendString(b, probe)
	flags := byte(e.Source)
	if derived {
		flags |= 0x80
	}
	return append(b, flags)
}

type eventRecord struct {
	e       events.Event
	probe   string
	typ     string
	derived bool
}

func parseEventRecord(b []byte) (eventRecord, error) {
	var r eventRecord
	var n int
	r.e.Time, n = binary.Varint(b)
	if n <= 0 {
		return r, errRecord
	}
	b = b[n:]
	r.e.TS, n = binary.Varint(b)
	if n <= 0 {
		return r, errRecord
	}
	b = b[n:]
	var ok bool
	if r.typ, b, ok = readString(b); !ok {
		return r, errRecord
	}
	if r.e.Addr, b, ok = readAddr(b); !ok {
		return r, errRecord
	}
	if r.probe, b, ok = readString(b); !ok {
		return r, errRecord
	}
	if len(b) != 1 {
		return r, errRecord
	}
	r.e.Source = events.Source(b[0] & 0x7f)
	r.derived = b[0]&0x80 != 0
	return r, nil
}

func appendStartRecord(b []byte, version, serial uint64) []byte {
	b = binary.AppendUvarint(append(b, recStart), version)
	return binary.AppendUvarint(b, serial)
}

func parseStartRecord(b []byte) (version, serial uint64, err error) {
	var ok bool
	if version, b, ok = readUvarint(b); !ok {
		return 0, 0, errRecord
	}
	if serial, b, ok = readUvarint(b); !ok || len(b) != 0 {
		return 0, 0, errRecord
	}
	return version, serial, nil
}

func appendTickRecord(b []byte, t int64) []byte {
	return binary.AppendVarint(append(b, recTick), t)
}

// appendAdminRecord encodes a block, unblock or clear.
func appendAdminRecord(b []byte, kind byte, key netip.Prefix, at, until int64, reason string) []byte {
	b = append(b, kind)
	b = appendAddr(b, key.Addr())
	b = append(b, byte(key.Bits()))
	b = binary.AppendVarint(b, at)
	b = binary.AppendVarint(b, until)
	return appendString(b, reason)
}

type adminRecord struct {
	key       netip.Prefix
	at, until int64
	reason    string
}

func parseAdminRecord(b []byte) (adminRecord, error) {
	var r adminRecord
	a, b, ok := readAddr(b)
	if !ok || len(b) < 1 {
		return r, errRecord
	}
	bits := int(b[0])
	p, err := a.Prefix(bits)
	if err != nil {
		return r, errRecord
	}
	r.key = p
	b = b[1:]
	var n int
	if r.at, n = binary.Varint(b); n <= 0 {
		return r, errRecord
	}
	b = b[n:]
	if r.until, n = binary.Varint(b); n <= 0 {
		return r, errRecord
	}
	b = b[n:]
	if r.reason, b, ok = readString(b); !ok || len(b) != 0 {
		return r, errRecord
	}
	return r, nil
}

// readUvarint reads an unsigned varint and returns the rest of b.
func readUvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

// readVarint reads a signed varint and returns the rest of b.
func readVarint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(append(b, 4), v[:]...)
	}
	v := a.As16()
	return append(append(b, 16), v[:]...)
}

func readAddr(b []byte) (netip.Addr, []byte, bool) {
	if len(b) < 1 {
		return netip.Addr{}, nil, false
	}
	switch b[0] {
	case 4:
		if len(b) < 5 {
			return netip.Addr{}, nil, false
		}
		return netip.AddrFrom4([4]byte(b[1:5])), b[5:], true
	case 16:
		if len(b) < 17 {
			return netip.Addr{}, nil, false
		}
		return netip.AddrFrom16([16]byte(b[1:17])), b[17:], true
	}
	return netip.Addr{}, nil, false
}
