package agent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfirmPIDHostileFiles feeds confirmPID pid files that must never
// lead to a signal. It only calls confirmPID (whose probe is signal 0):
// before the fix, "4294967295" passed every check and Reload would have
// sent kill(-1, SIGHUP), the signal to every process on the machine.
func TestConfirmPIDHostileFiles(t *testing.T) {
	dir := t.TempDir()
	sleep := startProcess(t, "sleep", "600")
	self := strconv.Itoa(os.Getpid())

	tests := []struct{ name, content, wantErr string }{
		{"wraps to -1 (every process)", "4294967295", "not a pid"},
		{"wraps to 1 (init)", "4294967297", "not a pid"},
		{"wraps to this agent", strconv.Itoa(1<<32 + os.Getpid()), "not a pid"},
		{"wraps to a live pid", strconv.Itoa(1<<32 + sleep.Process.Pid), "not a pid"},
		{"negative", "-" + self, "never a target"},
		{"minus one", "-1", "never a target"},
		{"hex", "0x10", "does not hold a pid"},
		{"two pids", strconv.Itoa(sleep.Process.Pid) + "\n" + self, "does not hold a pid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := writeFile(t, dir, "x.pid", tc.content)
			target := &Target{cfg: ReloadConfig{Name: "t", PIDFile: pidFile}}
			pid, err := target.confirmPID()
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("confirmPID() with %q = %d, %v; want ErrRefused containing %q", tc.content, pid, err, tc.wantErr)
			}
		})
	}

	t.Run("spaces around the pid", func(t *testing.T) {
		pidFile := writeFile(t, dir, "x.pid", "  "+strconv.Itoa(sleep.Process.Pid)+" \n")
		target := &Target{cfg: ReloadConfig{Name: "t", PIDFile: pidFile}}
		if pid, err := target.confirmPID(); err != nil || pid != sleep.Process.Pid {
			t.Fatalf("confirmPID() = %d, %v; want %d", pid, err, sleep.Process.Pid)
		}
	})
}

// TestReloadRefusesAZombie points the pid file at a child that exited
// but was not reaped: signalling it reloads nothing, so it must be
// refused, even with a matching process_name.
func TestReloadRefusesAZombie(t *testing.T) {
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	defer zombie.Wait()
	pid := zombie.Process.Pid
	eventually(t, 5*time.Second, func() string {
		if alive(pid) {
			return "true has not exited yet"
		}
		return ""
	})

	pidFile := writeFile(t, t.TempDir(), "true.pid", strconv.Itoa(pid))
	target, err := NewTarget(ReloadConfig{Name: "t", PIDFile: pidFile, Signal: "SIGHUP", ProcessName: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := target.Reload(context.Background()); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "exited") {
		t.Fatalf("Reload with the pid of a zombie = %v, want ErrRefused saying it exited", err)
	}
}

// TestReloadRefusesAStalePIDFileWithoutProcessName writes a pid file, then
// lets its pid belong to a program started later (a sleep, which SIGHUP
// kills). No process_name is set, so only the pid file's age can tell:
// a program writes its pid file after it starts, never before.
func TestReloadRefusesAStalePIDFileWithoutProcessName(t *testing.T) {
	sleep := startProcess(t, "sleep", "600")
	pidFile := writeFile(t, t.TempDir(), "app.pid", strconv.Itoa(sleep.Process.Pid))
	old := time.Now().Add(-time.Hour) // written by a program that died an hour ago
	if err := os.Chtimes(pidFile, old, old); err != nil {
		t.Fatal(err)
	}

	target, err := NewTarget(ReloadConfig{Name: "app", PIDFile: pidFile, Signal: "SIGHUP"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = target.Reload(context.Background())
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "after the pid file was written") {
		t.Errorf("Reload with a pid file older than its process = %v, want ErrRefused naming the stale pid file", err)
	}
	if !alive(sleep.Process.Pid) {
		t.Fatalf("sleep %d, which started after the pid file was written, was signalled", sleep.Process.Pid)
	}

	// Once the program rewrites its pid file, it is signalled.
	writeFile(t, filepath.Dir(pidFile), "app.pid", strconv.Itoa(sleep.Process.Pid))
	if _, err := target.Reload(context.Background()); err != nil {
		t.Fatalf("Reload after the pid file was rewritten: %v", err)
	}
}

// TestConfirmPIDOddFiles points pid_file at things that are not small
// regular files: a FIFO (reading it blocked the apply loop until a writer
// came, forever) and an endless device (read without limit, until memory
// ran out). Each must be refused at once.
func TestConfirmPIDOddFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "app.pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() {
			_, err := (&Target{cfg: ReloadConfig{Name: "t", PIDFile: path}}).confirmPID()
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("confirmPID with pid_file %s: %v, want ErrRefused saying it is not a regular file", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("confirmPID with pid_file %s still runs after 10s", path)
		}
	}
}

// A pid file naming one of the agent's own threads (a stale pid reused by
// a thread id: they share one number space) passed every check, and
// kill(2) with a thread id signals its whole process: the agent sent the
// reload signal to itself (SIGHUP: a config reload; SIGTERM: its exit).
func TestReloadRefusesAThreadOfTheAgent(t *testing.T) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	tid := 0
	for _, e := range tasks {
		if id, _ := strconv.Atoi(e.Name()); id != os.Getpid() {
			tid = id
			break
		}
	}
	if tid == 0 {
		t.Skip("skipped: this process has one thread")
	}
	pidFile := writeFile(t, t.TempDir(), "x.pid", strconv.Itoa(tid))
	// SIGWINCH: harmless to this test process should the check let it through.
	target, err := NewTarget(ReloadConfig{Name: "t", PIDFile: pidFile, Signal: "SIGWINCH"})
	if err != nil {
		t.Fatal(err)
	}
	if did, err := target.Reload(context.Background()); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "this agent") {
		t.Fatalf("Reload with a thread of the agent = %q, %v; want refused as this agent", did, err)
	}
}
