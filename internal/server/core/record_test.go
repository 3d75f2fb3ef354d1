package core

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/dynfw/sentinel/internal/events"
)

// TestRecordsRoundTrip: every journal record kind decodes to what was
// encoded, and every truncation of one is refused as errRecord.
func TestRecordsRoundTrip(t *testing.T) {
	e := events.Event{Time: 1_700_000_000_123, TS: 1_700_000_000, Type: events.TelnetLogin,
		Addr: netip.MustParseAddr("2001:db8::7"), Source: events.FromZMQ}
	rec := appendEventRecord(nil, &e, "zmq:probe", true)
	if rec[0] != recEvent {
		t.Fatalf("kind %d", rec[0])
	}
	er, err := parseEventRecord(rec[1:])
	if err != nil || er.e.Time != e.Time || er.e.TS != e.TS || er.e.Addr != e.Addr || er.e.Source != e.Source ||
		er.typ != "telnet_login" || er.probe != "zmq:probe" || !er.derived {
		t.Fatalf("event record: %+v %v", er, err)
	}
	for n := 1; n < len(rec); n++ {
		if _, err := parseEventRecord(rec[1:n]); !errors.Is(err, errRecord) {
			t.Fatalf("event record cut to %d bytes: %v", n, err)
		}
	}

	rec = appendStartRecord(nil, 1_700_000_001, 42)
	if v, s, err := parseStartRecord(rec[1:]); err != nil || v != 1_700_000_001 || s != 42 {
		t.Fatalf("start record: %d %d %v", v, s, err)
	}
	if _, _, err := parseStartRecord(append(rec[1:], 0)); !errors.Is(err, errRecord) {
		t.Fatalf("start record with a trailing byte: %v", err)
	}

	key := netip.MustParsePrefix("45.155.205.0/24")
	rec = appendAdminRecord(nil, recBlock, key, 5, 9, "seen in our logs")
	ar, err := parseAdminRecord(rec[1:])
	if err != nil || rec[0] != recBlock || ar.key != key || ar.at != 5 || ar.until != 9 || ar.reason != "seen in our logs" {
		t.Fatalf("admin record: %+v %v", ar, err)
	}
	for n := 1; n < len(rec); n++ {
		if _, err := parseAdminRecord(rec[1:n]); !errors.Is(err, errRecord) {
			t.Fatalf("admin record cut to %d bytes: %v", n, err)
		}
	}

	rec = appendTickRecord(nil, -7)
	if v, rest, ok := readVarint(rec[1:]); !ok || v != -7 || len(rest) != 0 {
		t.Fatalf("tick record: %d %v", v, ok)
	}
}
