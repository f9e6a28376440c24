// Command sseconfd keeps configuration files in step with a
// config-server-sse environment. Run "sseconfd -h" for the commands.
package main

import (
	"fmt"
	"os"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a runtime failure: server unreachable, render or install failed
	exitUsage   = 2 // bad flags or an invalid config file
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// defaultConfig is the -config default; "make install" sets it to the
// installed config with -ldflags "-X main.defaultConfig=...".
var defaultConfig = "/etc/sseconfd/sseconfd.toml"

const usage = `sseconfd keeps configuration files in step with a config-server-sse stream.

Usage:
  sseconfd run -config FILE        follow the stream and apply every update (the daemon)
  sseconfd once -config FILE       fetch the current settings, apply them, exit
  sseconfd render -template T -settings S.json [-env ENV]
                                   render one template to stdout
  sseconfd validate -config FILE   check the config and every template
  sseconfd version                 print version and build information

Run "sseconfd COMMAND -h" for a command's flags.
Signals (run): SIGTERM or SIGINT stop it; SIGHUP re-reads the config and templates.
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest)
	case "once":
		return cmdOnce(rest)
	case "render":
		return cmdRender(rest)
	case "validate":
		return cmdValidate(rest)
	case "version", "-version", "--version":
		return cmdVersion(rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "sseconfd: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}
