// Package zcert reads and writes the CURVE key certificates of ZeroMQ: the
// text files that czmq's zcert and pyzmq's zmq.auth create, such as the DynFW
// server's public key installed on Turris routers as
// /etc/sentinel_dynfw_server.pub.
//
// Certificate text enters through Parse or Load, which accept the subset of
// ZPL (ZeroMQ RFC 4) those tools write, leniently enough to read files edited
// by hand, and leaves as a Cert whose keys are plain 32-byte values ready for
// the CURVE handshake. Certificates leave through MarshalPublic and
// MarshalSecret, which write the layout pyzmq writes, and through SavePublic,
// SaveSecret, CreatePair and LoadOrCreate, which replace files atomically and
// never expose a secret key through file permissions. Z85 (ZeroMQ RFC 32), the
// text encoding of keys, is available on its own as EncodeZ85 and DecodeZ85.
//
// Nothing here touches sockets: the transport takes the keys as [32]byte.
package zcert
