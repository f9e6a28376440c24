package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// spares returns the temporary files of app.conf in dir.
func spares(dir string) []string {
	found, _ := filepath.Glob(filepath.Join(dir, ".sseconfd.app.conf.*"))
	return found
}

// A daemon killed with SIGKILL leaves its spare temporary file; the next
// start removes it and nothing else (another destination's temporary
// file, a backup, other hidden files stay).
func TestKilledDaemonsSpareRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	config, dest := writeConfig(t, dir, url, "")
	killed := exec.Command(bin, "run", "-log-format", "json", "-config", config)
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	none := func() string { return "" }
	waitFor(t, "the file and its spare", func() bool {
		return fileIs(dest, "port=8080\n")() && len(spares(dir)) == 1
	}, none)
	left := spares(dir)[0]
	killed.Process.Kill()
	killed.Wait()
	if _, err := os.Stat(left); err != nil {
		t.Fatalf("the killed daemon's spare: %v", err)
	}
	others := []string{".sseconfd.other.conf.123", ".app.conf.sseconfd-backup",
		".sseconfd.app.conf", "notes.txt"}
	for _, name := range others {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	d := startDaemon(t, nil, "-config", config)
	waitFor(t, "the killed daemon's spare removed", func() bool {
		return len(spares(dir)) == 0 && countMsg(d.logs(), "removed stale temporary file") == 1
	}, d.logs)
	for _, name := range others {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != "keep" {
			t.Errorf("%s: %q, %v; want it left alone", name, b, err)
		}
	}
}

// "sseconfd once" and "sseconfd run -dry-run" keep no spare.
func TestOnceAndDryRunKeepNoSpare(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	config, dest := writeConfig(t, dir, url, "")
	if r := sseconfd(t, nil, "once", "-config", config); r.code != 0 {
		t.Fatalf("once: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if !fileIs(dest, "port=8080\n")() || len(spares(dir)) > 0 {
		t.Fatalf("after once: temporary files %q", spares(dir))
	}

	os.Remove(dest)
	d := startDaemon(t, nil, "-dry-run", "-config", config)
	waitFor(t, "the diff", func() bool { return d.stdout.String() != "" }, d.logs)
	if left := spares(dir); len(left) > 0 {
		t.Fatalf("run -dry-run: temporary files %q", left)
	}
}
