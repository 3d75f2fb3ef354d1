package zcert

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxSize is the largest certificate, in bytes, that Parse and Load accept.
// Real certificates are a few hundred bytes; the limit keeps a hostile or
// mistaken path (a log file, /dev/zero) from making us allocate without bound.
const MaxSize = 64 << 10

// MaxLines is the largest number of lines Parse accepts.
const MaxLines = 4096

// maxNameLen matches the one-octet name length of ZMTP metadata, which is
// where certificate metadata ends up.
const maxNameLen = 255

var (
	// ErrTooLarge means the input exceeds MaxSize or MaxLines.
	ErrTooLarge = errors.New("certificate too large")
	// ErrNoPublicKey means the certificate has no public-key in its curve
	// section.
	ErrNoPublicKey = errors.New("no public-key in the curve section")
	// ErrKeyMismatch means the secret key does not produce the public key
	// stored next to it.
	ErrKeyMismatch = errors.New("secret-key does not match public-key")
	// ErrNoSecretKey means a secret key was needed but the certificate
	// holds only a public key.
	ErrNoSecretKey = errors.New("certificate has no secret key")
	// ErrInvalidMetadata means a metadata entry cannot be written to a
	// certificate and read back unchanged.
	ErrInvalidMetadata = errors.New("invalid metadata")
)

// ParseError reports why a certificate could not be read, and where. It wraps
// one of the Err* values of this package (or ErrInvalidZ85) where one
// applies, for errors.Is.
type ParseError struct {
	Path string // file name, when the input came from Load
	Line int    // 1-based line number, or 0 when the problem is the whole file
	Err  error
}

// Error returns "zcert: ", the place (path:line, path, or line N) and the
// problem.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("zcert: ")
	switch {
	case e.Path != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.Path, e.Line)
	case e.Path != "":
		fmt.Fprintf(&b, "%s: ", e.Path)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem, for errors.Is and errors.As.
func (e *ParseError) Unwrap() error { return e.Err }

// Property is one metadata entry of a certificate.
type Property struct {
	Name, Value string
}

// Cert is a CURVE certificate: a public key, optionally the secret key that
// belongs to it, and metadata.
//
// A Cert returned by Parse or Load always satisfies Validate. Secret is a
// pointer so that printing a Cert with %v shows an address, not the secret.
type Cert struct {
	Public Key
	// Secret is nil for a public certificate. When set, it must be the
	// secret of Public (see Validate).
	Secret *Key
	// Metadata is kept in file order, and written back in that order.
	Metadata []Property
	// Generated is the time written in the banner of a marshalled
	// certificate; the zero value means the time of marshalling. Parse
	// leaves it zero.
	Generated time.Time
}

// New returns a certificate holding a freshly generated key pair.
func New() (*Cert, error) {
	public, secret, err := GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	return &Cert{Public: public, Secret: &secret}, nil
}

// Validate reports whether c can be written and read back unchanged: the
// secret key, if any, must be nonzero and belong to the public key; every
// metadata entry must have a ZPL name (letters, digits and $-_@.&+/, at most
// 255 bytes, not starting with public-key or secret-key, which pyzmq would
// take for the keys themselves) and a value without control characters other
// than tab and without both kinds of quote; and the marshalled certificate
// must fit in MaxSize, so that Load can read it back.
func (c *Cert) Validate() error {
	if c.Secret != nil {
		if c.Secret.IsZero() {
			// Written out, it would read back as "no secret" (czmq's
			// placeholder), so refuse rather than change meaning.
			return fmt.Errorf("zcert: %w: secret key is all zeros", ErrNoSecretKey)
		}
		if PublicFromSecret(*c.Secret) != c.Public {
			return fmt.Errorf("zcert: %w", ErrKeyMismatch)
		}
	}
	for _, p := range c.Metadata {
		if err := checkMetadata(p.Name, p.Value); err != nil {
			return fmt.Errorf("zcert: metadata %q: %w", p.Name, err)
		}
	}
	if n := c.marshalledSize(); n > MaxSize {
		return fmt.Errorf("zcert: %w: %d bytes marshalled, limit %d", ErrTooLarge, n, MaxSize)
	}
	return nil
}

// sizeProbeTime has microseconds, so its banner is as long as any that
// time.Now() produces.
var sizeProbeTime = time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC)

// marshalledSize bounds the length of either marshalled form of c. It uses the
// secret form, the longer, and a worst-case banner time unless Generated fixes
// the time, so that the answer does not depend on when it is asked.
func (c *Cert) marshalledSize() int {
	t := c.Generated
	if t.IsZero() {
		t = sizeProbeTime
	}
	return len(c.marshal(true, t))
}

func checkMetadata(name, value string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: name must be 1 to %d bytes", ErrInvalidMetadata, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return fmt.Errorf("%w: name contains %q", ErrInvalidMetadata, name[i])
		}
	}
	if strings.HasPrefix(name, "public-key") || strings.HasPrefix(name, "secret-key") {
		// pyzmq's load_certificate matches these prefixes on any line,
		// whatever the section, so such an entry would be read as a key
		// (and a secret in metadata would be published in the .key file).
		return fmt.Errorf("%w: name is reserved for keys", ErrInvalidMetadata)
	}
	for i := 0; i < len(value); i++ {
		if b := value[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return fmt.Errorf("%w: value contains control character %q", ErrInvalidMetadata, b)
		}
	}
	if strings.Contains(value, `"`) && strings.Contains(value, `'`) {
		return fmt.Errorf("%w: ZPL cannot quote a value containing both ' and \"", ErrInvalidMetadata)
	}
	return nil
}

// isNameByte reports whether b may appear in a ZPL name (RFC 4).
func isNameByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("$-_@.&+/", b) >= 0
}

const (
	publicBanner = "#   ZeroMQ CURVE Public Certificate\n" +
		"#   Exchange securely, or use a secure mechanism to verify the contents\n" +
		"#   of this file after exchange. Store public certificates in your home\n" +
		"#   directory, in the .curve subdirectory.\n"
	secretBanner = "#   ZeroMQ CURVE **Secret** Certificate\n" +
		"#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
)

// MarshalPublic returns c as a public certificate file (public key and
// metadata, never the secret), in the layout pyzmq's create_certificates
// writes for <name>.key. The result parses back to the same public key and
// metadata when c.Validate() returns nil.
func (c *Cert) MarshalPublic() []byte {
	return c.marshal(false, c.bannerTime())
}

// MarshalSecret returns c as a secret certificate file (public key, secret key
// and metadata), in the layout pyzmq writes for <name>.key_secret, or nil if c
// has no secret key. The result parses back to the same certificate when
// c.Validate() returns nil.
func (c *Cert) MarshalSecret() []byte {
	if c.Secret == nil {
		return nil
	}
	return c.marshal(true, c.bannerTime())
}

func (c *Cert) bannerTime() time.Time {
	if c.Generated.IsZero() {
		return time.Now()
	}
	return c.Generated
}

func (c *Cert) marshal(secret bool, t time.Time) []byte {
	var b bytes.Buffer
	b.Grow(512)
	fmt.Fprintf(&b, "#   ****  Generated on %s by dynfw-sentinel  ****\n", pythonTime(t))
	if secret {
		b.WriteString(secretBanner)
	} else {
		b.WriteString(publicBanner)
	}
	b.WriteString("\nmetadata\n")
	for _, p := range c.Metadata {
		q := `"`
		if strings.Contains(p.Value, `"`) {
			q = "'"
		}
		fmt.Fprintf(&b, "    %s = %s%s%s\n", p.Name, q, p.Value, q)
	}
	b.WriteString("curve\n")
	fmt.Fprintf(&b, "    public-key = \"%s\"\n", c.Public)
	if secret && c.Secret != nil {
		fmt.Fprintf(&b, "    secret-key = \"%s\"\n", *c.Secret)
	}
	return b.Bytes()
}

// pythonTime formats t as Python's str(datetime) does, which is what pyzmq
// puts in its banner: microseconds are shown only when they are not zero.
func pythonTime(t time.Time) string {
	s := t.Format("2006-01-02 15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}

// Parse reads a certificate in the zcert text format.
//
// It accepts what czmq and pyzmq write and what people plausibly write by
// hand: comment lines starting with # (after optional indentation), blank
// lines, CRLF line ends, a UTF-8 byte order mark, sections at column 0
// (metadata and curve; others are skipped), and properties indented by any
// spaces or tabs written name = "value", name = 'value', name="value" or
// name = value. A property line is split at its first '=', because the Z85
// alphabet contains '=' but a property name cannot.
//
// public-key is required under curve; secret-key is optional, and an all-zero
// one (czmq's placeholder for "none") counts as absent. Keys must be 40 Z85
// characters, a secret key must belong to the public key, each key may appear
// only once, and a key line at column 0 or before the first section is an
// error rather than silently ignored. Unknown properties under curve are
// ignored; metadata entries must satisfy the rules of Validate. Errors are
// *ParseError values naming the line. ErrTooLarge rejects input beyond
// MaxSize bytes (before any parsing), beyond MaxLines lines, or whose
// certificate would exceed MaxSize when written back.
func Parse(data []byte) (*Cert, error) {
	if len(data) > MaxSize {
		return nil, &ParseError{Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxSize)}
	}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	var p parser
	for n := 1; text != ""; n++ {
		if n > MaxLines {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("%w: more than %d lines", ErrTooLarge, MaxLines)}
		}
		var line string
		line, text, _ = strings.Cut(text, "\n")
		p.lineNo = n
		if err := p.line(strings.TrimSuffix(line, "\r")); err != nil {
			return nil, &ParseError{Line: n, Err: err}
		}
	}
	return p.finish()
}

type section int

const (
	sectionNone section = iota // before the first section header
	sectionOther
	sectionMetadata
	sectionCurve
)

type parser struct {
	cert       Cert
	section    section
	lineNo     int // line being handled, remembered for errors found by finish
	havePublic bool
	haveSecret bool
	secret     Key
	secretLine int
}

func isKeyName(name string) bool {
	return name == "public-key" || name == "secret-key"
}

func (p *parser) line(line string) error {
	body := strings.TrimLeft(line, " \t")
	if body == "" || body[0] == '#' {
		return nil
	}
	if len(body) == len(line) {
		return p.topLevel(line)
	}
	name, rawValue, hasValue := strings.Cut(body, "=")
	name = strings.TrimRight(name, " \t")
	switch p.section {
	case sectionOther:
		return nil
	case sectionNone:
		if isKeyName(name) {
			return fmt.Errorf("%s appears before any section; it belongs under curve", name)
		}
		return nil
	}
	if !hasValue {
		return fmt.Errorf("expected name = value, got %q", body)
	}
	if name == "" {
		return errors.New("property has no name before '='")
	}
	value, err := unquote(rawValue)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if p.section == sectionMetadata {
		if err := checkMetadata(name, value); err != nil {
			return fmt.Errorf("metadata %q: %w", name, err)
		}
		p.cert.Metadata = append(p.cert.Metadata, Property{Name: name, Value: value})
		return nil
	}
	// Only for keys: pyzmq writes metadata unquoted, so a metadata value may
	// legitimately end with a quote.
	if isKeyName(name) && (strings.HasSuffix(value, `"`) || strings.HasSuffix(value, "'")) {
		return fmt.Errorf("%s: missing opening %s", name, value[len(value)-1:])
	}
	switch name {
	case "public-key":
		if p.havePublic {
			return errors.New("public-key appears more than once")
		}
		k, err := ParseKey(value)
		if err != nil {
			return fmt.Errorf("public-key: %w", err)
		}
		p.cert.Public, p.havePublic = k, true
	case "secret-key":
		if p.haveSecret {
			return errors.New("secret-key appears more than once")
		}
		k, err := ParseKey(value)
		if err != nil {
			return fmt.Errorf("secret-key: %w", err)
		}
		p.secret, p.haveSecret, p.secretLine = k, true, p.lineNo
	}
	return nil
}

// topLevel handles a line at column 0: a section header, or a root-level
// property, which ZPL allows but a certificate has no use for.
func (p *parser) topLevel(line string) error {
	if name, _, ok := strings.Cut(line, "="); ok {
		if name = strings.TrimRight(name, " \t"); isKeyName(name) {
			return fmt.Errorf("%s must be indented under the curve section", name)
		}
		p.section = sectionOther
		return nil
	}
	name, _, _ := strings.Cut(line, "#")
	switch strings.TrimRight(name, " \t") {
	case "metadata":
		p.section = sectionMetadata
	case "curve":
		p.section = sectionCurve
	default:
		p.section = sectionOther
	}
	return nil
}

// unquote trims a property value and removes one pair of matching quotes.
// Z85 has no quote characters, so a quoted key can be followed by a comment
// without ambiguity; an unquoted value runs to the end of the line, because
// '#' is a Z85 character.
func unquote(raw string) (string, error) {
	v := strings.Trim(raw, " \t")
	if v == "" {
		return "", nil
	}
	if q := v[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(v[1:], q)
		if end < 0 {
			return "", fmt.Errorf("missing closing %c", q)
		}
		if rest := strings.TrimLeft(v[1+end+1:], " \t"); rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("unexpected %q after the closing quote", rest)
		}
		return v[1 : 1+end], nil
	}
	return v, nil
}

func (p *parser) finish() (*Cert, error) {
	if !p.havePublic {
		return nil, &ParseError{Err: ErrNoPublicKey}
	}
	if p.haveSecret && !p.secret.IsZero() {
		if PublicFromSecret(p.secret) != p.cert.Public {
			return nil, &ParseError{Line: p.secretLine, Err: ErrKeyMismatch}
		}
		s := p.secret
		p.cert.Secret = &s
	}
	c := p.cert
	// Metadata grows when written back (indentation, quotes), so a file
	// near MaxSize could give a certificate we cannot save; refuse it here
	// so that everything Parse returns passes Validate.
	if n := c.marshalledSize(); n > MaxSize {
		return nil, &ParseError{Err: fmt.Errorf("%w: %d bytes when written back, limit %d", ErrTooLarge, n, MaxSize)}
	}
	return &c, nil
}
