package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

const keygenUsage = `Usage: sentinel keygen [--data DIR] [--force]

Creates the DynFW server certificate (dynfw.key, dynfw.key_secret) in the
data directory, or shows the existing one.
`

// cmdKeygen creates the publisher's certificate pair in the data directory
// (or shows the existing one). With --force it replaces it: every client
// then needs the new public certificate.
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	var data string
	var force bool
	c := newCommand("sentinel keygen", keygenUsage)
	c.opts.String(&data, "data", nil, defaultDataDir(), "data directory")
	c.opts.Bool(&force, "force", nil, false, "replace an existing certificate (clients need the new public one)")
	if code, ok := c.parse(args, "", "", stdout, stderr); !ok {
		return code
	}
	pub := filepath.Join(data, "dynfw.key")
	if force {
		for _, p := range []string{pub, pub + "_secret"} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return c.fail(stderr, err)
			}
		}
	}
	cert, created, err := server.ServerCert(data)
	if err != nil {
		return c.fail(stderr, err)
	}
	state := "existing"
	if created {
		state = "new"
	}
	fmt.Fprintf(stdout, "%s DynFW server certificate\n  public: %s (give it to clients: dynfw-client -c, or serve it as /dynfw.pub)\n  secret: %s_secret (mode 0600; keep it)\n  key:    %s\n",
		state, pub, pub, zcert.Key(cert.Public).String())
	return 0
}
