// Package mqtt is the server end of sentinel-proxy's MQTT uplink: it
// subscribes to the broker the routers publish to, checks who sent each
// message, and hands the probe payloads on, still unparsed.
//
// Data enters from an MQTT 3.1.1 broker (Mosquitto; plain TCP or TLS with a
// client certificate). sentinel-proxy publishes, with QoS 0 and no retain
// (sentinel-formats.md §3):
//
//	sentinel/collect/<CN>/<device_token>/<suffix>   data, proxy ≥ 1.2
//	sentinel/collect/<CN>/<device_token>/status     status, proxy ≥ 1.4
//	sentinel/collect/<CN>/<suffix>                  data, proxy ≤ 1.1
//
// where <CN> is the router's certificate CN (its serial number) and <suffix>
// is the probe's ZMQ topic without "sentinel/collect/" ("minipot", "fwlogs",
// "faillogs", "survey", possibly with more segments). ParseTopic splits a
// topic and checks the CN and the device token (format and CRC, package
// devicetoken). Payloads of proxy ≥ 1.4 are msgpack; proxy ≤ 1.3.1 sent
// them zlib-compressed, and each payload is inflated when it is a zlib
// stream, within Config.MaxPayload so that a zip bomb costs nothing. Status
// payloads ({"action", "ts"}) are decoded here, since they are the proxy's own
// messages, not a probe's; the last will carries no "ts" and gets the receive
// time.
//
// Data leaves as a Message per accepted message, passed to the handler given
// to New. Probe payloads are not interpreted: package probe does that. A
// message that fails a check is dropped, counted under a DropReason in Stats
// and logged (rate-limited, so that a misbehaving router cannot flood the
// log) with fingerprints of its CN and of its token and the lengths of its
// suffix and payload: nothing of a topic or a payload is logged as typed,
// and never the token, which opens the router's Sentinel View page.
//
// # Trust
//
// The CN in the topic is only as good as the broker's ACL. The broker must
// tie it to the client certificate, e.g. in Mosquitto:
//
//	require_certificate true
//	use_identity_as_username true
//	# in the acl_file:
//	pattern write sentinel/collect/%u/#
//
// The broker should also bound the packet size (max_packet_size), because
// the MQTT client library reads a whole PUBLISH into memory before this
// package can compare it with MaxPayload.
//
// # Flow control
//
// The MQTT library delivers messages on one goroutine, which also reads the
// socket; blocking it would stall the connection and eventually the broker.
// The Subscriber's callback on that goroutine therefore only checks the topic
// and the size and appends the message to a bounded queue (Config.QueueSize
// messages, Config.QueueBytes bytes). One goroutine takes messages from the
// queue, inflates them and calls the handler, one message at a time and in
// arrival order. The handler may block, but while it does the queue fills,
// and once it is full new messages are dropped and counted as
// DropQueueFull: with QoS 0 the proxy does not retransmit, so dropping at
// the edge, visibly, is the honest choice, and it keeps a slow consumer from
// pushing the backlog into the broker. A handler that needs more throughput
// hands messages to its own workers.
//
// # Scaling out
//
// With Config.Share set, several Subscribers (in one process or many) join a
// shared subscription ($share/<group>/<topic>, Mosquitto ≥ 1.6, MQTT 3.1.1
// clients included) and the broker gives each message to one of them.
// Messages of one router may then be handled by different workers, so a
// handler that keeps per-router state must tolerate that.
package mqtt
