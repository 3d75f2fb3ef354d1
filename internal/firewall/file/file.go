// Package file is the "file" firewall backend of dynfw-client: it keeps a
// file equal to the blocked set, for software that reads a list (a web
// server's deny list, a script run from cron) or that loads sets itself
// (`ipset restore`, `nft -f`).
//
// Data enters through firewall.Backend: Replace and Apply change a Set held
// in memory, and after each call that changed something the whole set is
// written to Config.Path. Nothing is ever read back from the file. The file
// is replaced atomically: the new contents go to a temporary file in the
// same directory (".<name>.tmp-*", mode 0644), which is synced and renamed
// over the old one, so a reader opens either the old complete file or the
// new complete file, never a partial one. Close(false) removes the file;
// Close(true) leaves the last one in place.
//
// # Formats
//
// Plain (the default) has one element per line and a final newline; an
// empty set is an empty file. Single addresses are written without a
// length (1.2.3.4, 2001:db8::1), prefixes in CIDR notation (10.0.0.0/8,
// 2001:db8::/32), IPv6 in RFC 5952 form. The order is: IPv4 addresses in
// numeric order, then IPv6 addresses in numeric order, then prefixes
// (IPv4 before IPv6, each by address, then by length). Sorting the lines
// with `sort -V` or `sort` gives another order: compare files as sets, or
// compare with this package's output.
//
//	1.2.3.4
//	9.9.9.9
//	10.0.0.1
//	2001:db8::1
//	10.0.0.0/8
//	2001:db8::/32
//
// Ipset is input for `ipset restore` and fills four sets named by
// Config.IpsetSets (by default those of the ipset backend): hash:ip
// family inet, hash:ip family inet6, hash:net family inet and hash:net
// family inet6, each created with maxelem Config.IpsetMaxElem if missing.
// Each set is filled through a temporary set "<name>-tmp" and swapped in,
// so that rules using a set never see it empty or partial:
//
//	create turris-sn-dynfw-block hash:ip family inet maxelem 262144 -exist
//	create turris-sn-dynfw-block-tmp hash:ip family inet maxelem 262144 -exist
//	flush turris-sn-dynfw-block-tmp
//	add turris-sn-dynfw-block-tmp 1.2.3.4
//	... the same for the three other sets ...
//	swap turris-sn-dynfw-block-tmp turris-sn-dynfw-block
//	...
//	destroy turris-sn-dynfw-block-tmp
//	...
//
// The unspecified addresses 0.0.0.0 and :: are left out: hash sets cannot
// store them. A set that already exists must have the same type and maxelem, or
// `ipset restore` refuses the create line (ipset's -exist only tolerates an
// identical set).
//
// Nft is input for `nft -f`, which applies a file as one transaction. It
// declares a table of family inet and four sets (names from Config.NftTable
// and Config.NftSets), flushes them and adds the elements; the prefix sets
// are interval sets with auto-merge, and prefixes contained in another
// listed prefix are left out since an interval set cannot hold both:
//
//	add table inet dynfw
//	add set inet dynfw addr4 { type ipv4_addr; }
//	add set inet dynfw addr6 { type ipv6_addr; }
//	add set inet dynfw net4 { type ipv4_addr; flags interval; auto-merge; }
//	add set inet dynfw net6 { type ipv6_addr; flags interval; auto-merge; }
//	flush set inet dynfw addr4
//	...
//	add element inet dynfw addr4 { 1.2.3.4, 9.9.9.9 }
//
// Only sets are written: the rules that use them belong to the ruleset
// that loads the file.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dynfw/sentinel/internal/firewall"
)

// SetNames names the four sets of the ipset and nft formats.
type SetNames struct {
	// Addr4 and Addr6 hold single IPv4 and IPv6 addresses.
	Addr4, Addr6 string
	// Net4 and Net6 hold IPv4 and IPv6 prefixes.
	Net4, Net6 string
}

// Defaults for Config.
var (
	// DefaultIpsetSets are the set names of the ipset backend, so a file
	// can stand in for it.
	DefaultIpsetSets = SetNames{
		Addr4: "turris-sn-dynfw-block",
		Addr6: "turris-sn-dynfw-block-v6",
		Net4:  "turris-sn-dynfw-block-net4",
		Net6:  "turris-sn-dynfw-block-net6",
	}
	// DefaultNftSets are the set names of the nft format.
	DefaultNftSets = SetNames{Addr4: "addr4", Addr6: "addr6", Net4: "net4", Net6: "net6"}
)

const (
	// DefaultNftTable is the nft format's table (family inet).
	DefaultNftTable = "dynfw"
	// DefaultIpsetMaxElem is the ipset format's maxelem: that of Turris
	// OS's DynFW sets and the ipset backend's default, since `ipset
	// restore` refuses to "create" an existing set whose maxelem differs.
	// (ipset's own default of 65536 is too small for a DynFW list.)
	DefaultIpsetMaxElem = 262144
)

// Config describes the file to keep.
type Config struct {
	// Path of the file. Its directory must exist.
	Path string
	// Format of the file; empty means Plain.
	Format Format
	// IpsetSets names the sets of the Ipset format; empty fields take
	// their DefaultIpsetSets value. Names are at most 27 bytes, so that
	// "<name>-tmp" fits ipset's limit of 31.
	IpsetSets SetNames
	// IpsetMaxElem is the maxelem of the ipset sets (default
	// DefaultIpsetMaxElem). It must equal that of sets that already
	// exist, and it is fixed rather than sized for the list, since each
	// load swaps the temporary set's definition into the live set. A set
	// larger than this is an error rather than a file that ipset would
	// refuse halfway.
	IpsetMaxElem int
	// NftTable is the table of the Nft format (default DefaultNftTable).
	NftTable string
	// NftSets names the sets of the Nft format; empty fields take their
	// DefaultNftSets value.
	NftSets SetNames
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("file backend: closed")

// Backend is the file backend. Create it with New.
type Backend struct {
	cfg Config
	set Set
	// dirty is set when the set changed since the file was last written,
	// so that a failed write is retried by the next call even if that call
	// changes nothing.
	dirty  bool
	closed bool
	// buf is the output buffer, kept between writes.
	buf []byte
}

var _ firewall.Backend = (*Backend)(nil)

// validNftName reports whether s is a name nft accepts for a table or set
// ([A-Za-z_][A-Za-z0-9_./-]{0,254}), and validIpsetName one ipset accepts
// ([A-Za-z0-9_.:+-]+). They are written out rather than regexps: the
// router client links this package, and the regexp engine would add a
// quarter of a megabyte to it.
func validNftName(s string) bool {
	if s == "" || len(s) > 255 || !onlyNameBytes(s[:1], "_") || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	return onlyNameBytes(s, "_./-")
}

func validIpsetName(s string) bool { return s != "" && onlyNameBytes(s, "_.:+-") }

// onlyNameBytes reports whether s holds only ASCII letters, digits and
// bytes of extra.
func onlyNameBytes(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// New checks cfg and returns a backend. It writes nothing until the first
// Replace or Apply, but fails now if the file's directory does not exist,
// so that a typo in a path shows at start. Temporary files left by an
// interrupted earlier run are removed.
func New(cfg Config) (*Backend, error) {
	if cfg.Path == "" {
		return nil, errors.New("file backend: no path")
	}
	if cfg.Format == "" {
		cfg.Format = Plain
	}
	switch cfg.Format {
	case Plain:
	case Ipset:
		cfg.IpsetSets = withDefaults(cfg.IpsetSets, DefaultIpsetSets)
		if cfg.IpsetMaxElem == 0 {
			cfg.IpsetMaxElem = DefaultIpsetMaxElem
		}
		if cfg.IpsetMaxElem < 0 {
			return nil, fmt.Errorf("file backend: negative ipset maxelem %d", cfg.IpsetMaxElem)
		}
		for _, n := range cfg.IpsetSets.list() {
			if len(n)+len(ipsetTmpSuffix) > ipsetMaxName || !validIpsetName(n) {
				return nil, fmt.Errorf("file backend: invalid ipset set name %q (letters, digits and _.:+- only, at most %d bytes)", n, ipsetMaxName-len(ipsetTmpSuffix))
			}
		}
		if hasDuplicates(cfg.IpsetSets) {
			return nil, fmt.Errorf("file backend: ipset set names must differ: %+v", cfg.IpsetSets)
		}
	case Nft:
		cfg.NftSets = withDefaults(cfg.NftSets, DefaultNftSets)
		if cfg.NftTable == "" {
			cfg.NftTable = DefaultNftTable
		}
		for _, n := range append(cfg.NftSets.list(), cfg.NftTable) {
			if !validNftName(n) {
				return nil, fmt.Errorf("file backend: invalid nft name %q", n)
			}
		}
		if hasDuplicates(cfg.NftSets) {
			return nil, fmt.Errorf("file backend: nft set names must differ: %+v", cfg.NftSets)
		}
	default:
		return nil, fmt.Errorf("file backend: unknown format %q (want %s, %s or %s)", cfg.Format, Plain, Ipset, Nft)
	}
	dir := filepath.Dir(cfg.Path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("file backend: directory %s of %s does not exist", dir, cfg.Path)
	case err != nil:
		return nil, fmt.Errorf("file backend: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("file backend: %s is not a directory", dir)
	}
	if fi, err := os.Stat(cfg.Path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("file backend: %s is a directory", cfg.Path)
	}
	removeStaleTemps(cfg.Path)
	return &Backend{cfg: cfg}, nil
}

func (n SetNames) list() []string { return []string{n.Addr4, n.Addr6, n.Net4, n.Net6} }

func withDefaults(n, def SetNames) SetNames {
	if n.Addr4 == "" {
		n.Addr4 = def.Addr4
	}
	if n.Addr6 == "" {
		n.Addr6 = def.Addr6
	}
	if n.Net4 == "" {
		n.Net4 = def.Net4
	}
	if n.Net6 == "" {
		n.Net6 = def.Net6
	}
	return n
}

func hasDuplicates(n SetNames) bool {
	seen := map[string]bool{}
	for _, s := range n.list() {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}

// tempPrefix is the name prefix of the temporary files next to path. The
// leading dot keeps them out of globs like *.txt that a reader may use.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

func removeStaleTemps(path string) {
	dir, prefix := filepath.Dir(path), tempPrefix(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Name returns "file".
func (b *Backend) Name() string { return "file" }

// Replace makes the set exactly e and writes the file.
func (b *Backend) Replace(ctx context.Context, e *firewall.Elements) error {
	if b.closed {
		return ErrClosed
	}
	b.set.Replace(e)
	b.dirty = true
	return b.write(ctx)
}

// Apply changes the set and writes the file if anything changed (or if an
// earlier write failed). After an error the set in memory already holds the
// change; the next successful call writes it.
func (b *Backend) Apply(ctx context.Context, add, del *firewall.Elements) error {
	if b.closed {
		return ErrClosed
	}
	added, deleted := b.set.Apply(add, del)
	if added.Len()+deleted.Len() > 0 {
		b.dirty = true
	}
	if !b.dirty {
		return nil
	}
	return b.write(ctx)
}

// Close ends the backend. Without keep it removes the file, since the file
// is all the backend created; with keep the last written file stays for
// whoever loads it.
func (b *Backend) Close(keep bool) error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.set = Set{}
	b.buf = nil
	if keep {
		return nil
	}
	if err := os.Remove(b.cfg.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file backend: %w", err)
	}
	return nil
}

// write replaces the file with the current set.
func (b *Backend) write(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	path := b.cfg.Path
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("file backend: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("file backend: write %s: %w", path, err)
		}
	}()
	// CreateTemp makes the file 0600; readers of a block list are often
	// other users (a web server), and Chmod is not subject to the umask.
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, chunkSize+4096)
	}
	c := &chunkWriter{w: ctxWriter{ctx, f}, buf: b.buf[:0]}
	e := b.set.Elements()
	switch b.cfg.Format {
	case Plain:
		encodePlain(c, e)
	case Ipset:
		if err := encodeIpset(c, e, b.cfg.IpsetSets, b.cfg.IpsetMaxElem); err != nil {
			return err
		}
	case Nft:
		encodeNft(c, e, b.cfg.NftTable, b.cfg.NftSets)
	}
	c.flush()
	b.buf = c.buf
	if c.err != nil {
		return c.err
	}
	// Sync before rename: otherwise a crash can leave the new name
	// pointing at a file whose data never reached the disk.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	b.dirty = false
	// Make the rename itself durable. A failure here does not undo the
	// replacement readers already see, so it is not reported.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ctxWriter stops a long write when the caller gives up.
type ctxWriter struct {
	ctx context.Context
	f   *os.File
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}
