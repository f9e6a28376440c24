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
// pid in a pid file, by a shell command, or (exec mode) by restarting it as
// a child of the agent. A Target is used by the goroutine of Agent.Run (or
// Agent.Once) only.
type Target struct {
	cfg        ReloadConfig
	signal     syscall.Signal
	lastReload time.Time   // when the last reload was attempted; zero before
	deferred   bool        // a reload waits for min_interval to pass
	program    *program    // exec mode: the running program, nil when none
	exits      []time.Time // exec mode: unexpected exits in the last minute

	held *held // the process checked before the last install (see hold)

	// redact, if set, hides setting values in a command's whole output
	// before it is cut to an excerpt, so that a value spanning lines or
	// the cut is never half shown. The Agent sets it before each use.
	redact func(string) string
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

// Check runs the target's check command, if any, with the update installed.
func (t *Target) Check(ctx context.Context) error {
	if t.cfg.Check == "" {
		return nil
	}
	if _, err := runCommand(ctx, t.cfg.Check, t.cfg.Timeout.Duration, nil, t.redact); err != nil {
		return fmt.Errorf("check %q: %w", t.cfg.Check, err)
	}
	return nil
}

// CheckStaged runs the target's check_staged command, if any, on one
// staged file before anything is installed. The command finds the staged
// file in $SSECONFD_STAGED and the file it will replace in
// $SSECONFD_DESTINATION.
func (t *Target) CheckStaged(ctx context.Context, staged, dest string) error {
	if t.cfg.CheckStaged == "" {
		return nil
	}
	env := []string{"SSECONFD_STAGED=" + staged, "SSECONFD_DESTINATION=" + dest}
	if _, err := runCommand(ctx, t.cfg.CheckStaged, t.cfg.Timeout.Duration, env, t.redact); err != nil {
		return fmt.Errorf("check_staged %q on %s: %w", t.cfg.CheckStaged, dest, err)
	}
	return nil
}

// Reload signals the process in the pid file or runs the command, and
// says what it did: the pid signalled, or the command's exit status and an
// excerpt of its output (not redacted). An exec target is restarted by the
// Agent, not here. A refusal to signal wraps ErrRefused.
func (t *Target) Reload(ctx context.Context) (string, error) {
	if t.cfg.Exec != "" {
		return "", errors.New("exec target is restarted by the agent")
	}
	if t.cfg.Command != "" {
		out, err := runCommand(ctx, t.cfg.Command, t.cfg.Timeout.Duration, nil, t.redact)
		if err != nil {
			return "", fmt.Errorf("command %q: %w", t.cfg.Command, err)
		}
		return "exit status 0: " + out, nil
	}
	if did, sent, err := t.signalHeld(); sent {
		return did, err
	}
	t.hold() // nothing held, or it exited: check the pid file afresh
	if did, sent, err := t.signalHeld(); sent {
		return did, err
	}
	// No pidfds here, or the check failed (it says why below), or the
	// process exited just now.
	pid, err := t.confirmPID()
	if err != nil {
		return "", err
	}
	if err := syscall.Kill(pid, t.signal); err != nil {
		return "", fmt.Errorf("send %s to pid %d: %w", t.cfg.Signal, pid, err)
	}
	return fmt.Sprintf("sent %s to pid %d", t.cfg.Signal, pid), nil
}

// ErrRefused wraps every reason not to signal the pid in a pid file.
var ErrRefused = errors.New("refused to signal")

// confirmPID reads the pid file now and returns its pid only if it is a
// live process that can be the target: a pid Linux can have, not 0, not 1,
// not this agent or one of its threads, not a zombie, and named process_name when that is set
// (without it, not started after the pid file was written).
func (t *Target) confirmPID() (int, error) {
	pid, written, err := t.readPID()
	if err != nil {
		return 0, err
	}
	// kill(2) with a thread id signals the thread's whole process. The
	// pidfd path never gets here with one (pidfd_open refuses a thread).
	if isOwnThread(pid) {
		return 0, t.refuse("pid %d is a thread of this agent", pid)
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return 0, t.refuse("no process %d (stale pid file)", pid)
	}
	if err := t.checkProcess(pid, written); err != nil {
		return 0, err
	}
	return pid, nil
}

// isOwnThread reports whether pid is the id of one of this process's threads.
func isOwnThread(pid int) bool {
	_, err := os.Lstat("/proc/self/task/" + strconv.Itoa(pid))
	return err == nil
}

func (t *Target) refuse(format string, args ...any) error {
	return fmt.Errorf("%w: pid_file %s: %s", ErrRefused, t.cfg.PIDFile, fmt.Sprintf(format, args...))
}

// readPID reads the pid file: a pid Linux can have, not 0, not 1, not this
// agent. written is the file's modification time.
func (t *Target) readPID() (pid int, written time.Time, err error) {
	data, written, err := readPIDFile(t.cfg.PIDFile)
	if err != nil {
		return 0, written, t.refuse("%v", err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	switch {
	case err != nil:
		return 0, written, t.refuse("does not hold a pid (%d bytes)", len(data))
	case pid <= 1:
		return 0, written, t.refuse("pid %d is never a target", pid)
	case pid >= maxPID:
		return 0, written, t.refuse("%d is not a pid (Linux pids are below %d)", pid, maxPID)
	case pid == os.Getpid():
		return 0, written, t.refuse("pid %d is this agent", pid)
	}
	return pid, written, nil
}

// checkProcess refuses pid when it cannot be the target's program: a
// zombie, or not named process_name, or (without process_name) started
// after the pid file was written.
func (t *Target) checkProcess(pid int, written time.Time) error {
	if why := t.notTheTarget(pid, written); why != "" {
		return t.refuse("%s", why)
	}
	if want := t.cfg.ProcessName; want != "" {
		if got := processNames(pid); !contains(got, want) {
			return t.refuse("process %d is %s, not %q", pid, strings.Join(got, "/"), want)
		}
	}
	return nil
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
// kills the group after timeout, and returns an excerpt of its output. The
// error carries the exit status and that excerpt. A command that leaves a
// background process holding its output (sh -c 'sleep 600 &', a program
// that daemonizes) returns a second after the shell exits; the background
// process is left running.
func runCommand(ctx context.Context, command string, timeout time.Duration, env []string,
	redact func(string) string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &out, max: outputLimit}
	cmd.Stderr = cmd.Stdout

	err := cmd.Run()
	excerpt := outputExcerpt(out.Bytes(), out.Len() >= outputLimit, redact)
	if ctx.Err() == context.DeadlineExceeded {
		return excerpt, fmt.Errorf("timed out after %s, process group killed: %s", timeout, excerpt)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return excerpt, fmt.Errorf("%v: %s", exitErr, excerpt)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return excerpt, nil // it succeeded; only a background child kept the output open
	}
	return excerpt, err
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

// outputLimit is how much of a command's output is kept.
const outputLimit = 64 << 10

// outputExcerpt puts the last lines of a command's output on one line,
// after redact (if not nil) has seen the whole output. When the output was
// cut at outputLimit, its last, unfinished line is dropped.
func outputExcerpt(b []byte, cut bool, redact func(string) string) string {
	if i := bytes.LastIndexByte(b, '\n'); cut && i >= 0 {
		b = b[:i]
	}
	s := strings.ToValidUTF8(string(b), "?")
	if redact != nil {
		s = redact(s)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "no output"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
