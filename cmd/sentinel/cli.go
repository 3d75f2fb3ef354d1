package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dynfw/sentinel/internal/config"
)

// command is the option set and usage text of one subcommand. Every
// subcommand parses and explains itself the same way: --help or -h prints
// the usage to stdout and exits 0; a bad option or argument prints one
// line naming it, the synopsis and a pointer to --help to stderr and exits
// 2; a failure at run time prints one line and exits 1.
type command struct {
	name string // "sentinel run"
	// usage starts with the synopsis ("Usage: sentinel run [options]"),
	// which ends at the first blank line, then says what the command
	// does. after follows the list of options.
	usage, after string
	opts         *config.Options
}

func newCommand(name, usage string) *command {
	return &command{name: name, usage: usage, opts: config.New(name, "SENTINEL_")}
}

// printUsage writes the whole help.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, strings.TrimRight(c.usage, "\n")+"\n\nOptions:\n")
	c.opts.Usage(w)
	fmt.Fprint(w, c.after)
}

// parse applies the config file named by the option configName (none when
// ""), the environment and args. ok false means the command ends with code.
func (c *command) parse(args []string, configName, defaultFile string, stdout, stderr io.Writer) (code int, ok bool) {
	return parseOptions(c.name, c.usage, c.opts, c.printUsage, args, configName, defaultFile, stdout, stderr)
}

// usageError reports a bad invocation and returns 2.
func (c *command) usageError(stderr io.Writer, format string, a ...any) int {
	return usageError(stderr, c.name, c.usage, fmt.Errorf(format, a...))
}

// fail reports a failure at run time and returns 1.
func (c *command) fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", c.name, err)
	return 1
}

// parseOptions is command.parse for the commands whose options live
// elsewhere (run, view).
func parseOptions(name, usage string, opts *config.Options, printUsage func(io.Writer), args []string, configName, defaultFile string, stdout, stderr io.Writer) (int, bool) {
	err := opts.Parse(args, configName, defaultFile)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, config.ErrHelp):
		printUsage(stdout)
		return 0, false
	}
	return usageError(stderr, name, usage, err), false
}

// usageError writes "name: err", the synopsis of usage and a pointer to
// the help, and returns 2.
func usageError(stderr io.Writer, name, usage string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n\n%s\nRun '%s --help' for the options.\n", name, err, synopsis(usage), name)
	return 2
}

// synopsis is the first paragraph of a usage text.
func synopsis(usage string) string {
	s, _, _ := strings.Cut(strings.TrimLeft(usage, "\n"), "\n\n")
	return s
}

// splitSubcommand takes the subcommand of a command group (stats,
// passwords) from args: the first argument, among the options or not.
// ok false means the caller ends with code.
func splitSubcommand(c *command, args []string, configName, defaultFile string, stdout, stderr io.Writer) (sub string, rest []string, code int, ok bool) {
	c.opts.AllowArgs = true
	if code, ok := c.parse(args, configName, defaultFile, stdout, stderr); !ok {
		return "", nil, code, false
	}
	if len(c.opts.Args()) == 0 {
		return "", nil, c.usageError(stderr, "which command?"), false
	}
	return c.opts.Args()[0], c.opts.Args()[1:], 0, true
}
