package mqtt

import (
	"log/slog"

	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/lograte"
)

// Events is the parsing stage of the MQTT ingest: it turns the
// Subscriber's data messages into events (package probe) and hands them to
// an ingest.Handler. Pass its Message method as the Subscriber's handler.
//
// Each router is one probe, named "mqtt:<serial>", with its serial and
// device token. Refusals are counted by reason and logged once per interval
// and reason, with the serial's fingerprint, the entry and field and the
// payload's length: the suffix, the serial and the error's text are typed
// by the sender.
type Events struct {
	probes *events.Probes
	handle ingest.Handler
	log    *slog.Logger
	logs   lograte.Limiter
	parse  probe.Counts
}

// NewEvents returns the parsing stage; probes interns the routers.
func NewEvents(probes *events.Probes, h ingest.Handler, log *slog.Logger) *Events {
	if log == nil {
		log = slog.Default()
	}
	return &Events{probes: probes, handle: h, log: log}
}

// Message parses one message of a router. Status messages carry no
// events (device presence) and are passed over.
func (p *Events) Message(m Message) {
	if m.Status != nil {
		return
	}
	id := p.probes.ID(events.Probe{Name: "mqtt:" + m.Serial, Serial: m.Serial, Token: m.Token})
	evs, errs := probe.Parse(nil, m.Suffix, m.Payload, probe.Meta{Received: m.Received.UnixNano(), Probe: id, Source: events.FromMQTT})
	for _, e := range errs {
		r := p.parse.Add(e)
		if r == probe.ReasonIgnored {
			continue
		}
		p.logs.Log(p.log, slog.LevelWarn, r, "mqtt ingest: refused", append(e.LogAttrs(),
			slog.String("serial", SerialFingerprint(m.Serial)), slog.Int("payload_len", len(m.Payload)))...)
	}
	if len(evs) > 0 {
		p.handle(evs)
	}
}

// Refused returns the payloads or entries the parser refused, by reason;
// every reason of probe.Reasons is present.
func (p *Events) Refused() map[string]uint64 { return p.parse.Refused() }

// Ignored counts the messages of topics without attack events (survey).
func (p *Events) Ignored() uint64 { return p.parse.Ignored() }
