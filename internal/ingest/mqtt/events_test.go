package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/msgpack"
)

// TestEventsParseAtTheEdge: the MQTT path parses a router's data message
// into events of its device probe, passes status messages over, and counts
// and logs refusals by reason without the serial.
func TestEventsParseAtTheEdge(t *testing.T) {
	var logs bytes.Buffer
	probes := &events.Probes{}
	var got [][]events.Event
	p := NewEvents(probes, func(evs []events.Event) { got = append(got, evs) }, slog.New(slog.NewTextHandler(&logs, nil)))
	const serial = "0000000D300012AB"
	token, _ := devicetoken.Generate()
	login := msgpack.AppendMapHeader(nil, 3)
	for _, s := range []string{"type", "telnet", "action", "connect", "ip", "45.155.205.9"} {
		login = msgpack.AppendString(login, s)
	}
	now := time.Now()
	p.Message(Message{Serial: serial, Token: token, Suffix: "minipot", Payload: login, Received: now})
	p.Message(Message{Serial: serial, Token: token, Suffix: "status", Status: &Status{Action: StatusHeartbeat}, Received: now})
	p.Message(Message{Serial: serial, Token: token, Suffix: "minipot", Payload: []byte{0xc1}, Received: now})
	p.Message(Message{Serial: serial, Token: token, Suffix: "survey", Payload: login, Received: now})
	if len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("batches %+v", got)
	}
	e := got[0][0]
	if e.Addr.String() != "45.155.205.9" || e.Source != events.FromMQTT || e.Time != now.UnixNano() {
		t.Fatalf("event %+v", e)
	}
	if pr, _ := probes.Get(e.Probe); pr.Name != "mqtt:"+serial || pr.Serial != serial || pr.Token != token {
		t.Fatalf("probe %+v", pr)
	}
	if r := p.Refused(); r["malformed"] != 1 {
		t.Fatalf("refused %v", r)
	}
	if p.Ignored() != 1 {
		t.Fatalf("ignored %d", p.Ignored())
	}
	if out := logs.String(); !strings.Contains(out, "reason=malformed") || strings.Contains(out, serial) || strings.Contains(out, token) {
		t.Fatalf("log:\n%s", out)
	}
}
