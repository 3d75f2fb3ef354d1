// Package local is the ingest path of the operator's own probe messages,
// handed in on the control socket (sentinel emit, control.PathEmit).
//
// A message is parsed by the probe parser as if a probe had sent it over
// ZMQ, with two differences that only a trusted sender gets. The topic may
// be a sentinel-proxy topic naming a device
// (sentinel/collect/<serial>/<token>/<suffix>, checked as the MQTT ingest
// checks it), whose events then belong to that device as if they had come
// through the proxy. And each entry's "ts" places the event in time, within
// [now − control.MaxPast, now + control.MaxFuture]; an entry outside is
// refused. The accepted events go to an ingest.Handler.
package local

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynfw/sentinel/internal/control"
	"github.com/dynfw/sentinel/internal/devicetoken"
	"github.com/dynfw/sentinel/internal/events"
	"github.com/dynfw/sentinel/internal/ingest"
	"github.com/dynfw/sentinel/internal/ingest/mqtt"
	"github.com/dynfw/sentinel/internal/ingest/probe"
	"github.com/dynfw/sentinel/internal/lograte"
)

// Reasons of this path's refusals beyond the parser's.
const (
	ReasonBadTime  = "bad_time"   // a ts outside [now − MaxPast, now + MaxFuture]
	ReasonBadTopic = "bad_device" // a sentinel-proxy topic that does not parse
)

// maxErrors bounds the reasons an EmitResult quotes.
const maxErrors = 10

// Ingest parses the emitted messages and counts them.
type Ingest struct {
	probes *events.Probes
	handle ingest.Handler
	log    *slog.Logger
	logs   lograte.Limiter // refusals logged once per interval

	accepted atomic.Uint64
	parse    probe.Counts  // refusals of the parser, by reason
	badTime  atomic.Uint64 // ReasonBadTime
	badTopic atomic.Uint64 // ReasonBadTopic
}

// New returns the path; probes interns the senders, h receives the events.
func New(probes *events.Probes, h ingest.Handler, log *slog.Logger) *Ingest {
	if log == nil {
		log = slog.Default()
	}
	return &Ingest{probes: probes, handle: h, log: log}
}

// Accepted counts the events handed on.
func (in *Ingest) Accepted() uint64 { return in.accepted.Load() }

// Refused returns the refused entries by reason: the parser's reasons,
// ReasonBadTime and ReasonBadTopic. Every reason is present.
func (in *Ingest) Refused() map[string]uint64 {
	m := in.parse.Refused()
	m[ReasonBadTime] = in.badTime.Load()
	m[ReasonBadTopic] = in.badTopic.Load()
	return m
}

// Emit parses one message the operator handed in, at now, and hands its
// events on. The result counts what was processed and says why the rest was
// refused; the operator's own input may be quoted back to it, the log never
// quotes it.
func (in *Ingest) Emit(topic string, payload []byte, now time.Time) control.EmitResult {
	var res control.EmitResult
	refuse := func(msg string) {
		res.Refused++
		if len(res.Errors) < maxErrors {
			res.Errors = append(res.Errors, msg)
		}
	}
	suffix, pr := topic, events.Probe{Name: "local"}
	if strings.HasPrefix(topic, mqtt.DefaultRoot+"/") {
		t, err := mqtt.ParseTopic("", topic)
		if err == nil && (t.Legacy() || t.Status) {
			err = fmt.Errorf("want %s/<serial>/<device token>/<probe topic>", mqtt.DefaultRoot)
		}
		if err != nil {
			in.badTopic.Add(1)
			in.logs.Log(in.log, slog.LevelWarn, "local:"+ReasonBadTopic, "control: emitted message refused", slog.String("reason", ReasonBadTopic))
			refuse("topic: " + err.Error())
			return res
		}
		// One probe per device: a serial that comes with another token
		// is another device, as the statistics store sees it.
		suffix = t.Suffix
		pr = events.Probe{Name: "local:" + t.Serial + ":" + devicetoken.Fingerprint(t.Token), Serial: t.Serial, Token: t.Token}
	}
	id := in.probes.ID(pr)
	evs, errs := probe.Parse(nil, suffix, payload, probe.Meta{Received: now.UnixNano(), Probe: id, Source: events.FromAdmin})
	for _, e := range errs {
		r := in.parse.Add(e)
		if r == probe.ReasonIgnored {
			continue
		}
		in.logs.Log(in.log, slog.LevelWarn, "local:"+r, "control: emitted entry refused", e.LogAttrs()...)
		refuse(e.Error())
	}
	lo, hi := now.Add(-control.MaxPast).Unix(), now.Add(control.MaxFuture).Unix()
	kept := evs[:0]
	for _, e := range evs {
		if e.TS != 0 {
			if e.TS < lo || e.TS > hi {
				in.badTime.Add(1)
				in.logs.Log(in.log, slog.LevelWarn, "local:"+ReasonBadTime, "control: emitted entry refused", slog.String("reason", ReasonBadTime))
				refuse(fmt.Sprintf("ts %s: outside the accepted window, from %v before the server's time to %v after it",
					time.Unix(e.TS, 0).UTC().Format(time.RFC3339), control.MaxPast, control.MaxFuture))
				continue
			}
			e.Time = e.TS * int64(time.Second)
		}
		kept = append(kept, e)
	}
	if len(kept) > 0 {
		in.handle(kept)
	}
	res.Accepted = len(kept)
	in.accepted.Add(uint64(len(kept)))
	return res
}
