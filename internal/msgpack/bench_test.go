package msgpack

import (
	"strconv"
	"sync"
	"testing"
)

// ipv4List returns a msgpack array of n dotted-quad strings, the bulk of a
// dynfw/list payload.
var ipv4List = sync.OnceValue(func() []byte {
	const n = 1 << 20
	b := AppendArrayHeader(nil, n)
	var s []byte
	for i := range n {
		s = strconv.AppendUint(s[:0], uint64(i>>16&0xff+1), 10)
		s = append(s, '.')
		s = strconv.AppendUint(s, uint64(i>>8&0xff), 10)
		s = append(s, '.')
		s = strconv.AppendUint(s, uint64(i&0xff), 10)
		s = append(s, ".7"...)
		b = AppendStringBytes(b, s)
	}
	return b
})

func BenchmarkReaderStrings1M(b *testing.B) {
	in := ipv4List()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var r Reader
	for b.Loop() {
		r.Reset(in)
		n, err := r.ReadArrayHeader()
		if err != nil {
			b.Fatal(err)
		}
		total := 0
		for range n {
			s, err := r.ReadStringBytes()
			if err != nil {
				b.Fatal(err)
			}
			total += len(s)
		}
		if total == 0 {
			b.Fatal("no data")
		}
	}
}

func BenchmarkSkipStrings1M(b *testing.B) {
	in := ipv4List()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := NewReader(in).Skip(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStrings1M(b *testing.B) {
	in := ipv4List()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSONStrings1M(b *testing.B) {
	in := ipv4List()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		var err error
		if out, err = AppendJSON(out[:0], in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStrings1M(b *testing.B) {
	const n = 1 << 20
	strs := make([]string, n)
	for i := range strs {
		strs[i] = "10." + strconv.Itoa(i>>16&0xff) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff)
	}
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		out = AppendArrayHeader(out[:0], n)
		for _, s := range strs {
			out = AppendString(out, s)
		}
	}
	b.SetBytes(int64(len(out)))
}

func BenchmarkDecodeSmallMap(b *testing.B) {
	in, _ := Append(nil, Map{{"serial", uint64(70000)}, {"delta", "positive"}, {"ip", "192.0.2.1"}, {"ts", uint64(1700000000)}})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}
