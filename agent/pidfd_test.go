package agent

import (
	"context"
	"errors"
	"os/exec"
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
	if did, err := target.Reload(context.Background()); err != nil || did != "sent SIGHUP to pid "+strconv.Itoa(fourth.Process.Pid) {
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
