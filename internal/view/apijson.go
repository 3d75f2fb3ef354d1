package view

import (
	"cmp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dynfw/sentinel/internal/stats"
)

// The API's JSON: the reference's shapes (sentinel-view.md §2) written
// from the typed rows, byte for byte what encoding/json wrote from the
// generic maps the rows replaced: object keys sorted, <, > and & escaped.

// AppendDataJSON appends the reference JSON of a result's data.
func AppendDataJSON(b []byte, r *stats.Result) []byte {
	switch r.Resource.Shape {
	case stats.Graph:
		b = append(b, '[')
		for i, p := range r.Graph {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"bucket":`...)
			b = appendJSONString(b, p.Bucket)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, p.Count, 10)
			b = append(b, '}')
		}
		return append(b, ']')
	case stats.MultiGraph:
		if r.NoDevices {
			return append(b, `{"data":[]}`...)
		}
		return appendMultiJSON(b, &r.Multi)
	case stats.List:
		return appendListJSON(b, r.Resource.Fields, r.List)
	case stats.Map:
		codes := make([]string, 0, len(r.Countries))
		for c := range r.Countries {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		b = append(b, '{')
		for i, c := range codes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c)
			b = append(b, ':')
			b = strconv.AppendInt(b, r.Countries[c], 10)
		}
		return append(b, '}')
	case stats.Seen:
		if r.Seen == nil {
			return append(b, "null"...)
		}
		b = append(b, `{"first":"`...)
		b = r.Seen.First.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","last":"`...)
		b = r.Seen.Last.AppendFormat(b, time.RFC3339Nano)
		return append(b, `"}`...)
	}
	return append(b, "null"...)
}

// appendMultiJSON writes {"labels": [...], "ykeys": [0, 1, ...], "data":
// [{"0": c0, "1": c1, ..., "bucket": b}, ...]}, the items' keys in string
// order.
func appendMultiJSON(b []byte, m *stats.TopSeries) []byte {
	b = append(b, `{"labels":[`...)
	for i, l := range m.Labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, l)
	}
	b = append(b, `],"ykeys":[`...)
	keys := make([]string, len(m.Labels))
	for i := range m.Labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(i), 10)
		keys[i] = strconv.Itoa(i)
	}
	// "10" sorts before "2"; every digit before "bucket".
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(keys[x], keys[y]) })
	b = append(b, `],"data":[`...)
	for i, bucket := range m.Buckets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for _, j := range order {
			b = append(b, '"')
			b = append(b, keys[j]...)
			b = append(b, `":`...)
			b = strconv.AppendInt(b, m.Counts[i][j], 10)
			b = append(b, ',')
		}
		b = append(b, `"bucket":`...)
		b = appendJSONString(b, bucket)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendListJSON writes [{<field>: value, ..., "count": n}, ...], the
// items' keys in string order.
func appendListJSON(b []byte, fields []string, rows []stats.ListRow) []byte {
	keys := append(slices.Clone(fields), "count")
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(keys[x], keys[y]) })
	b = append(b, '[')
	for i, row := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for k, j := range order {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, keys[j])
			b = append(b, ':')
			if j == len(fields) {
				b = strconv.AppendInt(b, row.Count, 10)
			} else {
				b = appendJSONString(b, row.Fields[j])
			}
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string as encoding/json writes it
// with HTML escaping: <, > and & as \u003c, \u003e, \u0026, control
// characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
