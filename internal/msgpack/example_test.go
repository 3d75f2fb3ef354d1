package msgpack_test

import (
	"fmt"

	"github.com/dynfw/sentinel/internal/msgpack"
)

// Walking a payload with a Reader: no copies, unknown keys skipped.
func ExampleReader() {
	b := msgpack.AppendMapHeader(nil, 2)
	b = msgpack.AppendString(b, "list")
	b = msgpack.AppendArrayHeader(b, 2)
	b = msgpack.AppendString(b, "192.0.2.1")
	b = msgpack.AppendBytes(b, []byte("2001:db8::1")) // bin is accepted as text
	b = msgpack.AppendString(b, "extra")
	b = msgpack.AppendInt(b, -1)

	r := msgpack.NewReader(b)
	n, _ := r.ReadMapHeader()
	for range n {
		key, _ := r.ReadStringBytes()
		if string(key) != "list" {
			_ = r.Skip()
			continue
		}
		count, _ := r.ReadArrayHeader()
		for range count {
			s, _ := r.ReadStringBytes()
			fmt.Printf("%s\n", s)
		}
	}
	fmt.Println(r.Remaining())
	// Output:
	// 192.0.2.1
	// 2001:db8::1
	// 0
}

func ExampleAppendJSON() {
	b, _ := msgpack.Append(nil, msgpack.Map{
		{Key: "serial", Value: uint64(70000)},
		{Key: "delta", Value: "positive"},
		{Key: "raw", Value: []byte{0xff, 0x00}},
	})
	out, err := msgpack.AppendJSON(nil, b)
	fmt.Println(string(out), err)
	// Output: {"serial":70000,"delta":"positive","raw":"base64:/wA="} <nil>
}
