package view

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// TestCSVInjection: no cell of an export becomes a formula in a
// spreadsheet, whichever of comma, semicolon or tab it splits on, and
// even if it ignores the quotes (issue 10, item 10: `x;=1+1`).
func TestCSVInjection(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"hunter2", "hunter2"},
		{"", ""},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t'=1"},
		{"\r=1", "'\r'=1"},
		{"x;=1+1", "x;'=1+1"},
		{"x,=1+1", "x,'=1+1"},
		{"x\t=1+1", "x\t'=1+1"},
		{"x\n@A1", "x\n'@A1"},
		{"x;;-1", "x;;'-1"},
		{"a;b,c", "a;b,c"},
		{"1;2 = 3", "1;2 = 3"},
		{`=cmd|' /C calc'!A0`, `'=cmd|' /C calc'!A0`},
		{`x;"=1+1"`, `x;"=1+1"`},
	} {
		if got := csvSafe(c.in); got != c.want {
			t.Errorf("csvSafe(%q) = %q, want %q", c.in, got, c.want)
		}
		var b bytes.Buffer
		cw := newCSVWriter(&b)
		cw.row(c.in, "7")
		if err := cw.flush(); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		// A conforming reader gets the neutralised cell back.
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(recs) != 1 || len(recs[0]) != 2 || recs[0][0] != c.want || recs[0][1] != "7" {
			t.Errorf("%q: wrote %q, read back %q (%v)", c.in, out, recs, err)
		}
		// A field with a separator of any kind is quoted.
		if strings.ContainsAny(c.in, ",;\t\r\n\"") && !strings.HasPrefix(out, `"`) {
			t.Errorf("%q: not quoted: %q", c.in, out)
		}
		// A spreadsheet that splits on any separator, even inside
		// quotes, finds no formula (a cell that starts with a quote is
		// read from the character after it).
		for _, sep := range []string{",", ";", "\t", "\n", "\r"} {
			for _, cell := range strings.Split(out, sep) {
				cell = strings.TrimPrefix(cell, `"`)
				if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
					t.Errorf("%q: wrote %q, whose cell %q (split on %q) is a formula", c.in, out, cell, sep)
				}
			}
		}
	}
}
