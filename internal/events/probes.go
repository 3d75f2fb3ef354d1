package events

import "sync"

// ProbeID is an interned sensor identity. 0 means unknown.
type ProbeID uint32

// Probe describes a sensor: a router known by its certificate's CN (serial
// number) and device token, a ZMQ peer, or an HTTP client.
type Probe struct {
	// Name is a stable identifier: "mqtt:<CN>", "zmq:<peer key or address>",
	// "http:<token name>", "local".
	Name string
	// Serial and Token identify a Turris router (MQTT ingest); the token
	// is what a visitor of Sentinel View gives to see their device's data.
	Serial, Token string
}

// Probes interns probe identities. The zero value is ready to use; it is
// safe for concurrent use.
type Probes struct {
	mu    sync.RWMutex
	ids   map[string]ProbeID
	infos []Probe
}

// ID returns the identifier of p, assigning one on first sight.
func (ps *Probes) ID(p Probe) ProbeID {
	ps.mu.RLock()
	id, ok := ps.ids[p.Name]
	ps.mu.RUnlock()
	if ok {
		return id
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if id, ok := ps.ids[p.Name]; ok {
		return id
	}
	if ps.ids == nil {
		ps.ids = map[string]ProbeID{}
		ps.infos = []Probe{{Name: "unknown"}}
	}
	id = ProbeID(len(ps.infos))
	ps.ids[p.Name] = id
	ps.infos = append(ps.infos, p)
	return id
}

// Get returns the probe with identifier id.
func (ps *Probes) Get(id ProbeID) (Probe, bool) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	if int(id) >= len(ps.infos) || id == 0 {
		return Probe{}, false
	}
	return ps.infos[id], true
}

// All returns every probe, indexed by identifier (index 0 is unknown).
func (ps *Probes) All() []Probe {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return append([]Probe(nil), ps.infos...)
}
