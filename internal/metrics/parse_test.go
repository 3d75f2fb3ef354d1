package metrics

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// exposition is the result of parseStrict: every sample by its series
// ("name" or `name{a="x",le="1"}` with unescaped values, labels in written
// order) and every family's type.
type exposition struct {
	samples map[string]float64
	types   map[string]string
	help    map[string]string
}

var (
	valueRE   = regexp.MustCompile(`^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$`)
	validType = map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}
)

// parseStrict parses the text format 0.0.4 and rejects anything this
// package must never write, even where Prometheus would be lenient: other
// comments, empty lines, timestamps, a missing final newline, families out
// of order or split, samples before their TYPE, duplicate series, bad
// escapes, histograms whose buckets do not add up.
func parseStrict(text string) (*exposition, error) {
	e := &exposition{samples: map[string]float64{}, types: map[string]string{}, help: map[string]string{}}
	if text == "" {
		return e, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("no final newline")
	}
	var cur string
	seen := map[string]bool{}
	startFamily := func(name string) error {
		if name == cur {
			return nil
		}
		if seen[name] {
			return fmt.Errorf("family %s split", name)
		}
		if cur != "" && name < cur {
			return fmt.Errorf("family %s after %s", name, cur)
		}
		seen[name], cur = true, name
		return nil
	}
	type bucket struct {
		le    float64
		count float64
	}
	buckets := map[string][]bucket{} // by series without le
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", i+1, line, fmt.Sprintf(format, args...))
		}
		if line == "" {
			return nil, fail("empty line")
		}
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, doc, _ := strings.Cut(rest, " ")
			if !metricName.MatchString(name) {
				return nil, fail("bad name")
			}
			if err := startFamily(name); err != nil {
				return nil, fail("%v", err)
			}
			if _, dup := e.help[name]; dup || e.types[name] != "" {
				return nil, fail("HELP twice or after TYPE")
			}
			text, err := unescape(doc, false)
			if err != nil {
				return nil, fail("%v", err)
			}
			e.help[name] = text
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if !metricName.MatchString(name) || !validType[typ] {
				return nil, fail("bad TYPE")
			}
			if err := startFamily(name); err != nil {
				return nil, fail("%v", err)
			}
			if e.types[name] != "" {
				return nil, fail("TYPE twice")
			}
			e.types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") {
			return nil, fail("unexpected comment")
		}

		// A sample: name, optional labels, one space, a value.
		j := 0
		for j < len(line) && line[j] != '{' && line[j] != ' ' {
			j++
		}
		name := line[:j]
		if !metricName.MatchString(name) {
			return nil, fail("bad metric name")
		}
		var labels [][2]string
		if j < len(line) && line[j] == '{' {
			j++
			for {
				k := j
				for k < len(line) && line[k] != '=' {
					k++
				}
				ln := line[j:k]
				if !labelName.MatchString(ln) || k+1 >= len(line) || line[k+1] != '"' {
					return nil, fail("bad label at %d", j)
				}
				k += 2
				var raw strings.Builder
				for ; k < len(line) && line[k] != '"'; k++ {
					if line[k] == '\\' && k+1 < len(line) {
						raw.WriteByte(line[k])
						k++
					}
					raw.WriteByte(line[k])
				}
				if k >= len(line) {
					return nil, fail("unterminated label value")
				}
				v, err := unescape(raw.String(), true)
				if err != nil {
					return nil, fail("%v", err)
				}
				for _, l := range labels {
					if l[0] == ln {
						return nil, fail("label %s twice", ln)
					}
				}
				labels = append(labels, [2]string{ln, v})
				k++
				if k < len(line) && line[k] == ',' {
					j = k + 1
					continue
				}
				if k < len(line) && line[k] == '}' {
					j = k + 1
					break
				}
				return nil, fail("bad label list")
			}
		}
		if j >= len(line) || line[j] != ' ' {
			return nil, fail("no space before the value")
		}
		vs := line[j+1:]
		if !valueRE.MatchString(vs) {
			return nil, fail("bad value (or a timestamp)")
		}
		v, _ := strconv.ParseFloat(vs, 64)

		typ := e.types[cur]
		if typ == "" {
			return nil, fail("sample before TYPE")
		}
		var le string
		var rest []string // labels without le, as text
		for _, l := range labels {
			if l[0] == "le" && typ == "histogram" {
				le = l[1]
				continue
			}
			rest = append(rest, fmt.Sprintf("%s=%q", l[0], l[1]))
		}
		base := strings.Join(rest, ",")
		switch {
		case typ == "histogram" && name == cur+"_bucket":
			if le == "" {
				return nil, fail("bucket without le")
			}
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil || !valueRE.MatchString(le) {
				return nil, fail("bad le")
			}
			buckets[base] = append(buckets[base], bucket{bound, v})
		case typ == "histogram" && (name == cur+"_sum" || name == cur+"_count"):
		case typ != "histogram" && name == cur:
		default:
			return nil, fail("sample %s does not belong to family %s (%s)", name, cur, typ)
		}
		var all []string
		for _, l := range labels {
			all = append(all, l[0]+"="+strconv.Quote(l[1]))
		}
		key := name
		if len(all) > 0 {
			key += "{" + strings.Join(all, ",") + "}"
		}
		if _, dup := e.samples[key]; dup {
			return nil, fail("duplicate series")
		}
		e.samples[key] = v
	}
	// Buckets: increasing bounds, non-decreasing counts, +Inf last and
	// equal to _count.
	for base, bs := range buckets {
		for i := 1; i < len(bs); i++ {
			if bs[i].le <= bs[i-1].le || bs[i].count < bs[i-1].count {
				return nil, fmt.Errorf("buckets of {%s} not cumulative: %v", base, bs)
			}
		}
		last := bs[len(bs)-1]
		if !math.IsInf(last.le, 1) {
			return nil, fmt.Errorf("buckets of {%s} lack +Inf", base)
		}
		found := false
		for k, v := range e.samples {
			if strings.HasSuffix(strings.SplitN(k, "{", 2)[0], "_count") && labelPart(k) == base {
				if v != last.count {
					return nil, fmt.Errorf("%s = %v but +Inf bucket %v", k, v, last.count)
				}
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("buckets of {%s} without _count", base)
		}
	}
	return e, nil
}

func labelPart(key string) string {
	_, l, ok := strings.Cut(key, "{")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(l, "}")
}

// unescape undoes the text format's escapes, refusing unknown ones and, in
// label values, unescaped quotes.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' && label {
			return "", fmt.Errorf("unescaped quote")
		}
		if c == '\n' {
			return "", fmt.Errorf("raw newline")
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch {
		case i < len(s) && s[i] == '\\':
			b.WriteByte('\\')
		case i < len(s) && s[i] == 'n':
			b.WriteByte('\n')
		case i < len(s) && s[i] == '"' && label:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape")
		}
	}
	return b.String(), nil
}

// mustParse parses the registry's output strictly.
func mustParse(t testing.TB, r *Registry) *exposition {
	t.Helper()
	text := string(r.appendText(nil))
	e, err := parseStrict(text)
	if err != nil {
		t.Fatalf("malformed output: %v\n%s", err, text)
	}
	return e
}

// TestParserRejects makes sure the strict parser catches what it is for.
func TestParserRejects(t *testing.T) {
	bad := map[string]string{
		"no newline":         "# TYPE a counter\na 1",
		"empty line":         "# TYPE a counter\n\na 1\n",
		"no type":            "a 1\n",
		"timestamp":          "# TYPE a counter\na 1 1700000000\n",
		"bad value":          "# TYPE a counter\na one\n",
		"hex value":          "# TYPE a counter\na 0x10\n",
		"inf spelled":        "# TYPE a counter\na Inf\n",
		"unsorted":           "# TYPE b counter\nb 1\n# TYPE a counter\na 1\n",
		"split":              "# TYPE a counter\na 1\n# TYPE b counter\nb 1\n# TYPE a counter\n",
		"foreign sample":     "# TYPE a counter\nb 1\n",
		"duplicate":          "# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
		"raw quote":          "# TYPE a counter\na{x=\"a\"b\"} 1\n",
		"bad escape":         "# TYPE a counter\na{x=\"a\\t\"} 1\n",
		"trailing comma":     "# TYPE a counter\na{x=\"1\",} 1\n",
		"label twice":        "# TYPE a counter\na{x=\"1\",x=\"2\"} 1\n",
		"bad label name":     "# TYPE a counter\na{1x=\"1\"} 1\n",
		"comment":            "# just saying\n",
		"help after type":    "# TYPE a counter\n# HELP a x\na 1\n",
		"bucket without le":  "# TYPE h histogram\nh_bucket 1\n",
		"no +Inf":            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"count mismatch":     "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
		"not cumulative":     "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"decreasing bounds":  "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"missing count":      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n",
		"bad help escape":    "# HELP a x\\y\n# TYPE a counter\na 1\n",
		"unterminated value": "# TYPE a counter\na{x=\"1} 1\n",
	}
	for name, text := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := parseStrict(text); err == nil {
				t.Errorf("accepted:\n%s", text)
			}
		})
	}
	good := "# HELP a x\\\\y\\nz\n# TYPE a counter\na{x=\"q\\\"\\\\\\n\"} 1e+06\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum NaN\nh_count 2\n"
	e, err := parseStrict(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(e.samples)); len(got) != 5 || e.help["a"] != "x\\y\nz" || e.samples[`a{x="q\"\\\n"}`] != 1e6 {
		t.Errorf("parsed %v %q", e.samples, e.help)
	}
}
