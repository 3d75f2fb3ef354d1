// Package server is the Sentinel server's process shell: it binds the
// listeners (the DynFW publisher, the ZMQ probe ingest, the MQTT
// subscription to sentinel-proxy's uplink, the HTTP API with its ingest,
// the control socket) and runs the server's lifecycle around its state,
// package core: ticks, snapshots, the daily greylist, and the graceful
// stop in which ingest ends first, the last events are processed and
// published, and the state is snapshotted.
//
// Data path: every ingest path parses at its edge (packages zmqpull, mqtt,
// httpin, local) and hands typed events to the core through one
// ingest.Handler, Core.Process. The core journals, scores and publishes
// them (see package core).
package server

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dynfw/sentinel/internal/publish"
	"github.com/dynfw/sentinel/internal/server/core"
	"github.com/dynfw/sentinel/zmtp"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// CoreConfig is the core's configuration with that of the publisher it
// publishes through.
type CoreConfig struct {
	core.Config
	// Publisher configures the DynFW publisher; without Curve, the
	// server's certificate pair in DataDir (ServerCert), created on the
	// first start.
	Publisher publish.Config
}

// OpenCore opens the core (core.Open) with the publisher bound by this
// shell.
func OpenCore(cfg CoreConfig) (*core.Core, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	pc := cfg.Publisher
	if pc.Curve == nil {
		cert, created, err := ServerCert(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("created the DynFW server certificate", "public", filepath.Join(cfg.DataDir, "dynfw.key"), "key", cert.Public.String())
		}
		pc.Curve = &zmtp.CurveOptions{Server: true, SecretKey: *cert.Secret, PublicKey: cert.Public}
	}
	c := cfg.Config
	c.Publish = func(st publish.State) (*publish.Publisher, error) { return publish.New(pc, st) }
	return core.Open(c)
}

// ServerCert loads or creates the publisher's certificate pair in dir
// (dynfw.key, dynfw.key_secret).
func ServerCert(dir string) (*zcert.Cert, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	return zcert.LoadOrCreate(dir, "dynfw")
}
