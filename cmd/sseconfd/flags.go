package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand's flag set with its help text.
type command struct {
	fs       *flag.FlagSet
	synopsis string // "sseconfd run [flags]"
	about    string // what it does, a few lines
}

func newCommand(name, synopsis, about string) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis, about: about}
	c.fs.SetOutput(io.Discard) // parse errors and -h are printed by parse
	return c
}

// parse parses args. -h prints the help to stdout and gives exitOK; a bad
// flag or a stray argument prints the error to stderr and gives exitUsage.
func (c *command) parse(args []string) (code int, ok bool) {
	err := c.fs.Parse(args)
	if err == nil && c.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", c.fs.Arg(0))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.help(os.Stdout)
		return exitOK, false
	case err != nil:
		fmt.Fprintf(os.Stderr, "sseconfd %s: %v\nRun \"sseconfd %s -h\" for its flags.\n",
			c.fs.Name(), err, c.fs.Name())
		return exitUsage, false
	}
	return exitOK, true
}

// help writes the usage, the description and every flag with its default.
func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.synopsis, c.about)
	var b strings.Builder
	c.fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n    \t%s", usage)
		if f.DefValue != "" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", b.String())
	}
	fmt.Fprint(w, "\nExit codes: 0 ok, 1 runtime failure, 2 usage or config error.\n")
}
