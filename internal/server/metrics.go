package server

import (
	"github.com/dynfw/sentinel/internal/ingest/httpin"
	"github.com/dynfw/sentinel/internal/metrics"
)

func (s *Server) registerMetrics() {
	r := s.registry
	r.RegisterRuntime()
	c := s.core
	cf := func(name, help string, f func() uint64) {
		r.CounterFunc(name, help, func() float64 { return float64(f()) })
	}
	gf := func(name, help string, f func() float64) { r.GaugeFunc(name, help, f) }
	cf("sentinel_events_processed_total", "Events processed by the scorer (all ingest paths).", c.processed.Load)
	cf("sentinel_events_derived_total", "Port-scan events derived from firewall logs.", c.derived.Load)
	cf("sentinel_journal_errors_total", "Journal writes that failed.", c.journalErrors.Load)
	cf("sentinel_mqtt_refused_total", "Entries of MQTT messages refused by the probe parser.", c.mqttRefused.Load)
	gf("sentinel_listed", "Keys on the DynFW list.", func() float64 { return float64(c.Publisher().Stats().Listed) })
	gf("sentinel_dynfw_serial", "Serial of the last published delta.", func() float64 { return float64(c.Publisher().Stats().Serial) })
	gf("sentinel_dynfw_version", "Version of the published list.", func() float64 { return float64(c.Publisher().Stats().Version) })
	gf("sentinel_dynfw_subscribers", "Connected DynFW subscribers.", func() float64 { return float64(c.Publisher().Stats().Subscribers) })
	cf("sentinel_dynfw_deltas_total", "Deltas published.", func() uint64 { return c.Publisher().Stats().Deltas })
	cf("sentinel_dynfw_events_total", "Events published.", func() uint64 { return c.Publisher().Stats().Events })
	cf("sentinel_dynfw_lists_total", "Lists published.", func() uint64 { return c.Publisher().Stats().Lists })
	cf("sentinel_dynfw_send_dropped_total", "Messages not queued to a slow subscriber.", func() uint64 { return c.Publisher().Stats().SendDropped })
	gf("sentinel_dynfw_list_bytes", "Size of the last published list.", func() float64 { return float64(c.Publisher().Stats().LastListBytes) })
	if z := s.zmq; z != nil {
		st := z.Stats()
		cf("sentinel_ingest_zmq_messages_total", "Messages received on the probe ingest socket.", st.Messages.Load)
		cf("sentinel_ingest_zmq_welcomes_total", "One-frame welcome messages.", st.Welcomes.Load)
		cf("sentinel_ingest_zmq_bad_frames_total", "Messages with neither one nor two frames.", st.BadFrames.Load)
		cf("sentinel_ingest_zmq_bad_topic_total", "Messages whose topic is not sentinel/collect/<name>.", st.BadTopic.Load)
		cf("sentinel_ingest_zmq_unknown_topic_total", "Messages for a probe topic the server does not know.", st.UnknownTopic.Load)
		cf("sentinel_ingest_zmq_malformed_total", "Payloads that are not msgpack maps or arrays of maps.", st.Malformed.Load)
		cf("sentinel_ingest_zmq_bad_entries_total", "Entries refused inside otherwise good payloads.", st.BadEntries.Load)
	}
	h := s.httpIn
	cf("sentinel_ingest_http_accepted_total", "Events accepted through HTTP.", h.Accepted.Load)
	cf("sentinel_ingest_http_rejected_total", "Events refused through HTTP.", h.Rejected.Load)
	cf("sentinel_ingest_http_unauthorized_total", "HTTP ingest requests without a valid token.", h.Unauthorized.Load)
	refused := r.CounterVec("sentinel_ingest_http_requests_rejected_total",
		"HTTP ingest requests refused as a whole, by reason (method, unauthorized, too_large, too_many_events, bad_json, trailing_data, bad_shape, timeout).", "reason")
	byReason := make([]*metrics.Counter, len(httpin.RequestReasons()))
	for _, reason := range httpin.RequestReasons() {
		byReason[reason] = refused.With(reason.String())
	}
	// The handler counts its refusals through this hook (set before the
	// listener serves).
	h.OnRefused = func(reason httpin.RequestReason) { byReason[reason].Inc() }
	w := s.httpSrv
	gf("sentinel_http_connections", "Open connections of the HTTP listener.", func() float64 { return float64(w.Stats().Open) })
	cf("sentinel_http_connections_refused_total", "HTTP connections closed at once because --http-max-conns were open.", func() uint64 { return w.Stats().Refused })
}
