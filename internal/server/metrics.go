package server

import "github.com/dynfw/sentinel/zmtp"

func (s *Server) registerMetrics() {
	r := s.registry
	r.RegisterRuntime()
	c := s.core
	cf := func(name, help string, f func() uint64) {
		r.CounterFunc(name, help, func() float64 { return float64(f()) })
	}
	gf := func(name, help string, f func() float64) { r.GaugeFunc(name, help, f) }
	// byReason exports counts kept by reason; every reason is present
	// from the start.
	byReason := func(name, help string, f func() map[string]uint64) { r.CounterMapFunc(name, help, "reason", f) }
	reasons := func(m map[zmtp.Reason]uint64) map[string]uint64 {
		out := make(map[string]uint64, len(m))
		for k, v := range m {
			out[string(k)] = v
		}
		return out
	}
	cf("sentinel_events_processed_total", "Events processed by the scorer (all ingest paths).", func() uint64 { return c.Counters().Processed })
	cf("sentinel_events_derived_total", "Port-scan events derived from firewall logs.", func() uint64 { return c.Counters().Derived })
	cf("sentinel_journal_errors_total", "Journal writes that failed.", func() uint64 { return c.Counters().JournalErrors })
	cf("sentinel_journal_snapshots_total", "State snapshots written and verified on disk.", func() uint64 { return c.Counters().Snapshots })
	cf("sentinel_journal_snapshot_errors_total", "State snapshots that failed (the journal keeps the previous state).", func() uint64 { return c.Counters().SnapshotErrors })
	rs := c.Recovery()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gf("sentinel_journal_recovery_clean", "1 if the last start found a clean stop and kept version and serial.", func() float64 { return b2f(rs.Clean) })
	gf("sentinel_journal_recovery_fallback", "1 if the last start rebuilt the state from an older snapshot because the newest did not verify or was missing.", func() float64 { return b2f(rs.FellBack) })
	gf("sentinel_journal_recovery_empty_accepted", "1 if the last start found state but nothing verified, and started empty because accept-empty-state is set.", func() float64 { return b2f(rs.StartedEmpty) })
	gf("sentinel_journal_recovery_records_replayed", "Journal records replayed after the snapshot at the last start.", func() float64 { return float64(rs.Replayed) })
	gf("sentinel_journal_recovery_records_invalid", "Journal records that verified but could not be applied at the last start.", func() float64 { return float64(rs.Invalid) })
	gf("sentinel_journal_recovery_torn_tail_bytes", "Bytes cut off the end of the newest journal segment at the last start (a write interrupted by a crash).", func() float64 { return float64(rs.TornTailBytes) })
	gf("sentinel_journal_recovery_snapshots_quarantined", "Snapshots that did not verify at the last start, moved to journal/quarantine/.", func() float64 { return float64(rs.SnapshotsQuarantined) })
	gf("sentinel_journal_recovery_snapshots_missing", "Snapshots found missing at the last start (a segment says they were written).", func() float64 { return float64(rs.SnapshotsMissing) })
	gf("sentinel_journal_recovery_segments_quarantined", "Journal segments kept in journal/quarantine/ at the last start because of damage.", func() float64 { return float64(rs.SegmentsQuarantined) })
	gf("sentinel_journal_recovery_segments_missing", "Journal segments missing from the replayed chain at the last start.", func() float64 { return float64(rs.SegmentsMissing) })
	gf("sentinel_journal_recovery_damaged_regions", "Damaged runs of bytes inside journal segments at the last start; each lost at least one record.", func() float64 { return float64(rs.DamagedRegions) })
	gf("sentinel_journal_recovery_skipped_bytes", "Bytes of those damaged runs.", func() float64 { return float64(rs.SkippedBytes) })
	gf("sentinel_listed", "Keys on the DynFW list.", func() float64 { return float64(c.Publisher().Stats().Listed) })
	gf("sentinel_dynfw_serial", "Serial of the last published delta.", func() float64 { return float64(c.Publisher().Stats().Serial) })
	gf("sentinel_dynfw_version", "Version of the published list.", func() float64 { return float64(c.Publisher().Stats().Version) })
	gf("sentinel_dynfw_subscribers", "Connected DynFW subscribers.", func() float64 { return float64(c.Publisher().Stats().Subscribers) })
	cf("sentinel_dynfw_deltas_total", "Deltas published.", func() uint64 { return c.Publisher().Stats().Deltas })
	cf("sentinel_dynfw_events_total", "Events published.", func() uint64 { return c.Publisher().Stats().Events })
	cf("sentinel_dynfw_lists_total", "Lists published.", func() uint64 { return c.Publisher().Stats().Lists })
	cf("sentinel_dynfw_send_dropped_total", "Messages not queued to a slow subscriber.", func() uint64 { return c.Publisher().Stats().SendDropped })
	gf("sentinel_dynfw_list_bytes", "Size of the last published list.", func() float64 { return float64(c.Publisher().Stats().LastListBytes) })
	pub := func() zmtp.Stats { return c.Publisher().Socket().Stats() }
	gf("sentinel_dynfw_handshakes", "DynFW subscribers in their CURVE handshake.", func() float64 { return float64(pub().Handshakes) })
	cf("sentinel_dynfw_lagged_total", "Times a subscriber's queue refused a delta: it gets no delta until the next list.", func() uint64 { return pub().Lagged })
	cf("sentinel_dynfw_send_skipped_total", "Deltas not queued to subscribers waiting for the next list.", func() uint64 { return pub().Skipped })
	cf("sentinel_dynfw_send_replaced_total", "Queued messages a list superseded for a subscriber that fell behind.", func() uint64 { return pub().Replaced })
	byReason("sentinel_dynfw_disconnects_total", "DynFW subscribers disconnected, by reason.", func() map[string]uint64 { return reasons(pub().DisconnectReasons) })
	byReason("sentinel_dynfw_handshake_failures_total", "DynFW subscriber handshakes that failed, by reason.", func() map[string]uint64 { return reasons(pub().HandshakeFailureReasons) })
	byReason("sentinel_dynfw_refused_total", "DynFW connections closed at once at a limit (peer_limit, handshake_limit).", func() map[string]uint64 { return reasons(pub().RefuseReasons) })
	if z := s.zmq; z != nil {
		st := z.Stats()
		cf("sentinel_ingest_zmq_messages_total", "Messages received on the probe ingest socket.", st.Messages.Load)
		cf("sentinel_ingest_zmq_welcomes_total", "One-frame welcome messages.", st.Welcomes.Load)
		cf("sentinel_ingest_zmq_events_total", "Events accepted on the probe ingest socket.", st.Events.Load)
		cf("sentinel_ingest_zmq_ignored_total", "Messages of topics without attack events (survey).", st.Ignored)
		byReason("sentinel_ingest_zmq_rejected_total", "Probe messages (bad_frames, bad_topic) and payloads or entries (parser reasons) refused, by reason.", st.Rejected)
		byReason("sentinel_ingest_zmq_disconnects_total", "Probe connections closed, by reason (framing errors, oversized messages, ...).", func() map[string]uint64 { return reasons(z.SocketStats().DisconnectReasons) })
		byReason("sentinel_ingest_zmq_handshake_failures_total", "Probe connections whose handshake failed, by reason.", func() map[string]uint64 { return reasons(z.SocketStats().HandshakeFailureReasons) })
		byReason("sentinel_ingest_zmq_refused_total", "Probe connections closed at once at a limit (peer_limit, handshake_limit).", func() map[string]uint64 { return reasons(z.SocketStats().RefuseReasons) })
	}
	if m := s.mqtt; m != nil {
		cf("sentinel_ingest_mqtt_received_total", "Messages received from the MQTT broker.", func() uint64 { return m.Stats().Received })
		cf("sentinel_ingest_mqtt_delivered_total", "MQTT messages passed to the parser.", func() uint64 { return m.Stats().Delivered })
		gf("sentinel_ingest_mqtt_connected", "1 while subscribed to the MQTT broker.", func() float64 {
			if m.Stats().Connected {
				return 1
			}
			return 0
		})
		gf("sentinel_ingest_mqtt_queued", "MQTT messages waiting for the parser.", func() float64 { return float64(m.Stats().Queued) })
		byReason("sentinel_ingest_mqtt_dropped_total", "MQTT messages dropped before the parser (topic, token, payload, queue), by reason.", func() map[string]uint64 {
			out := map[string]uint64{}
			for k, v := range m.Stats().Dropped {
				out[string(k)] = v
			}
			return out
		})
		byReason("sentinel_ingest_mqtt_rejected_total", "MQTT payloads or entries refused by the probe parser, by reason.", s.mqttIn.Refused)
		cf("sentinel_ingest_mqtt_ignored_total", "MQTT messages of topics without attack events (survey).", s.mqttIn.Ignored)
	}
	cf("sentinel_control_emitted_total", "Events handed in on the control channel (sentinel emit) and processed.", s.local.Accepted)
	byReason("sentinel_control_emit_rejected_total", "Entries handed in on the control channel and refused, by reason (the parser's reasons, bad_time: a ts outside the accepted window, bad_device: a device topic that does not parse).", s.local.Refused)
	h := s.httpIn
	cf("sentinel_ingest_http_accepted_total", "Events accepted through HTTP.", h.Accepted.Load)
	byReason("sentinel_ingest_http_rejected_total", "Events of accepted HTTP ingest requests refused, by reason (bad_type: unknown event name, bad_address).", h.EventsRefused)
	cf("sentinel_ingest_http_unauthorized_total", "HTTP ingest requests without a valid token.", h.Unauthorized.Load)
	byReason("sentinel_ingest_http_requests_rejected_total",
		"HTTP ingest requests refused as a whole, by reason (method, unauthorized, too_large, too_many_events, bad_json, trailing_data, bad_shape, timeout).", h.RequestsRefused)
	w := s.httpSrv
	gf("sentinel_http_connections", "Open connections of the HTTP listener.", func() float64 { return float64(w.Stats().Open) })
	cf("sentinel_http_connections_refused_total", "HTTP connections closed at once because --http-max-conns were open.", func() uint64 { return w.Stats().Refused })
}
