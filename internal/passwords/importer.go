package passwords

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"time"
)

// Progress reports an import.
type Progress struct {
	// Phase is "reading" while the input is parsed, "merging" while the
	// sorted runs are merged into the index, and "done".
	Phase string
	// Bytes of Total have been read (Total ≤ 0 if unknown).
	Bytes, Total int64
	// Lines read so far, of which Malformed were skipped.
	Lines, Malformed int64
	// LinesPerSec is the average reading rate.
	LinesPerSec float64
	// Merged of MergeTotal entries have been merged (phase "merging").
	Merged, MergeTotal uint64
	Elapsed            time.Duration
}

// Malformed describes a skipped input line.
type Malformed struct {
	Line   int64  // 1-based
	Text   string // the line, cut to 80 bytes
	Reason string
}

// Stats summarise an import.
type Stats struct {
	Bytes     int64
	Lines     int64 // lines read, including blank and malformed ones
	Blank     int64
	Imported  int64 // well-formed lines
	Malformed int64
	// Examples are the first MaxExamples malformed lines.
	Examples []Malformed
	// Hashes is the number of distinct hashes in the written index.
	Hashes  uint64
	Elapsed time.Duration
}

// MaxExamples is the number of malformed lines an import reports in detail.
const MaxExamples = 10

// ImportOptions tune ImportWith.
type ImportOptions struct {
	// Merge keeps the entries of an existing index at the destination
	// (the honeypot counts, or an earlier import); otherwise it is
	// replaced.
	Merge bool
	// TempDir and MemoryLimit are passed to the Builder.
	TempDir     string
	MemoryLimit int
	// Progress is called about four times a second and at the end of
	// each phase.
	Progress func(Progress)
	// Watermark is stored in the index (see Index.Watermark); with Merge
	// and a zero Watermark, the existing index's is kept.
	Watermark time.Time
}

// Import reads a Have I Been Pwned SHA-1 download (the "ordered by hash"
// file, or any file of HASH:COUNT lines: 40 hex digits of either case, a
// colon, a decimal count; LF or CRLF) and writes it as the index at out,
// replacing any file there. size is the input size for progress (≤ 0 if
// unknown). Malformed lines are counted, the first few reported in Stats,
// and skipped; they never abort the import. Imported counts go to the HIBP
// count of the entries, without a source.
func Import(ctx context.Context, r io.Reader, size int64, out string, progress func(Progress)) (Stats, error) {
	return ImportWith(ctx, r, size, out, ImportOptions{Progress: progress})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ImportWith is Import with options.
func ImportWith(ctx context.Context, r io.Reader, size int64, out string, opts ImportOptions) (Stats, error) {
	start := time.Now()
	var st Stats
	report := func(p Progress) {
		if opts.Progress != nil {
			p.Elapsed = time.Since(start)
			p.Bytes, p.Total, p.Lines, p.Malformed = st.Bytes, size, st.Lines, st.Malformed
			if s := p.Elapsed.Seconds(); s > 0 {
				p.LinesPerSec = float64(st.Lines) / s
			}
			opts.Progress(p)
		}
	}
	var lastReport time.Time
	b := NewBuilder(BuilderOptions{
		TempDir: opts.TempDir, MemoryLimit: opts.MemoryLimit, Watermark: opts.Watermark,
		Progress: func(merged, total uint64) {
			if now := time.Now(); now.Sub(lastReport) >= 250*time.Millisecond || merged == total {
				lastReport = now
				report(Progress{Phase: "merging", Merged: merged, MergeTotal: total})
			}
		},
	})
	defer b.Close()
	if opts.Merge {
		old, err := Open(out)
		switch {
		case err == nil:
			if opts.Watermark.IsZero() {
				b.opts.Watermark = old.Watermark()
			}
			err = b.AddIndex(old)
			old.Close()
			if err != nil {
				return st, err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return st, err
		}
	}

	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		long := false
		if errors.Is(err, bufio.ErrBufferFull) {
			// Far too long for a hash line: keep its start for the
			// report and skip the rest.
			long = true
			line = append([]byte(nil), line[:80]...)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		}
		if len(line) > 0 || long {
			st.Lines++
			if st.Lines == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			}
			h, count, perr := ParseLine(line)
			if long {
				perr = errLineTooLong
			}
			switch {
			case perr == errBlank:
				st.Blank++
			case perr != nil:
				st.Malformed++
				if len(st.Examples) < MaxExamples {
					text := string(bytes.TrimRight(line, "\r\n"))
					if len(text) > 80 {
						text = text[:80]
					}
					st.Examples = append(st.Examples, Malformed{Line: st.Lines, Text: text, Reason: perr.Error()})
				}
			default:
				st.Imported++
				if aerr := b.Add(Entry{Hash: h, HIBP: count}); aerr != nil {
					return st, aerr
				}
			}
			if st.Lines&0xffff == 0 {
				st.Bytes = cr.n - int64(br.Buffered())
				if cerr := ctx.Err(); cerr != nil {
					return st, cerr
				}
				if now := time.Now(); now.Sub(lastReport) >= 250*time.Millisecond {
					lastReport = now
					report(Progress{Phase: "reading"})
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, fmt.Errorf("password import: line %d: %w", st.Lines+1, err)
		}
	}
	st.Bytes = cr.n
	report(Progress{Phase: "reading"})
	lastReport = time.Time{}
	n, err := b.Finish(ctx, out)
	if err != nil {
		return st, err
	}
	st.Hashes = n
	st.Elapsed = time.Since(start)
	report(Progress{Phase: "done", Merged: b.Added(), MergeTotal: b.Added()})
	return st, nil
}

var (
	errBlank       = errors.New("blank line")
	errLineTooLong = errors.New("line too long")
)

// ParseLine parses one line of an HIBP SHA-1 download: 40 hex digits, a
// colon and a decimal count ≥ 1, with an optional CR/LF and surrounding
// blanks. A blank line gives an error that Import does not count as
// malformed.
func ParseLine(line []byte) (Hash, uint64, error) {
	line = bytes.TrimSpace(line)
	var h Hash
	if len(line) == 0 {
		return h, 0, errBlank
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return h, 0, errors.New("no ':' between hash and count")
	}
	if colon != 40 {
		return h, 0, fmt.Errorf("hash has %d characters, want 40 hex digits", colon)
	}
	for i := 0; i < 40; i += 2 {
		hi, ok1 := unhex(line[i])
		lo, ok2 := unhex(line[i+1])
		if !ok1 || !ok2 {
			return h, 0, errors.New("hash is not hexadecimal")
		}
		h[i/2] = hi<<4 | lo
	}
	digits := line[41:]
	if len(digits) == 0 {
		return h, 0, errors.New("missing count")
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return h, 0, errors.New("count is not a decimal number")
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return h, 0, errors.New("count overflows")
		}
		n = n*10 + d
	}
	if n == 0 {
		return h, 0, errors.New("count is zero")
	}
	return h, n, nil
}
