package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dynfw/sentinel/internal/server"
	"github.com/dynfw/sentinel/zmtp/zcert"
)

// cmdKeygen creates the publisher's certificate pair in the data directory
// (or shows the existing one). With --force it replaces it: every client
// then needs the new public certificate.
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sentinel keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", defaultDataDir(), "data directory")
	force := fs.Bool("force", false, "replace an existing certificate (clients need the new public one)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: sentinel keygen [--data DIR] [--force]\n\nCreates the DynFW server certificate (dynfw.key, dynfw.key_secret) in the data directory,\nor shows the existing one.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	pub := filepath.Join(*data, "dynfw.key")
	if *force {
		for _, p := range []string{pub, pub + "_secret"} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				fmt.Fprintf(stderr, "sentinel keygen: %v\n", err)
				return 1
			}
		}
	}
	cert, created, err := server.ServerCert(*data)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel keygen: %v\n", err)
		return 1
	}
	state := "existing"
	if created {
		state = "new"
	}
	fmt.Fprintf(stdout, "%s DynFW server certificate\n  public: %s (give it to clients: dynfw-client -c, or serve it as /dynfw.pub)\n  secret: %s_secret (mode 0600; keep it)\n  key:    %s\n",
		state, pub, pub, zcert.Key(cert.Public).String())
	return 0
}
