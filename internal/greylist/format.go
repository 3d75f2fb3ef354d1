package greylist

import (
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// Format is one of the renderings of a snapshot, named by its file
// extension.
type Format string

// The formats every snapshot is written in.
const (
	CSV  Format = "csv"
	JSON Format = "json"
	Text Format = "txt"
)

// formats is the order in which files are written and listed.
var formats = [...]Format{CSV, JSON, Text}

// ContentType is the media type the handler sends for the format. CSV and
// text name their charset because browsers and some feed readers otherwise
// guess; JSON is UTF-8 by definition (RFC 8259) and takes no parameter.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case JSON:
		return "application/json"
	default:
		return "text/plain; charset=utf-8"
	}
}

func (f Format) valid() bool { return f == CSV || f == JSON || f == Text }

// chunkSize is how much a writer buffers before writing; large enough that
// a million rows take a few hundred write calls, small enough to stay in
// cache.
const chunkSize = 64 << 10

// WriteCSV writes entries in the Turris greylist CSV format (see the package
// documentation), with licenseURL in the first line. Entries that are not in
// canonical form are normalised first (see Normalize).
func WriteCSV(w io.Writer, licenseURL string, entries []Entry) error {
	entries = Normalize(entries)
	buf := make([]byte, 0, chunkSize+256)
	buf = append(buf, "# For the terms of use see "...)
	buf = append(buf, licenseURL...)
	buf = append(buf, "\nAddress,Tags\n"...)
	for _, e := range entries {
		buf = appendAddr(buf, e.Addr)
		buf = append(buf, ',')
		// Tags are ValidTag, so the only character needing quotes is the
		// separating comma: the field is quoted exactly when there are
		// several tags, as in Python's csv.QUOTE_MINIMAL.
		if len(e.Tags) > 1 {
			buf = append(buf, '"')
		}
		for i, t := range e.Tags {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, t...)
		}
		if len(e.Tags) > 1 {
			buf = append(buf, '"')
		}
		buf = append(buf, '\n')
		if len(buf) >= chunkSize {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}

// WriteJSON writes entries as one JSON document with one entry per line
// (see the package documentation). generated is written in UTC, to the
// second, in RFC 3339. Entries that are not in canonical form are normalised
// first (see Normalize).
func WriteJSON(w io.Writer, generated time.Time, licenseURL string, entries []Entry) error {
	entries = Normalize(entries)
	// Only the licence URL can need escaping: addresses and tags (ValidTag)
	// are plain ASCII without quotes or backslashes.
	lic, err := json.Marshal(licenseURL)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, chunkSize+256)
	buf = append(buf, `{"generated":"`...)
	buf = generated.UTC().Truncate(time.Second).AppendFormat(buf, time.RFC3339)
	buf = append(buf, `","license":`...)
	buf = append(buf, lic...)
	buf = append(buf, `,"count":`...)
	buf = strconv.AppendInt(buf, int64(len(entries)), 10)
	buf = append(buf, `,"entries":[`...)
	for i, e := range entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, "\n{\"address\":\""...)
		buf = appendAddr(buf, e.Addr)
		buf = append(buf, `","tags":[`...)
		for j, t := range e.Tags {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '"')
			buf = append(buf, t...)
			buf = append(buf, '"')
		}
		buf = append(buf, "]}"...)
		if len(buf) >= chunkSize {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, "\n]}\n"...)
	_, err = w.Write(buf)
	return err
}

// WriteText writes one address or prefix per line, in the order of the
// other formats, without any header or comment. Entries that are not in
// canonical form are normalised first (see Normalize).
func WriteText(w io.Writer, entries []Entry) error {
	entries = Normalize(entries)
	buf := make([]byte, 0, chunkSize+64)
	for _, e := range entries {
		buf = appendAddr(buf, e.Addr)
		buf = append(buf, '\n')
		if len(buf) >= chunkSize {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}
