// Package config gives a command one set of options that can come from
// three places, in increasing precedence: a TOML file, environment variables
// and command-line flags. Each option has one long name used everywhere:
// `--batch-interval` on the command line, `batch-interval = "50ms"` in the
// file, DYNFW_BATCH_INTERVAL in the environment (with the prefix the command
// chooses). Short aliases (-s) exist on the command line only.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Options is a set of named options bound to variables.
type Options struct {
	fs        *flag.FlagSet
	envPrefix string
	order     []string
	aliases   map[string]string // alias -> long name
	lists     map[string]*listValue
	strLists  map[string]*stringList
	usage     map[string]string
	defaults  map[string]string
	setBy     map[string]string // long name -> "file", "env" or "flag"
	source    string            // what Parse is applying now
	sections  map[string]any    // table name -> pointer to decode it into
	// AllowArgs lets arguments come with the options (see Args):
	// before, after or between them ("block 192.0.2.1 --for 1h"), all
	// arguments after "--". Otherwise an argument is an error.
	AllowArgs bool
	args      []string
	// Lenient ignores the keys and tables of the config file that this
	// set does not know, for a command that reads only a few settings of
	// another command's file (`sentinel stats` reads the db of `sentinel
	// run`). The keys it knows are still checked.
	Lenient bool
}

// Section registers a TOML table of the config file ([name]) that is
// decoded into v, a pointer to a struct with toml tags. Sections hold
// structured settings (weights per event type, lists of tokens) that have
// no flag; unknown keys in them are an error.
func (o *Options) Section(name string, v any) {
	if o.sections == nil {
		o.sections = map[string]any{}
	}
	o.sections[name] = v
}

// tracked records where each option's value came from.
type tracked struct {
	flag.Value
	o    *Options
	name string
}

func (t tracked) Set(s string) error {
	if err := t.Value.Set(s); err != nil {
		return err
	}
	t.o.setBy[t.name] = t.o.source
	return nil
}

func (t tracked) IsBoolFlag() bool {
	b, ok := t.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// New returns an empty option set for a command. envPrefix is prepended
// to the upper-cased option names ("DYNFW_").
func New(command, envPrefix string) *Options {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Options{fs: fs, envPrefix: envPrefix, aliases: map[string]string{}, lists: map[string]*listValue{}, strLists: map[string]*stringList{},
		usage: map[string]string{}, defaults: map[string]string{}, setBy: map[string]string{}}
}

func (o *Options) add(v flag.Value, name string, aliases []string, usage string) {
	o.defaults[name] = v.String()
	v = tracked{Value: v, o: o, name: name}
	o.fs.Var(v, name, usage)
	for _, a := range aliases {
		o.fs.Var(v, a, usage)
		o.aliases[a] = name
	}
	o.order = append(o.order, name)
	o.usage[name] = usage
}

// String binds a string option.
func (o *Options) String(p *string, name string, aliases []string, def, usage string) {
	*p = def
	o.add((*stringValue)(p), name, aliases, usage)
}

// Int binds an integer option.
func (o *Options) Int(p *int, name string, aliases []string, def int, usage string) {
	*p = def
	o.add((*intValue)(p), name, aliases, usage)
}

// Bool binds a boolean option; on the command line it may stand alone.
func (o *Options) Bool(p *bool, name string, aliases []string, def bool, usage string) {
	*p = def
	o.add((*boolValue)(p), name, aliases, usage)
}

// Duration binds a duration option ("50ms", "1h").
func (o *Options) Duration(p *time.Duration, name string, aliases []string, def time.Duration, usage string) {
	*p = def
	o.add((*durationValue)(p), name, aliases, usage)
}

// Prefixes binds a repeatable list of CIDR prefixes (or addresses). In the
// file it is an array; in the environment a comma-separated list; on the
// command line the flag is repeated. A later source replaces the list of an
// earlier one rather than adding to it.
func (o *Options) Prefixes(p *[]netip.Prefix, name string, aliases []string, usage string) {
	lv := &listValue{p: p}
	o.lists[name] = lv
	o.add(lv, name, aliases, usage)
}

// Names returns the long names of all options, in registration order.
func (o *Options) Names() []string { return append([]string(nil), o.order...) }

// Strings binds a repeatable list of strings, with a default. In the file
// it is an array, in the environment a comma-separated list, on the command
// line the flag is repeated; a later source replaces an earlier one's list.
func (o *Options) Strings(p *[]string, name string, aliases []string, def []string, usage string) {
	*p = append([]string(nil), def...)
	lv := &stringList{p: p}
	o.strLists[name] = lv
	o.add(lv, name, aliases, usage)
}

// Set reports whether an option was given in the file, the environment or
// on the command line, and where.
func (o *Options) Set(name string) (bool, string) {
	s, ok := o.setBy[name]
	return ok, s
}

// ErrHelp is returned by Parse for -h and --help.
var ErrHelp = flag.ErrHelp

// Parse applies, in order, the TOML file named by the option configName
// (from the command line, or the environment; a missing file is an error
// only if it was named explicitly, defaultFile is tried quietly), the
// environment, and the command line.
func (o *Options) Parse(args []string, configName, defaultFile string) error {
	path, explicit := findConfig(args, configName), true
	if path == "" {
		path = os.Getenv(o.env(configName))
	}
	if path == "" {
		path, explicit = defaultFile, false
	}
	if path != "" {
		o.source = "file"
		if err := o.loadFile(path, configName, explicit); err != nil {
			return err
		}
	}
	o.source = "env"
	for _, name := range o.order {
		if name == configName {
			continue
		}
		if v, ok := os.LookupEnv(o.env(name)); ok {
			if lv, isList := o.listOf(name); isList {
				lv.reset()
				for _, item := range strings.Split(v, ",") {
					if item = strings.TrimSpace(item); item != "" {
						if err := lv.Set(item); err != nil {
							return fmt.Errorf("%s: %w", o.env(name), err)
						}
					}
				}
			} else if err := o.fs.Set(name, v); err != nil {
				return fmt.Errorf("%s: %w", o.env(name), err)
			}
			o.setBy[name] = "env"
		}
	}
	o.source = "flag"
	for _, lv := range o.lists {
		lv.resetOnNextSet = true
	}
	for _, lv := range o.strLists {
		lv.resetOnNextSet = true
	}
	o.args = nil
	for {
		if err := o.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ErrHelp
			}
			return flagError(err)
		}
		rest := o.fs.Args()
		if len(rest) == 0 {
			return nil
		}
		if !o.AllowArgs {
			return fmt.Errorf("unexpected argument %q", rest[0])
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			o.args = append(o.args, rest...)
			return nil
		}
		// The flag package stops at the first argument; go on after it.
		o.args = append(o.args, rest[0])
		args = rest[1:]
	}
}

// flagError rewrites the flag package's errors in the words of this
// package's usage: options are --long-names ("unknown option --bogus", not
// "flag provided but not defined: -bogus").
func flagError(err error) error {
	msg := err.Error()
	dashed := func(name string) string {
		name = strings.TrimLeft(name, "-")
		if len(name) == 1 {
			return "-" + name
		}
		return "--" + name
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown option %s", dashed(name))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("option %s needs a value", dashed(name))
	}
	// invalid value "x" for flag -port: "x" is not an integer
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if i := strings.Index(rest, " for flag -"); i >= 0 {
			name, why, _ := strings.Cut(rest[i+len(" for flag -"):], ": ")
			return fmt.Errorf("%s: %s", dashed(name), why)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if i := strings.Index(rest, " for -"); i >= 0 {
			name, why, _ := strings.Cut(rest[i+len(" for -"):], ": ")
			return fmt.Errorf("%s: %s", dashed(name), why)
		}
	}
	return err
}

// Args returns the arguments after the flags, for commands that set
// AllowArgs.
func (o *Options) Args() []string { return o.args }

func (o *Options) env(name string) string {
	return o.envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// findConfig returns the value of --config/-config in args, without
// parsing the rest.
func findConfig(args []string, name string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, pre := range []string{"--" + name, "-" + name} {
			if a == pre && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, pre+"="); ok {
				return v
			}
		}
	}
	return ""
}

func (o *Options) loadFile(path, configName string, explicit bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(o.sections) > 0 {
		var prims map[string]toml.Primitive
		md, err := toml.Decode(string(data), &prims)
		if err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		for name, target := range o.sections {
			prim, ok := prims[name]
			if !ok {
				continue
			}
			if err := md.PrimitiveDecode(prim, target); err != nil {
				return fmt.Errorf("config file %s: [%s]: %w", path, name, err)
			}
			delete(raw, name)
		}
		for _, key := range md.Undecoded() {
			if len(key) > 1 && !o.Lenient {
				if _, isSection := o.sections[key[0]]; isSection {
					return fmt.Errorf("config file %s: unknown option %q in [%s]", path, key.String(), key[0])
				}
			}
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if long, ok := o.aliases[k]; ok && len(k) > 1 {
			name = long
		}
		if o.fs.Lookup(name) == nil || name == configName || len(name) == 1 {
			if o.Lenient {
				continue
			}
			return fmt.Errorf("config file %s: unknown option %q", path, k)
		}
		set := func(v any) error {
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case int64:
				s = strconv.FormatInt(v, 10)
			case bool:
				s = strconv.FormatBool(v)
			case float64:
				s = strconv.FormatFloat(v, 'g', -1, 64)
			default:
				return fmt.Errorf("option %q: unsupported value %v", k, v)
			}
			return o.fs.Set(name, s)
		}
		if arr, isArr := raw[k].([]any); isArr {
			lv, isList := o.listOf(name)
			if !isList {
				return fmt.Errorf("config file %s: option %q takes one value, not a list", path, k)
			}
			lv.reset()
			for _, v := range arr {
				if err := set(v); err != nil {
					return fmt.Errorf("config file %s: %w", path, err)
				}
			}
		} else if err := set(raw[k]); err != nil {
			return fmt.Errorf("config file %s: option %q: %w", path, k, err)
		}
	}
	return nil
}

// Usage writes one line per option: flags, default and help.
func (o *Options) Usage(w io.Writer) {
	short := map[string][]string{}
	for a, n := range o.aliases {
		short[n] = append(short[n], a)
	}
	for _, name := range o.order {
		flags := "--" + name
		for _, a := range short[name] {
			flags = "-" + a + ", " + flags
		}
		def := o.defaults[name]
		line := fmt.Sprintf("  %-28s %s", flags, o.usage[name])
		if def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			line += " (default " + def + ")"
		}
		fmt.Fprintln(w, line)
	}
	if o.fs.Lookup("config") != nil {
		fmt.Fprintf(w, "\nEvery option can also be set in the config file (name = value) or the environment (%sNAME).\n", o.envPrefix)
	} else {
		fmt.Fprintf(w, "\nEvery option can also be set in the environment (%sNAME).\n", o.envPrefix)
	}
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not a boolean", s)
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 50ms or 1h)", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

// resettable is a list option.
type resettable interface {
	flag.Value
	reset()
}

func (o *Options) listOf(name string) (resettable, bool) {
	if lv, ok := o.lists[name]; ok {
		return lv, true
	}
	if lv, ok := o.strLists[name]; ok {
		return lv, true
	}
	return nil, false
}

type stringList struct {
	p              *[]string
	resetOnNextSet bool
}

func (v *stringList) reset() { *v.p = nil }

func (v *stringList) Set(s string) error {
	if v.resetOnNextSet {
		v.reset()
		v.resetOnNextSet = false
	}
	*v.p = append(*v.p, s)
	return nil
}

func (v *stringList) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return "[]"
	}
	return "[" + strings.Join(*v.p, ",") + "]"
}

type listValue struct {
	p              *[]netip.Prefix
	resetOnNextSet bool
}

func (v *listValue) reset() { *v.p = nil }

func (v *listValue) Set(s string) error {
	if v.resetOnNextSet {
		v.reset()
		v.resetOnNextSet = false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	*v.p = append(*v.p, p.Masked())
	return nil
}

func (v *listValue) String() string {
	if v.p == nil {
		return "[]"
	}
	parts := make([]string, len(*v.p))
	for i, p := range *v.p {
		parts[i] = p.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}
