package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Target is a program to tell that its files changed: by a signal to the
// pid in a pid file, or by a shell command. A Target is used by the apply
// goroutine only.
type Target struct {
	cfg        ReloadConfig
	signal     syscall.Signal
	lastReload time.Time
}

// NewTarget checks cfg and returns its Target.
func NewTarget(cfg ReloadConfig) (*Target, error) {
	t := &Target{cfg: cfg}
	if cfg.Signal != "" {
		sig, err := ParseSignal(cfg.Signal)
		if err != nil {
			return nil, fmt.Errorf("reload %s: %w", cfg.Name, err)
		}
		t.signal = sig
	}
	return t, nil
}

// Name returns the target's name.
func (t *Target) Name() string { return t.cfg.Name }

// Check runs the target's check command, if any. staged maps each changed
// destination to its staged temporary file; the command sees the first as
// $SSECONFD_STAGED and all as $SSECONFD_STAGED_FILES (space separated).
func (t *Target) Check(ctx context.Context, env []string) error {
	if t.cfg.Check == "" {
		return nil
	}
	if err := runCommand(ctx, t.cfg.Check, t.cfg.Timeout.Duration, env); err != nil {
		return fmt.Errorf("check %q: %w", t.cfg.Check, err)
	}
	return nil
}

// Reload signals the process in the pid file or runs the command.
func (t *Target) Reload(ctx context.Context) error {
	t.lastReload = time.Now()
	if t.cfg.Command != "" {
		if err := runCommand(ctx, t.cfg.Command, t.cfg.Timeout.Duration, nil); err != nil {
			return fmt.Errorf("command %q: %w", t.cfg.Command, err)
		}
		return nil
	}
	pid, err := t.confirmPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, t.signal); err != nil {
		return fmt.Errorf("send %s to pid %d: %w", t.cfg.Signal, pid, err)
	}
	return nil
}

// ErrRefused wraps every reason not to signal the pid in a pid file.
var ErrRefused = errors.New("refused to signal")

// confirmPID reads the pid file now and returns its pid only if it is a
// live process that can be the target: not 0, not 1, not this agent, and
// named process_name when that is set.
func (t *Target) confirmPID() (int, error) {
	refuse := func(format string, args ...any) (int, error) {
		return 0, fmt.Errorf("%w: pid_file %s: %s", ErrRefused, t.cfg.PIDFile, fmt.Sprintf(format, args...))
	}
	data, err := os.ReadFile(t.cfg.PIDFile)
	if err != nil {
		return refuse("%v", err)
	}
	text := strings.TrimSpace(string(data))
	pid, err := strconv.Atoi(text)
	if err != nil {
		return refuse("does not hold a pid (%d bytes)", len(data))
	}
	switch {
	case pid <= 1:
		return refuse("pid %d is never a target", pid)
	case pid == os.Getpid():
		return refuse("pid %d is this agent", pid)
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return refuse("no process %d (stale pid file)", pid)
	}
	if want := t.cfg.ProcessName; want != "" {
		if got := processNames(pid); !contains(got, want) {
			return refuse("process %d is %s, not %q", pid, strings.Join(got, "/"), want)
		}
	}
	return pid, nil
}

// processNames returns the names /proc gives pid: comm and the
// executable's base name.
func processNames(pid int) []string {
	var names []string
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		names = append(names, strings.TrimSpace(string(comm)))
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		names = append(names, filepath.Base(strings.TrimSuffix(exe, " (deleted)")))
	}
	if len(names) == 0 {
		names = []string{"unknown"}
	}
	return names
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// runCommand runs command through /bin/sh -c in its own process group,
// kills the group after timeout, and returns an error with an excerpt of
// its output when it fails. A command that leaves a background process
// holding its output does not hold up the caller.
func runCommand(ctx context.Context, command string, timeout time.Duration, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &out, max: 4096}
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %s: %s", timeout, outputExcerpt(out.Bytes()))
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("%v: %s", exitErr, outputExcerpt(out.Bytes()))
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // it succeeded; only a background child kept the output open
	}
	return err
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// outputExcerpt puts the last lines of a command's output on one line.
func outputExcerpt(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if s == "" {
		return "no output"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
