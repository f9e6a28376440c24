package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A process held before the install gets the signal; if it exits in
// between and another takes its place in the pid file, the new one gets
// it, and the held one (gone) none: the pidfd never reaches another.
func TestHeldProcessIsSignalled(t *testing.T) {
	dir := t.TempDir()
	first := exec.Command("sleep", "30")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := writeFile(t, dir, "app.pid", strconv.Itoa(first.Process.Pid))
	target, err := NewTarget(ReloadConfig{Name: "app", PIDFile: pidFile, Signal: "SIGHUP"})
	if err != nil {
		t.Fatal(err)
	}

	target.hold()
	if target.held == nil {
		t.Skip("skipped: no pidfd on this kernel (pidfd_open needs Linux 5.3)")
	}
	if _, err := target.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); !isSignal(err, syscall.SIGHUP) {
		t.Fatalf("held sleep ended with %v, want killed by SIGHUP", err)
	}

	// Held, then it exits and a new program writes its pid.
	third := startProcess(t, "sleep", "30")
	writeFile(t, dir, "app.pid", strconv.Itoa(third.Process.Pid))
	target.hold()
	if target.held == nil {
		t.Fatal("nothing held for a live process")
	}
	third.Process.Kill()
	third.Wait()
	fourth := exec.Command("sleep", "30")
	if err := fourth.Start(); err != nil {
		t.Fatal(err)
	}
	defer fourth.Process.Kill()
	time.Sleep(20 * time.Millisecond) // the pid file is written after the program starts
	writeFile(t, dir, "app.pid", strconv.Itoa(fourth.Process.Pid))
	if did, err := target.Reload(context.Background()); err != nil ||
		did != "sent SIGHUP to pid "+strconv.Itoa(fourth.Process.Pid) {
		t.Fatalf("Reload = %q, %v; want the new pid signalled", did, err)
	}
	if err := fourth.Wait(); !isSignal(err, syscall.SIGHUP) {
		t.Fatalf("new sleep ended with %v, want killed by SIGHUP", err)
	}
	if target.held != nil {
		t.Error("a pidfd is still held after Reload")
	}
}

func isSignal(err error, sig syscall.Signal) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// heldThenReplaced holds the process in a fresh pid file, lets replace
// run, and returns the target and the program now named by the pid file.
func heldThenReplaced(t *testing.T, replace func(old *exec.Cmd)) (*Target, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	old := startProcess(t, "sleep", "30")
	pidFile := writeFile(t, dir, "app.pid", strconv.Itoa(old.Process.Pid))
	target, err := NewTarget(ReloadConfig{Name: "app", PIDFile: pidFile, Signal: "SIGTERM"})
	if err != nil {
		t.Fatal(err)
	}
	target.hold()
	if target.held == nil {
		t.Skip("skipped: no pidfd on this kernel (pidfd_open needs Linux 5.3)")
	}
	replace(old)
	next := startProcess(t, "sleep", "30")
	writeFile(t, dir, "app.pid", strconv.Itoa(next.Process.Pid))
	return target, next
}

// The program is restarted between the hold and the signal, and its old
// process has exited but not yet been reaped by its parent: a pidfd
// signal to a zombie succeeds and reaches no one, so the new program,
// which may have read the files before the rename, kept its old config.
func TestHeldZombieIsNotSignalled(t *testing.T) {
	target, next := heldThenReplaced(t, func(old *exec.Cmd) {
		old.Process.Kill() // not waited for: a zombie
		eventually(t, 5*time.Second, func() string {
			if state, _, err := procStat(old.Process.Pid); err != nil || state != 'Z' {
				return "the old process is not yet a zombie"
			}
			return ""
		})
	})
	did, err := target.Reload(context.Background())
	if want := "sent SIGTERM to pid " + strconv.Itoa(next.Process.Pid); err != nil || did != want {
		t.Fatalf("Reload = %q, %v; want %q", did, err, want)
	}
	if err := next.Wait(); !isSignal(err, syscall.SIGTERM) {
		t.Fatalf("new program ended with %v, want killed by SIGTERM", err)
	}
}

// A program that starts its successor before it exits (nginx's binary
// upgrade, a re-exec) rewrites the pid file while the held process still
// runs: the signal must go to the process the pid file names when it is
// sent, as it did before processes were held.
func TestHeldProcessReplacedInPIDFile(t *testing.T) {
	var old *exec.Cmd
	target, next := heldThenReplaced(t, func(o *exec.Cmd) { old = o })
	did, err := target.Reload(context.Background())
	if want := "sent SIGTERM to pid " + strconv.Itoa(next.Process.Pid); err != nil || did != want {
		t.Fatalf("Reload = %q, %v; want %q", did, err, want)
	}
	if err := next.Wait(); !isSignal(err, syscall.SIGTERM) {
		t.Fatalf("new program ended with %v, want killed by SIGTERM", err)
	}
	if !alive(old.Process.Pid) {
		t.Error("the old process, no longer in the pid file, was signalled")
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// Updates that hold the process and then signal it, defer its reload
// (min_interval), change nothing, or fail their check leave no pidfd
// open.
func TestHoldsLeaveNoDescriptor(t *testing.T) {
	dir := t.TempDir()
	app := startProcess(t, "sleep", "60")
	pidFile := writeFile(t, dir, "app.pid", strconv.Itoa(app.Process.Pid))
	reload := func(name, extra string) string {
		return fmt.Sprintf("\n[[reload]]\nname = %q\nsignal = \"SIGWINCH\"\n"+
			"pid_file = %q\n%s\n", name, pidFile, extra)
	}
	text := baseConfig("http://127.0.0.1:1") +
		templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", "every") +
		templateBlock(t, dir, "b.conf", "b={{.Settings.b}}\n", "seldom") +
		templateBlock(t, dir, "c.conf", "c={{.Settings.c}}\n", "checked") +
		reload("every", "") + reload("seldom", `min_interval = "1h"`) +
		reload("checked", `check = "test -f `+filepath.Join(dir, "ok")+`"`)
	a, _ := newTestAgent(t, dir, text)
	apply := func(i int, checkPasses bool) {
		t.Helper()
		os.Remove(filepath.Join(dir, "ok"))
		if checkPasses {
			writeFile(t, dir, "ok", "")
		}
		snap, err := NewSnapshot(map[string]any{"a": int64(i / 2), "b": int64(i), "c": int64(i)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Apply(context.Background(), snap)
		if checkPasses != (err == nil) {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	apply(0, true)
	before := openFDs(t)
	for i := 1; i <= 60; i++ {
		apply(i, i%5 != 0)
	}
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors open after 60 updates, %d before", after, before)
	}
	if !alive(app.Process.Pid) {
		t.Error("the program died: a signal other than SIGWINCH reached it")
	}
}
