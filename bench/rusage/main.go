// Command rusage runs a program and writes its peak RSS and wall time as
// JSON to -out. It exists because Go starts children with vfork
// (CLONE_VM), and Linux then carries the parent's peak RSS into the
// child's ru_maxrss at exec: a child of the large benchmark orchestrator
// would report the orchestrator's peak. Started from this small program,
// a child's ru_maxrss is at most max(this program's peak, its own).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is what -out receives.
type usage struct {
	MaxRSSKiB  int64   `json:"max_rss_kib"`  // the child's ru_maxrss
	SelfHWMKiB int64   `json:"self_hwm_kib"` // this launcher's VmHWM: the floor of MaxRSSKiB
	WallMS     float64 `json:"wall_ms"`
	ExitCode   int     `json:"exit_code"`
}

func main() {
	out := flag.String("out", "", "write the usage JSON here (required)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rusage -out FILE PROGRAM [ARGS...]")
		os.Exit(2)
	}
	u, err := run(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(1)
	}
	data, _ := json.Marshal(u)
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(1)
	}
	os.Exit(u.ExitCode)
}

func run(args []string) (usage, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return usage{}, err
	}
	return usage{
		MaxRSSKiB:  cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, // KiB on Linux
		SelfHWMKiB: selfHWM(),
		WallMS:     float64(time.Since(start).Nanoseconds()) / 1e6,
		ExitCode:   cmd.ProcessState.ExitCode(),
	}, nil
}

func selfHWM() int64 {
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}
