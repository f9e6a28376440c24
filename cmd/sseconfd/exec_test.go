package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// stubbornProgram is an exec line for a shell program that writes its pid,
// and on SIGTERM writes "term" to a mark file and exits.
func stubbornProgram(dir string) (line, pidFile, mark string) {
	pidFile, mark = filepath.Join(dir, "program.pid"), filepath.Join(dir, "program.mark")
	line = fmt.Sprintf(`sh -c 'echo $$ > %s; trap "echo term > %s; exit 0" TERM; while :; do sleep 0.05; done'`,
		pidFile, mark)
	return line, pidFile, mark
}

// TestExecStopsWithDaemon runs an exec target under "sseconfd run" and
// stops the daemon with SIGTERM or SIGINT: the program gets SIGTERM,
// exits by itself, and the daemon exits 0 (checked by startDaemon).
func TestExecStopsWithDaemon(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
			line, pidFile, mark := stubbornProgram(dir)
			config, _ := writeConfig(t, dir, url,
				fmt.Sprintf("reload = \"app\"\n\n[[reload]]\nname = \"app\"\nexec = %q\n", line))
			d := startDaemon(t, nil, "-config", config)
			waitFor(t, "the program's pid file", func() bool { _, err := os.Stat(pidFile); return err == nil }, d.logs)
			b, _ := os.ReadFile(pidFile)
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file holds %q", b)
			}

			d.cmd.Process.Signal(sig)
			waitFor(t, "the program's SIGTERM mark", fileIs(mark, "term\n"), d.logs)
			waitFor(t, "the program to be gone", func() bool { return syscall.Kill(pid, 0) != nil }, d.logs)
		})
	}
}

// TestExecTooManyExitsStopsDaemon: a program that keeps exiting makes
// "sseconfd run" exit 1 and say why.
func TestExecTooManyExitsStopsDaemon(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	config, _ := writeConfig(t, dir, url, "reload = \"app\"\n\n[[reload]]\nname = \"app\"\n"+
		"exec = \"sh -c 'exit 3'\"\nmax_restarts = 1\n")
	r := sseconfd(t, nil, "run", "-log-format", "json", "-config", config)
	if r.code != 1 || !strings.Contains(r.stderr, "program exits too often") {
		t.Errorf("sseconfd run with a program that always exits: code %d, want 1 and \"program exits too often\"; stderr:\n%s",
			r.code, r.stderr)
	}
}
