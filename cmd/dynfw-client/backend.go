package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dynfw/sentinel/internal/firewall"
	"github.com/dynfw/sentinel/internal/firewall/exec"
	"github.com/dynfw/sentinel/internal/firewall/file"
	"github.com/dynfw/sentinel/internal/firewall/ipset"
	"github.com/dynfw/sentinel/internal/firewall/nftables"
)

// newBackend builds the backend the options ask for.
func newBackend(ctx context.Context, o *options, log *slog.Logger) (firewall.Backend, error) {
	switch o.backend {
	case "nftables":
		return nftables.New(ctx, nftables.Config{
			Table: o.nftTable, Family: o.nftFamily, SetOnly: o.nftSetOnly, SetPrefix: o.nftSetPrefix,
			Forward: o.nftForward, Priority: o.nftPriority, Allow: o.allow, Logger: log,
		})
	case "ipset":
		return ipset.New(ctx, ipset.Config{
			Name: o.ipset, MaxElem: o.ipsetMaxElem, Rules: o.ipsetRules, Forward: o.ipsetForward,
			Allow: o.allow, Logger: log,
		})
	case "file":
		return file.New(file.Config{Path: o.output, Format: file.Format(o.format)})
	case "exec":
		return exec.New(exec.Config{Command: []string{"/bin/sh", "-c", o.execCmd}, Logger: log})
	}
	return nil, fmt.Errorf("unknown backend %q", o.backend)
}
