package local

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/msgpack"
)

func minipotAt(ip string, ts time.Time) []byte {
	b := msgpack.AppendMapHeader(nil, 4)
	b = msgpack.AppendString(b, "ts")
	b = msgpack.AppendInt(b, ts.Unix())
	for _, s := range []string{"type", "telnet", "ip", ip, "action", "connect"} {
		b = msgpack.AppendString(b, s)
	}
	return b
}

// TestEmitCounts: the local path hands accepted events on, placed at their
// ts, and counts every refusal under its reason.
func TestEmitCounts(t *testing.T) {
	var got []events.Event
	in := New(&events.Probes{}, func(evs []events.Event) { got = append(got, evs...) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now()
	past := now.Add(-time.Hour).Truncate(time.Second)
	if res := in.Emit("minipot", minipotAt("45.155.205.1", past), now); res.Accepted != 1 || res.Refused != 0 {
		t.Fatalf("emit: %+v", res)
	}
	if res := in.Emit("minipot", minipotAt("45.155.205.2", now.Add(-control.MaxPast-time.Hour)), now); res.Refused != 1 {
		t.Fatalf("too old: %+v", res)
	}
	if res := in.Emit("sentinel/collect/x", minipotAt("45.155.205.3", now), now); res.Refused != 1 {
		t.Fatalf("bad device topic: %+v", res)
	}
	if res := in.Emit("minipot", []byte{0xc1}, now); res.Refused != 1 {
		t.Fatalf("garbage: %+v", res)
	}
	r := in.Refused()
	if r[ReasonBadTime] != 1 || r[ReasonBadTopic] != 1 || r["malformed"] != 1 || in.Accepted() != 1 {
		t.Fatalf("refused %v, accepted %d", r, in.Accepted())
	}
	if len(got) != 1 || got[0].Time != past.UnixNano() || got[0].Source != events.FromAdmin {
		t.Fatalf("events %+v", got)
	}
}
