package metrics

import (
	"regexp"
	"testing"
)

// The name syntax of the Prometheus data model, as regular expressions:
// the oracle for validName, and what the exposition checker of
// parse_test.go accepts.
var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// TestValidName checks the hand-written name check against the regular
// expressions, on every string of up to three bytes over an alphabet of
// the interesting cases.
func TestValidName(t *testing.T) {
	metric, label := metricName, labelName
	for _, s := range shortStrings("aZz_:09.-/ \n\xc3\x00") {
		if got, want := validName(s, true), metric.MatchString(s); got != want {
			t.Errorf("validName(%q, metric) = %v, want %v", s, got, want)
		}
		if got, want := validName(s, false), label.MatchString(s); got != want {
			t.Errorf("validName(%q, label) = %v, want %v", s, got, want)
		}
	}
}

// shortStrings returns every string of up to three bytes from alphabet.
func shortStrings(alphabet string) []string {
	out := []string{""}
	for n, prev := 0, []string{""}; n < 3; n++ {
		var next []string
		for _, p := range prev {
			for i := 0; i < len(alphabet); i++ {
				next = append(next, p+alphabet[i:i+1])
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}
