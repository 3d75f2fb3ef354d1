package client

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// rtfGateway is RTF_GATEWAY: the route goes through a gateway.
const rtfGateway = 0x2

// Gateways returns the default gateways of the network namespace the
// process runs in, IPv4 and IPv6, read from procNet/route and
// procNet/ipv6_route (procNet is normally /proc/net, which follows the
// reader's namespace). A missing file (no IPv6) is not an error.
func Gateways(procNet string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, f := range []struct {
		name  string
		parse func(io.Reader) ([]netip.Addr, error)
	}{{"route", parseRoute4}, {"ipv6_route", parseRoute6}} {
		r, err := os.Open(filepath.Join(procNet, f.name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gws, err := f.parse(r)
		r.Close()
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, gws...)
	}
	return out, errors.Join(errs...)
}

// parseRoute4 reads /proc/net/route: a header, then per route the
// interface, destination, gateway, flags, ..., mask, in hexadecimal in the
// host's byte order. A default route has destination and mask 0.
func parseRoute4(r io.Reader) ([]netip.Addr, error) {
	var out []netip.Addr
	sc := bufio.NewScanner(r)
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		gw, err2 := strconv.ParseUint(f[2], 16, 32)
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		mask, err4 := strconv.ParseUint(f[7], 16, 32)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return out, err
		}
		if dst != 0 || mask != 0 || flags&rtfGateway == 0 || gw == 0 {
			continue
		}
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(gw))
		out = append(out, netip.AddrFrom4(b))
	}
	return out, sc.Err()
}

// parseRoute6 reads /proc/net/ipv6_route: per route the destination and its
// length, the source and its length, the next hop, metric, reference
// count, use count, flags and interface, in hexadecimal (addresses in
// network order). A default route has destination length 0.
func parseRoute6(r io.Reader) ([]netip.Addr, error) {
	var out []netip.Addr
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || len(f[4]) != 32 {
			continue
		}
		if f[1] != "00" {
			continue
		}
		flags, err := strconv.ParseUint(f[8], 16, 32)
		if err != nil {
			return out, err
		}
		var b [16]byte
		if _, err := hex.Decode(b[:], []byte(f[4])); err != nil {
			return out, err
		}
		if flags&rtfGateway == 0 || b == [16]byte{} {
			continue
		}
		out = append(out, netip.AddrFrom16(b))
	}
	return out, sc.Err()
}
