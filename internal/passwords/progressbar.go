package passwords

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ProgressBar renders import Progress on a terminal as one line rewritten
// with \r. Its Update method is a progress callback:
//
//	bar := passwords.NewProgressBar(os.Stderr)
//	st, err := passwords.Import(ctx, f, size, out, bar.Update)
//	bar.Finish()
type ProgressBar struct {
	mu      sync.Mutex
	w       io.Writer
	width   int // of the bar itself
	last    time.Time
	lastLen int
	phase   string
}

// NewProgressBar writes to w (usually os.Stderr).
func NewProgressBar(w io.Writer) *ProgressBar { return &ProgressBar{w: w, width: 30} }

// Update redraws the line, at most ten times a second except at a phase
// change.
func (pb *ProgressBar) Update(p Progress) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	now := time.Now()
	if p.Phase == pb.phase && now.Sub(pb.last) < 100*time.Millisecond {
		return
	}
	pb.last = now
	if pb.phase != "" && p.Phase != pb.phase && p.Phase != "done" {
		// Keep the finished phase's line.
		fmt.Fprintln(pb.w)
		pb.lastLen = 0
	}
	pb.phase = p.Phase
	line := FormatProgress(p, pb.width)
	pad := ""
	if n := pb.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	pb.lastLen = len(line)
	fmt.Fprintf(pb.w, "\r%s%s", line, pad)
}

// Finish ends the line.
func (pb *ProgressBar) Finish() {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.lastLen > 0 {
		fmt.Fprintln(pb.w)
		pb.lastLen = 0
	}
}

// FormatProgress renders p as one line with a bar of width characters.
func FormatProgress(p Progress, width int) string {
	var sb strings.Builder
	frac := -1.0
	switch p.Phase {
	case "merging", "done":
		if p.MergeTotal > 0 {
			frac = float64(p.Merged) / float64(p.MergeTotal)
		}
	default:
		if p.Total > 0 {
			frac = float64(p.Bytes) / float64(p.Total)
		}
	}
	fmt.Fprintf(&sb, "%-8s", p.Phase)
	if frac >= 0 {
		frac = min(frac, 1)
		n := int(frac * float64(width))
		fmt.Fprintf(&sb, " [%s%s] %5.1f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac)
	}
	switch p.Phase {
	case "merging", "done":
		fmt.Fprintf(&sb, "  %s/%s entries", humanCount(float64(p.Merged)), humanCount(float64(p.MergeTotal)))
	default:
		if p.Total > 0 {
			fmt.Fprintf(&sb, "  %s/%s", humanBytes(p.Bytes), humanBytes(p.Total))
		} else {
			fmt.Fprintf(&sb, "  %s", humanBytes(p.Bytes))
		}
		fmt.Fprintf(&sb, "  %s lines/s", humanCount(p.LinesPerSec))
		if frac > 0 && frac < 1 {
			eta := time.Duration(float64(p.Elapsed) * (1 - frac) / frac).Round(time.Second)
			fmt.Fprintf(&sb, "  ETA %s", eta)
		}
	}
	if p.Malformed > 0 {
		fmt.Fprintf(&sb, "  (%d malformed)", p.Malformed)
	}
	return sb.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
