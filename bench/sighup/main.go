// Command sighup is the reload target of the benchmarks: it writes its pid
// to a pid file and, for every SIGHUP it receives, prints one line
//
//	<wall-clock UnixNano at receipt> <marker number found in -file, or -1>
//
// to stdout. Wall-clock time is used because the monotonic clocks of two Go
// processes are not comparable; the orchestrator stamps its POSTs the same
// way. Signals that arrive while the previous one is being handled may be
// merged by the kernel and the Go runtime, so the count is a lower bound.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// markerRE finds the marker in an agent-rendered line ("marker = m0000012")
// or in the floor's copy of the raw event ("marker":"m0000012").
var markerRE = regexp.MustCompile(`marker[" =:]*m(\d{7})`)

func main() {
	pidFile := flag.String("pidfile", "", "write the pid here (required)")
	file := flag.String("file", "", "file whose marker to report on each SIGHUP")
	flag.Parse()
	if *pidFile == "" {
		fmt.Fprintln(os.Stderr, "sighup: -pidfile is required")
		os.Exit(2)
	}

	hup := make(chan os.Signal, 64)
	signal.Notify(hup, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "sighup:", err)
		os.Exit(1)
	}

	out := bufio.NewWriter(os.Stdout)
	for {
		select {
		case <-hup:
			now := time.Now().UnixNano()
			fmt.Fprintf(out, "%d %d\n", now, marker(*file))
			out.Flush()
		case <-term:
			return
		}
	}
}

// marker returns the marker number in path, or -1.
func marker(path string) int {
	if path == "" {
		return -1
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	m := markerRE.FindSubmatch(data)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
