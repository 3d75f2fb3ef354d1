package server

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
	cf("sentinel_journal_snapshots_total", "State snapshots written and verified on disk.", c.snapshots.Load)
	cf("sentinel_journal_snapshot_errors_total", "State snapshots that failed (the journal keeps the previous state).", c.snapshotErrors.Load)
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
}
