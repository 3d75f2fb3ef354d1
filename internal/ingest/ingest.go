// Package ingest holds what the ingest paths share: the handler through
// which each of them hands the events it parsed to the server's core.
//
// Every path parses at its edge (zmqpull: probes over ZMQ; mqtt:
// sentinel-proxy's uplink; httpin: other sensors over HTTP; local: what the
// operator hands in on the control socket) and calls a Handler with typed
// events. The core behind the Handler knows no transport.
package ingest

import "github.com/dynfw/sentinel/internal/events"

// Handler receives the events that an ingest path parsed from one message
// or request. It may block: the path then stops reading (back-pressure on
// the sender). The slice is the handler's: the path does not reuse it.
type Handler func([]events.Event)
