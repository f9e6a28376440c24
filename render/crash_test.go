package render

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	crashFiles = 3
	crashSize  = 1 << 20
	crashKills = 200
)

// TestCrashConsistency kills a process that installs 1 MiB files in a loop
// with SIGKILL at random moments: after every kill each destination must
// be one complete version, and the next start must leave no temporary file.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: kills a helper process 200 times")
	}
	prog := buildCrashInstall(t)
	dir := t.TempDir()
	runCrash(t, prog, dir, "-clean")
	seedVersion(t, dir)

	var tempsLeft, mixed int
	for i := range crashKills {
		killAtRandom(t, prog, dir, time.Duration(rand.IntN(60))*time.Millisecond)
		if hasTemp(t, dir) {
			tempsLeft++
		}
		versions := map[string]bool{}
		for n := range crashFiles {
			v, err := checkComplete(filepath.Join(dir, fmt.Sprintf("dest%d.conf", n)))
			if err != nil {
				t.Fatalf("after kill %d: %v", i+1, err)
			}
			versions[v] = true
		}
		if len(versions) > 1 {
			mixed++
		}

		runCrash(t, prog, dir, "-clean")
		noTemps(t, dir)
		if t.Failed() {
			t.Fatalf("after kill %d and a restart, temporary files survived", i+1)
		}
	}
	t.Logf("%d kills: %d left temporary files (cleaned by the next start), %d left files of different versions, each complete",
		crashKills, tempsLeft, mixed)
}

// buildCrashInstall compiles testdata/crashinstall and returns its path.
func buildCrashInstall(t *testing.T) string {
	t.Helper()
	prog := filepath.Join(t.TempDir(), "crashinstall")
	cmd := exec.Command("go", "build", "-o", prog, "./testdata/crashinstall")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/crashinstall: %v\n%s", err, out)
	}
	return prog
}

// seedVersion installs a first complete version of every destination.
func seedVersion(t *testing.T, dir string) {
	t.Helper()
	content := bytes.Repeat([]byte("s"), crashSize)
	marker := fmt.Sprintf("version %020d\n", 0)
	copy(content, marker)
	copy(content[crashSize-len(marker):], marker)
	for n := range crashFiles {
		put(t, filepath.Join(dir, fmt.Sprintf("dest%d.conf", n)), string(content), 0o644)
	}
}

// runCrash runs the helper to completion.
func runCrash(t *testing.T, prog, dir string, args ...string) {
	t.Helper()
	out, err := exec.Command(prog, append([]string{"-dir", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("crashinstall %v: %v\n%s", args, err, out)
	}
}

// killAtRandom starts the installing helper, lets it run for about d after
// it is ready, and kills it with SIGKILL.
func killAtRandom(t *testing.T, prog, dir string, d time.Duration) {
	t.Helper()
	cmd := exec.Command(prog, "-dir", dir, "-files", fmt.Sprint(crashFiles), "-size", fmt.Sprint(crashSize))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Waiting for "ready" lets most kills land inside an install, not in
	// the start-up; a third of them are sent without waiting.
	if rand.IntN(3) > 0 {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("crashinstall said %q, not ready: %s", line, stderr.String())
		}
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("crashinstall ended before the kill: %v: %s", err, stderr.String())
	}
}

// checkComplete returns the version held by path, or an error unless its
// size is right and its first and last lines carry the same version.
func checkComplete(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(b) != crashSize {
		return "", fmt.Errorf("%s is torn: %d bytes, want %d", path, len(b), crashSize)
	}
	n := len(fmt.Sprintf("version %020d\n", 0))
	head, foot := string(b[:n]), string(b[len(b)-n:])
	if head != foot || !strings.HasPrefix(head, "version ") {
		return "", fmt.Errorf("%s is torn: starts with %q, ends with %q", path, head, foot)
	}
	return head, nil
}

// TestCheckCompleteFindsTornFiles proves the crash test's check can fail.
func TestCheckCompleteFindsTornFiles(t *testing.T) {
	dir := t.TempDir()
	whole := bytes.Repeat([]byte("x"), crashSize)
	copy(whole, fmt.Sprintf("version %020d\n", 1))
	copy(whole[crashSize-29:], fmt.Sprintf("version %020d\n", 1))
	mixed := bytes.Clone(whole)
	copy(mixed[crashSize-29:], fmt.Sprintf("version %020d\n", 2))

	tests := []struct {
		name    string
		content []byte
		wantErr bool
	}{
		{"complete", whole, false},
		{"short", whole[:crashSize/2], true},
		{"empty", nil, true},
		{"two versions", mixed, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			put(t, p, string(tc.content), 0o644)
			if _, err := checkComplete(p); (err != nil) != tc.wantErr {
				t.Errorf("checkComplete(%s) error = %v, wantErr %v", tc.name, err, tc.wantErr)
			}
		})
	}
}

func hasTemp(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if IsTemp(e.Name()) {
			return true
		}
	}
	return false
}
