// Command floor is the lowest-cost program that does the agent's job for
// the latency benchmark: it reads the event stream line by line and, for
// every data line, writes the raw payload to one file with write, fsync,
// rename and a directory fsync, then sends SIGHUP to the pid read once at
// start. It parses no JSON, renders nothing, compares nothing and logs
// nothing; its latency is what any agent on this machine must pay.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	url := flag.String("url", "", "event stream URL, e.g. http://127.0.0.1:8080/sse/bench (required)")
	dest := flag.String("dest", "", "file to write (required)")
	pidFile := flag.String("pidfile", "", "pid file of the process to send SIGHUP")
	flag.Parse()
	if err := run(*url, *dest, *pidFile); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(url, dest, pidFile string) error {
	pid, err := readPID(pidFile)
	if err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(dest))
	if err != nil {
		return err
	}
	defer dir.Close()

	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	temp := filepath.Join(filepath.Dir(dest), ".floor.tmp")
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return err
		}
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		if err := install(temp, dest, dir, bytes.TrimPrefix(data, []byte(" "))); err != nil {
			return err
		}
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGHUP)
		}
	}
}

// install writes data to temp, fsyncs it, renames it over dest and fsyncs
// the directory.
func install(temp, dest string, dir *os.File, data []byte) error {
	f, err := os.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(temp, dest); err != nil {
		return err
	}
	return dir.Sync()
}

func readPID(path string) (int, error) {
	if path == "" {
		return 0, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}
