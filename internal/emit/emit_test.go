package emit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/portscan"
)

var attacker = netip.MustParseAddr("45.155.205.9")

// parseAll runs messages through the server's parser.
func parseAll(t *testing.T, msgs []Message, received time.Time) []events.Event {
	t.Helper()
	var out []events.Event
	for _, m := range msgs {
		evs, errs := probe.Parse(nil, m.Suffix, m.Payload, probe.Meta{Received: received.UnixNano()})
		if len(errs) > 0 {
			t.Fatalf("%s: %v", m.Suffix, errs[0])
		}
		out = append(out, evs...)
	}
	return out
}

// TestEveryEvent: every event a probe reports comes out of the server's
// parser as itself, from the probe topic that reports it, with its
// details; minipot events in batches of ten.
func TestEveryEvent(t *testing.T) {
	t.Parallel()
	names := Events()
	if len(names) != 18 {
		t.Fatalf("events %v", names)
	}
	for _, name := range names {
		typ, _ := events.Lookup(name)
		s := Spec{Event: typ, Addr: attacker, Count: 12, Username: "admin", Password: "hunter2", Port: 8080}
		msgs, err := Messages(s, time.Now(), Batch(typ))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		evs := parseAll(t, msgs, time.Now())
		if len(evs) != 12 {
			t.Fatalf("%s: %d events", name, len(evs))
		}
		e := evs[0]
		if e.Type != typ || e.Addr != attacker {
			t.Fatalf("%s: parsed as %s from %s", name, e.Type, e.Addr)
		}
		switch {
		case typ.Action() == "login" && typ != events.SSHLoginFailed:
			if e.Details == nil || e.Details.Username != "admin" || e.Details.Password != "hunter2" {
				t.Errorf("%s: details %+v", name, e.Details)
			}
		case typ == events.SSHLoginFailed:
			if e.Details == nil || e.Details.Username != "admin" {
				t.Errorf("%s: details %+v", name, e.Details)
			}
		case typ == events.FwlogsPacket:
			if e.Details == nil || e.Details.LocalPort != 8080 || e.Details.Protocol != "TCP" {
				t.Errorf("%s: details %+v", name, e.Details)
			}
		}
		if want := 12; strings.HasPrefix(typ.Trap(), "minipot_") {
			if len(msgs) != 2 {
				t.Errorf("%s: %d messages for %d events, want batches of 10", name, len(msgs), want)
			}
		} else if len(msgs) != 12 {
			t.Errorf("%s: %d messages, want one per event", name, len(msgs))
		}
	}
}

// TestScans: the packets of --scan small and big make the server's
// detector report the scan.
func TestScans(t *testing.T) {
	t.Parallel()
	small, big := ScanTargets()
	for _, tc := range []struct {
		targets int
		want    []events.Type
	}{
		{small, []events.Type{events.FwlogsSmallPortScan}},
		{big, []events.Type{events.FwlogsSmallPortScan, events.FwlogsBigPortScan}},
		{small - 1, nil},
	} {
		msgs, err := Messages(Spec{Event: events.FwlogsPacket, Addr: attacker, Count: 1, Targets: tc.targets}, time.Now(), 1)
		if err != nil {
			t.Fatal(err)
		}
		d := portscan.New(portscan.DefaultConfig())
		var got []events.Type
		evs := parseAll(t, msgs, time.Now())
		if len(evs) != tc.targets {
			t.Fatalf("%d packets for %d targets", len(evs), tc.targets)
		}
		for i := range evs {
			if scan, ok := d.Observe(&evs[i]); ok {
				got = append(got, scan)
			}
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[len(got)-1] != tc.want[len(tc.want)-1]) {
			t.Errorf("%d targets: detector reported %v, want %v", tc.targets, got, tc.want)
		}
	}
}

// TestPlacement: with At and Spread the events' ts run evenly from
// At − Spread to At.
func TestPlacement(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	msgs, err := Messages(Spec{Event: events.HaasLogged, Addr: attacker, Count: 5, At: at, Spread: 4 * time.Hour}, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	evs := parseAll(t, msgs, time.Now())
	for i, e := range evs {
		if want := at.Add(time.Duration(i-4) * time.Hour).Unix(); e.TS != want {
			t.Errorf("event %d at %v, want %v", i, time.Unix(e.TS, 0).UTC(), time.Unix(want, 0).UTC())
		}
	}
}

// TestRefusals: what the server would drop is refused before anything is
// sent, in words that say why.
func TestRefusals(t *testing.T) {
	t.Parallel()
	good := devicetoken.FromBytes([28]byte{7})
	for name, tc := range map[string]struct {
		s    Spec
		want string
	}{
		"derived scan":   {Spec{Event: events.FwlogsBigPortScan, Addr: attacker, Count: 1}, "derived by the server"},
		"invalid type":   {Spec{Event: events.Invalid, Addr: attacker, Count: 1}, "the events are"},
		"no address":     {Spec{Event: events.TelnetLogin, Count: 1}, "no attacker address"},
		"zero count":     {Spec{Event: events.TelnetLogin, Addr: attacker}, "count 0"},
		"negative count": {Spec{Event: events.TelnetLogin, Addr: attacker, Count: -3}, "count -3"},
		"scan of logins": {Spec{Event: events.TelnetLogin, Addr: attacker, Count: 1, Targets: 5}, "scan"},
		"spread, no at":  {Spec{Event: events.TelnetLogin, Addr: attacker, Count: 1, Spread: time.Hour}, "spread"},
		"bad token":      {Spec{Event: events.TelnetLogin, Addr: attacker, Count: 1, Serial: "x", Token: good[:63] + "0"}, "device_token"},
		"short token":    {Spec{Event: events.TelnetLogin, Addr: attacker, Count: 1, Serial: "x", Token: "abc"}, "64 characters"},
		"bad serial":     {Spec{Event: events.TelnetLogin, Addr: attacker, Count: 1, Serial: "a/b", Token: good}, "serial"},
		"token only":     {Spec{Event: events.TelnetLogin, Addr: attacker, Count: 1, Token: good}, "serial and a token"},
	} {
		_, err := Messages(tc.s, time.Now(), 1)
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrSpec saying %q", name, err, tc.want)
		}
	}
}

// TestUnreachable: DialZMQ returns when nothing listens, and when
// something listens but never answers, with ErrUnreachable.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := "tcp://" + ln.Addr().String()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "tcp://" + closed.Addr().String()
	closed.Close()
	for _, ep := range []string{refused, silent} {
		_, err := DialZMQ(context.Background(), ep, nil, 500*time.Millisecond)
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), ep) {
			t.Errorf("%s: %v", ep, err)
		}
	}
}
