package dynfw_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/dynfw/sentinel/dynfw"
)

// A client handles each received (topic, payload) pair like this. A delta
// with an unusable address still advances the serial.
func ExampleDecode() {
	frames := []struct {
		topic   string
		payload []byte
	}{
		{dynfw.TopicList, dynfw.List{Version: 1, Serial: 10, TS: 1700000000,
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}.Marshal()},
		{dynfw.TopicDelta, dynfw.Delta{Serial: 11, Op: dynfw.Positive, TS: 1700000001}.Marshal()}, // no address
		{dynfw.TopicDelta, dynfw.Delta{Serial: 12, Op: dynfw.Negative, TS: 1700000002,
			Addr: netip.MustParsePrefix("192.0.2.1/32")}.Marshal()},
	}
	for _, f := range frames {
		m, err := dynfw.Decode(f.topic, f.payload, dynfw.DecodeOptions{})
		var bad *dynfw.AddrError
		switch {
		case errors.As(err, &bad):
			fmt.Printf("serial %d: skipped: %v\n", m.(*dynfw.Delta).Serial, err)
			continue
		case err != nil:
			fmt.Println("resync:", err)
			continue
		}
		switch m := m.(type) {
		case *dynfw.List:
			fmt.Printf("list serial %d: %d addresses\n", m.Serial, len(m.Addrs))
		case *dynfw.Delta:
			fmt.Printf("serial %d: %s %s\n", m.Serial, m.Op, dynfw.FormatAddr(m.Addr))
		}
	}
	// Output:
	// list serial 10: 1 addresses
	// serial 11: skipped: dynfw/delta: field "ip": invalid address "": not an IP address
	// serial 12: negative 192.0.2.1
}

func ExampleParseAddr() {
	for _, s := range []string{"::ffff:198.51.100.7", "10.1.2.3/8", "fe80::1%eth0"} {
		p, err := dynfw.ParseAddr(s, true)
		fmt.Println(dynfw.FormatAddr(p), err)
	}
	// Output:
	// 198.51.100.7 <nil>
	// 10.0.0.0/8 <nil>
	//  invalid address "fe80::1%eth0": addresses with a zone are not allowed
}
