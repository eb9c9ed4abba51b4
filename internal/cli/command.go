// Package cli holds what the command-line tools (signerctl and
// signer-bench) share: one set of conventions for usage and flag errors,
// and the flags that build a verifying client.
//
// The conventions, for every command and subcommand:
//   - help, -h or --help prints the usage, with every flag, to stdout and
//     exits 0;
//   - an unknown flag, a bad flag value or a stray argument prints one line
//     to stderr and exits 2;
//   - flags are spelled with two dashes, as the READMEs spell them (the
//     flag package accepts one or two).
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitFail  = 1 // the command ran and failed
	ExitUsage = 2 // the command line was wrong
)

// Command is one command's usage and flags.
type Command struct {
	// Name is the whole command: "signerctl keys rotate".
	Name string
	// Args is the synopsis of its arguments before the flags ("METHOD"),
	// or "" when it takes none.
	Args string
	// Summary says what it does, in one line.
	Summary string
	// Flags are its flags; their usage text names a flag's value with a
	// `BACKQUOTED` word, as the flag package reads it.
	Flags *flag.FlagSet
}

// New returns a command with an empty flag set that reports nothing itself:
// Parse prints what the conventions say.
func New(name, args, summary string) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Command{Name: name, Args: args, Summary: summary, Flags: fs}
}

// IsHelp reports whether arg asks for help.
func IsHelp(arg string) bool {
	switch arg {
	case "help", "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

// Usage writes the command's usage: its synopsis, what it does, and every
// flag with its default.
func (c *Command) Usage(w io.Writer) {
	synopsis := c.Name
	if c.Args != "" {
		synopsis += " " + c.Args
	}
	var flags bytes.Buffer
	c.Flags.SetOutput(&flags)
	c.Flags.PrintDefaults()
	c.Flags.SetOutput(io.Discard)
	if flags.Len() > 0 {
		synopsis += " [flags]"
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, c.Summary)
	if flags.Len() == 0 {
		return
	}
	fmt.Fprint(w, "\nflags:\n")
	// PrintDefaults spells a flag "  -name"; the READMEs spell it "--name".
	for _, line := range strings.SplitAfter(flags.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			line = "  --" + rest
		}
		fmt.Fprint(w, line)
	}
}

// Parse parses args (what follows the command's own arguments) into the
// command's flags. If args ask for help, it writes the usage to stdout;
// if they are wrong, one line to stderr. ok is false when the command
// should stop, with exit as its exit status.
func (c *Command) Parse(args []string, stdout, stderr io.Writer) (exit int, ok bool) {
	if len(args) > 0 && IsHelp(args[0]) {
		c.Usage(stdout)
		return ExitOK, false
	}
	err := c.Flags.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.Usage(stdout)
		return ExitOK, false
	case err != nil:
		return c.UsageError(stderr, "%v", err), false
	case c.Flags.NArg() > 0:
		return c.UsageError(stderr, "unexpected argument %q", c.Flags.Arg(0)), false
	}
	return ExitOK, true
}

// UsageError writes one line to stderr, the command's name and the error
// and where the usage is, and returns ExitUsage.
func (c *Command) UsageError(stderr io.Writer, format string, a ...any) int {
	msg := strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", " ")
	fmt.Fprintf(stderr, "%s: %s (%s --help shows the usage)\n", c.Name, msg, c.Name)
	return ExitUsage
}

// ParseArg parses a command that takes one argument (Args names it) before
// its flags, and returns the argument.
func (c *Command) ParseArg(args []string, stdout, stderr io.Writer) (arg string, exit int, ok bool) {
	if len(args) == 0 || IsHelp(args[0]) || strings.HasPrefix(args[0], "-") {
		// No argument; the flags may still ask for help, or be wrong.
		if exit, ok := c.Parse(args, stdout, stderr); !ok {
			return "", exit, false
		}
		return "", c.UsageError(stderr, "%s is required before the flags", c.Args), false
	}
	exit, ok = c.Parse(args[1:], stdout, stderr)
	return args[0], exit, ok
}
