package agent

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// held is a signal target's process, checked and held by a pidfd before
// the files of an update are renamed into place, so that the signal goes
// out at once after them, and only ever to the process that was checked:
// a pidfd keeps naming its process after the pid is reused, where kill(2)
// with a bare pid would reach whoever has the pid by then.
type held struct {
	pid   int
	pidfd int
}

// hold checks t's process as Reload would and keeps a pidfd to it for the
// next Reload. It holds nothing for command and exec targets, on a kernel
// without pidfds, or when the check fails: Reload then checks afresh.
func (t *Target) hold() {
	t.release()
	if t.cfg.Exec != "" || t.cfg.Command != "" {
		return
	}
	pid, pidfd, err := t.confirmPIDHeld()
	if err == nil {
		t.held = &held{pid: pid, pidfd: pidfd}
	}
}

// release closes the pidfd hold left unused.
func (t *Target) release() {
	if t.held != nil {
		unix.Close(t.held.pidfd)
		t.held = nil
	}
}

// signalHeld sends t's signal to the held process and reports whether it
// went; false (nothing sent) when nothing is held, the held process has
// exited since (even if not yet reaped: a zombie takes a signal and
// nobody gets it), or the pid file names another process now (the
// program was restarted, or started its successor, after the hold): for
// Reload to read the pid file again and check that process.
func (t *Target) signalHeld() (string, bool, error) {
	h := t.held
	if h == nil {
		return "", false, nil
	}
	t.held = nil
	defer unix.Close(h.pidfd)
	if pid, _, err := t.readPID(); err != nil || pid != h.pid || exited(h.pidfd) {
		return "", false, nil
	}
	err := unix.PidfdSendSignal(h.pidfd, t.signal, nil, 0)
	switch {
	case err == nil:
		return fmt.Sprintf("sent %s to pid %d", t.cfg.Signal, h.pid), true, nil
	case errors.Is(err, unix.ESRCH):
		return "", false, nil // exited (and perhaps restarted): read the pid file again
	}
	return "", true, fmt.Errorf("send %s to pid %d: %w", t.cfg.Signal, h.pid, err)
}

// confirmPIDHeld is confirmPID with the process held by a pidfd, opened
// before the checks: if the pid is reused after that, the checks see the
// new process and the pidfd still names the old one, which is gone, so
// nothing is ever signalled by mistake.
func (t *Target) confirmPIDHeld() (int, int, error) {
	pid, written, err := t.readPID()
	if err != nil {
		return 0, -1, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, -1, err // ESRCH, or no pidfds here: Reload decides
	}
	if err := t.checkProcess(pid, written); err != nil {
		unix.Close(pidfd)
		return 0, -1, err
	}
	return pid, pidfd, nil
}

// exited reports whether the process of pidfd has exited, reaped or not:
// a pidfd turns readable then.
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err != unix.EINTR {
			return err == nil && n > 0
		}
	}
}
