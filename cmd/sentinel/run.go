package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dynfw/sentinel/internal/config"
	"github.com/dynfw/sentinel/internal/server"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := newRunOptions()
	if err := o.parse(args); err != nil {
		if errors.Is(err, config.ErrHelp) {
			o.usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 2
	}
	cfg, err := o.serverConfig()
	if err != nil {
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 2
	}
	log := newLogger(o.verbose, o.logFormat, stderr)
	cfg.Logger = log
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		fmt.Fprintf(stderr, "sentinel run: data directory: %v\n", err)
		return 1
	}
	log.Info("sentinel starting", "version", version, "data", o.data)
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "sentinel run: %v\n", err)
		return 1
	}
	return 0
}
