package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExecRestartsOnChangeAndStops(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"x": 1})
	bin := buildProgram(t, "./agent/testdata/legacyapp")
	appFile := filepath.Join(dir, "a.conf")
	pidFile := filepath.Join(dir, "legacy.pid")
	records := filepath.Join(dir, "legacy.records")
	readRecords := func() []legacyRecord { return readLegacyRecords(records) }
	text := baseConfig(url) + templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
exec = "%s -file %s -pid-file %s -records %s"
kill_timeout = "5s"
`, bin, appFile, pidFile, records)
	a, logs := newTestAgent(t, dir, text)
	stop := runAgent(t, a)

	// Started after the first apply, so it reads the rendered file.
	eventually(t, 10*time.Second, lastRecordHas(readRecords, "start", "a=1"))
	first := readPID(t, pidFile)

	// A change restarts it: a new process reads the new content.
	post(t, cs, "dev", map[string]any{"x": 2})
	eventually(t, 10*time.Second, lastRecordHas(readRecords, "start", "a=2"))
	second := readPID(t, pidFile)
	if second == first {
		t.Fatalf("pid %d after the change, want a new process", second)
	}
	if alive(first) {
		t.Errorf("the first program (pid %d) still runs after its restart", first)
	}

	// Stopping the agent stops the program with SIGTERM: it removes its
	// pid file on SIGTERM, and could not on SIGKILL.
	stop()
	if alive(second) {
		t.Errorf("program %d still runs after Agent.Run returned", second)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file still there (%v): the program was not stopped by SIGTERM", err)
	}
	recs := readRecords()
	if len(recs) != 2 || sighups(recs) != 0 {
		t.Errorf("legacyapp records %+v, want exactly two starts and no SIGHUP", recs)
	}
	if n := len(logged(logs, "program exited")); n != 0 {
		t.Errorf("%d unexpected exits logged, want 0", n)
	}
}

func TestExecKillsAfterKillTimeout(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"x": 1})
	pidFile := filepath.Join(dir, "stubborn.pid")
	// Ignores SIGTERM, and so does the sleep it runs.
	text := baseConfig(url) + templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
exec = """sh -c 'trap "" TERM; echo $$ > %s; while :; do sleep 0.1; done'"""
kill_timeout = "300ms"
`, pidFile)
	a, logs := newTestAgent(t, dir, text)
	stop := runAgent(t, a)
	pid := readPID(t, pidFile)

	stop()
	if alive(pid) {
		t.Fatalf("program %d that ignores SIGTERM still runs after Agent.Run returned", pid)
	}
	if len(logged(logs, "program ignored SIGTERM, killing it")) != 1 {
		t.Errorf("the SIGKILL after kill_timeout was not logged")
	}
}

func TestExecTooManyExits(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"x": 1})
	text := baseConfig(url) + templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") + `
[[reload]]
name = "app"
exec = "sh -c 'exit 3'"
max_restarts = 2
`
	a, logs := newTestAgent(t, dir, text)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	select {
	case err := <-done:
		if !errors.Is(err, ErrTooManyExits) {
			t.Fatalf("Agent.Run = %v, want ErrTooManyExits", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Agent.Run still running 10s after a program that exits at once, max_restarts = 2")
	}
	if n := len(logged(logs, "program exited")); n != 3 {
		t.Errorf("%d exits logged, want 3 (max_restarts + 1)", n)
	}
	if n := len(logged(logs, "program started")); n != 3 {
		t.Errorf("%d starts logged, want 3", n)
	}
}

func TestExecConfigReloadReplacesProgram(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"x": 1})
	bin := buildProgram(t, "./agent/testdata/legacyapp")
	appFile := filepath.Join(dir, "a.conf")
	config := func(records string) string {
		return baseConfig(url) + templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
exec = "%s -file %s -pid-file %s -records %s"
`, bin, appFile, filepath.Join(dir, "legacy.pid"), filepath.Join(dir, records))
	}
	a, _ := newTestAgent(t, dir, config("first.records"))
	runAgent(t, a)
	firstRecords := func() []legacyRecord { return readLegacyRecords(filepath.Join(dir, "first.records")) }
	eventually(t, 10*time.Second, lastRecordHas(firstRecords, "start", "a=1"))
	first := readPID(t, filepath.Join(dir, "legacy.pid"))

	// A new exec line (as on SIGHUP): the old program stops, the new one starts.
	writeFile(t, dir, "sseconfd.toml", config("second.records"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.ReloadConfig(ctx, filepath.Join(dir, "sseconfd.toml")); err != nil {
		t.Fatalf("ReloadConfig: %v", err)
	}
	secondRecords := func() []legacyRecord { return readLegacyRecords(filepath.Join(dir, "second.records")) }
	eventually(t, 10*time.Second, lastRecordHas(secondRecords, "start", "a=1"))
	if alive(first) {
		t.Errorf("the program of the old config (pid %d) still runs", first)
	}
}
