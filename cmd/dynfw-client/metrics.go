package main

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/dynfw/sentinel/internal/client"
	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/nftables"
	"github.com/dynfw/sentinel/internal/metrics"
)

// metricsBody returns what --metrics serves: the syncer's state in the
// Prometheus text format, read at the time of each scrape.
func metricsBody(s *client.Syncer, backend firewall.Backend) func(context.Context) []byte {
	st := s.Stats()
	r := metrics.NewRegistry()
	r.RegisterRuntime()
	u := func(name, help string, f func() uint64) {
		r.CounterFunc(name, help, func() float64 { return float64(f()) })
	}
	g := func(name, help string, f func() float64) { r.GaugeFunc(name, help, f) }

	elems := r.GaugeVec("dynfw_client_set_elements", "Elements in the firewall sets.", "family", "kind")
	a4, a6, n4, n6 := elems.With("ipv4", "address"), elems.With("ipv6", "address"), elems.With("ipv4", "prefix"), elems.With("ipv6", "prefix")
	g("dynfw_client_serial", "Serial of the last applied list or delta.", func() float64 {
		a4.Set(float64(st.Addr4.Load()))
		a6.Set(float64(st.Addr6.Load()))
		n4.Set(float64(st.Net4.Load()))
		n6.Set(float64(st.Net6.Load()))
		return float64(st.Serial.Load())
	})
	g("dynfw_client_list_version", "Version of the last applied list.", func() float64 { return float64(st.Version.Load()) })
	g("dynfw_client_connected", "1 while connected to the server.", func() float64 {
		if st.Connected.Load() {
			return 1
		}
		return 0
	})
	g("dynfw_client_last_message_age_seconds", "Seconds since the last message from the server.", func() float64 {
		last := st.LastMessage.Load()
		if last == 0 {
			return -1
		}
		return time.Since(time.Unix(0, last)).Seconds()
	})
	g("dynfw_client_last_apply_seconds", "Duration of the last firewall change.", func() float64 {
		return time.Duration(st.LastApplyNanos.Load()).Seconds()
	})
	u("dynfw_client_lists_applied_total", "Full lists applied.", st.ListsApplied.Load)
	u("dynfw_client_deltas_applied_total", "Deltas applied.", st.DeltasApplied.Load)
	u("dynfw_client_deltas_duplicate_total", "Duplicate deltas ignored.", st.Duplicates.Load)
	u("dynfw_client_deltas_out_of_order_total", "Deltas held back until a gap filled.", st.OutOfOrder.Load)
	u("dynfw_client_messages_malformed_total", "Messages that could not be decoded.", st.Malformed.Load)
	u("dynfw_client_backend_errors_total", "Failed firewall updates.", st.BackendErrors.Load)
	u("dynfw_client_reconnects_total", "Reconnections to the server.", st.Reconnects.Load)
	skipped := r.CounterVec("dynfw_client_skipped_addresses_total", "Listed addresses not blocked, by reason.", "reason")
	resyncs := r.CounterVec("dynfw_client_resyncs_total", "Resynchronisations through a full list, by reason.", "reason")
	bad, allowed, v6 := skipped.With("invalid"), skipped.With("allow-list"), skipped.With("ipv6-disabled")
	reasons := map[string]*metrics.Counter{}
	for reason := range st.Resyncs {
		reasons[reason] = resyncs.With(reason)
	}
	refusedVec := r.CounterVec("dynfw_client_refused_entries_total", "Listed entries the safety floor refused to block, by reason.", "reason")
	refused := map[string]*metrics.Counter{}
	for reason := range st.Refused {
		refused[reason] = refusedVec.With(reason)
	}
	protected := r.GaugeVec("dynfw_client_protected_addresses", "Single addresses the safety floor never blocks, by kind.", "kind")
	protServer, protGateway := protected.With("server"), protected.With("gateway")
	// Counters kept by the syncer are mirrored at scrape time.
	var mu sync.Mutex
	mirror := func() {
		mu.Lock()
		defer mu.Unlock()
		bad.Add(float64(st.SkippedBadAddress.Load()) - bad.Value())
		allowed.Add(float64(st.SkippedAllowed.Load()) - allowed.Value())
		v6.Add(float64(st.SkippedIPv6.Load()) - v6.Value())
		for reason, c := range reasons {
			c.Add(float64(st.Resyncs[reason].Load()) - c.Value())
		}
		for reason, c := range refused {
			c.Add(float64(st.Refused[reason].Load()) - c.Value())
		}
		protServer.Set(float64(st.ProtectedServer.Load()))
		protGateway.Set(float64(st.ProtectedGateways.Load()))
	}
	lat := r.Histogram("dynfw_client_apply_duration_seconds", "Time to apply a list or a batch of deltas to the firewall.", metrics.ExponentialBuckets(0.0005, 4, 10))
	st.OnApply(func(d time.Duration) { lat.Observe(d.Seconds()) })

	var drops *metrics.GaugeVec
	nft, isNft := backend.(*nftables.Backend)
	if isNft {
		drops = r.GaugeVec("dynfw_client_dropped_packets", "Packets dropped by the client's rules since they were created.", "chain", "family")
	}
	return func(ctx context.Context) []byte {
		mirror()
		if isNft {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if cs, err := nft.Counters(ctx); err == nil {
				for _, c := range cs {
					drops.With(c.Chain, c.Family).Set(float64(c.Packets))
				}
			}
			cancel()
		}
		var b bytes.Buffer
		r.WriteTo(&b)
		return b.Bytes()
	}
}
