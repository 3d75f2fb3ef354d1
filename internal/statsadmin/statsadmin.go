// Package statsadmin is the operator's commands on the statistics store
// (`sentinel stats`): its status, rollups, rebuilds, retention and one
// resource computed on demand.
package statsadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynfw/sentinel/internal/stats"
	"github.com/dynfw/sentinel/internal/store"
	"github.com/dynfw/sentinel/internal/view"
)

// Commands are the commands of `sentinel stats` (cache-clear is the
// command line's: it needs no store).
var Commands = []string{"status", "rollup", "rebuild", "retain", "resource", "cache-clear"}

// ErrUsage wraps the errors of bad arguments: the command line prints its
// usage with them.
var ErrUsage = errors.New("bad arguments")

// Store is what the commands need of the statistics store (store.Store
// implements it).
type Store interface {
	stats.Querier
	Rollup(ctx context.Context, now time.Time) (store.RollupReport, error)
	Rebuild(ctx context.Context, p store.Precision, from, to time.Time) (store.RollupReport, error)
	Retain(ctx context.Context, now time.Time) error
	Status(ctx context.Context) (store.Status, error)
}

// Run runs the command args[0] with its arguments args[1:] on st as of now
// and writes its output to w: status (tables, rollup watermarks, sliding
// windows), rollup, rebuild PRECISION FROM [TO], retain, and resource NAME
// PERIOD [ip=A] [password=P], which prints the resource's JSON.
func Run(ctx context.Context, st Store, args []string, w io.Writer, now time.Time) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", ErrUsage)
	}
	switch args[0] {
	case "status":
		s, err := st.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "backend\t%s\n", s.Backend)
		if s.Bytes > 0 {
			fmt.Fprintf(tw, "size\t%.1f MiB\n", float64(s.Bytes)/(1<<20))
		}
		fmt.Fprintf(tw, "devices\t%d\n", s.Devices)
		for _, t := range []store.Table{store.Incidents, store.Passwords, store.Ports} {
			fmt.Fprintf(tw, "%s (raw)\t%d rows\n", t, s.Tables[t])
		}
		fmt.Fprintln(tw, "\nrollup\twatermark\tdirty\trows")
		for _, r := range s.Rollups {
			wm := "none"
			if !r.Watermark.IsZero() {
				wm = r.Watermark.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s %s\t%s\t%d\t%d\n", r.Table, r.Precision, wm, r.Dirty, r.Rows)
		}
		if len(s.Windows) > 0 {
			fmt.Fprintln(tw, "\nsliding window\tfrom\tto\tcurrent")
			for _, sw := range s.Windows {
				from, to := "none", "none"
				if !sw.From.IsZero() {
					from, to = sw.From.Format(time.RFC3339), sw.To.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s %s %v\t%s\t%s\t%v\n", sw.Table, sw.Precision, sw.Span, from, to, sw.Current)
			}
		}
		return tw.Flush()
	case "rollup":
		rep, err := st.Rollup(ctx, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "rolled up %d buckets (%d rows) in %v\n", rep.Buckets, rep.Rows, rep.Took.Round(time.Millisecond))
		return nil
	case "rebuild":
		if len(args) < 3 {
			return fmt.Errorf("%w: rebuild PRECISION FROM [TO]", ErrUsage)
		}
		var p store.Precision
		switch args[1] {
		case "15m":
			p = store.Quarter
		case "1h":
			p = store.Hour
		case "1d":
			p = store.Day
		default:
			return fmt.Errorf("%w: precision %q (15m, 1h or 1d)", ErrUsage, args[1])
		}
		from, err := ParseWhen(args[2])
		if err != nil {
			return err
		}
		to := now.Truncate(p.Width())
		if len(args) > 3 {
			if to, err = ParseWhen(args[3]); err != nil {
				return err
			}
		}
		rep, err := st.Rebuild(ctx, p, from.Truncate(p.Width()), to.Truncate(p.Width()))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "rebuilt %d buckets (%d rows) in %v\n", rep.Buckets, rep.Rows, rep.Took.Round(time.Millisecond))
		return nil
	case "retain":
		return st.Retain(ctx, now)
	case "resource":
		if len(args) < 3 {
			return fmt.Errorf("%w: resource NAME PERIOD [ip=A] [password=P]", ErrUsage)
		}
		req := stats.Request{Name: args[1], Period: args[2]}
		for _, kv := range args[3:] {
			switch k, v, _ := strings.Cut(kv, "="); k {
			case "ip":
				a, err := netip.ParseAddr(v)
				if err != nil {
					return fmt.Errorf("%w: %v", ErrUsage, err)
				}
				req.IP = a.Unmap()
			case "password":
				req.Password = v
			default:
				return fmt.Errorf("%w: unknown parameter %q", ErrUsage, k)
			}
		}
		r, err := stats.Compute(ctx, st, req, now, 4*time.Minute)
		switch {
		case errors.Is(err, stats.ErrUnknownResource):
			return fmt.Errorf("%w: unknown resource %q; the resources are:\n  %s", ErrUsage, req.Name, strings.Join(stats.Names(), "\n  "))
		case errors.Is(err, stats.ErrBadPeriod):
			var names []string
			for _, p := range stats.Periods {
				names = append(names, p.Name)
			}
			return fmt.Errorf("%w: unknown period %q (%s)", ErrUsage, req.Period, strings.Join(names, ", "))
		case err != nil:
			return err
		}
		// {"data": ..., "resource_name": name}, indented, from the typed rows.
		b := view.AppendDataJSON([]byte(`{"data":`), &r)
		name, _ := json.Marshal(r.Name)
		b = append(append(append(b, `,"resource_name":`...), name...), "}\n"...)
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return err
		}
		_, err = w.Write(out.Bytes())
		return err
	}
	return fmt.Errorf("%w: unknown command %q", ErrUsage, args[0])
}

// ParseWhen parses a time of the command line: RFC 3339, 2006-01-02T15:04
// or 2006-01-02, in UTC.
func ParseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a time (2006-01-02 or RFC 3339)", ErrUsage, s)
}
