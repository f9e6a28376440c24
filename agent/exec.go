package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// supervisor runs the programs of exec targets as children of the agent,
// each in its own process group. Its methods are called from the goroutine
// of Agent.Run; each child has one more goroutine that waits for it.
type supervisor struct {
	log    *zap.Logger
	exited chan *program  // a child that ended without being asked, for Run
	wg     sync.WaitGroup // one per child still being waited for
}

// program is one run of an exec target's program.
type program struct {
	target  *Target
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been waited for
	stopped chan struct{} // closed when the agent stops it on purpose
	err     error         // Wait's result; read only after done
}

func newSupervisor(log *zap.Logger) *supervisor {
	return &supervisor{log: log, exited: make(chan *program)}
}

// start runs t's program. Its stdout and stderr are the agent's.
func (s *supervisor) start(t *Target) error {
	cmd := exec.Command("/bin/sh", "-c", "exec "+t.cfg.Exec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %q: %w", t.cfg.Exec, err)
	}
	p := &program{target: t, cmd: cmd, done: make(chan struct{}), stopped: make(chan struct{})}
	t.program = p
	s.wg.Add(1)
	go s.wait(p)
	s.log.Info("program started", zap.String("target", t.Name()), zap.Int("pid", cmd.Process.Pid))
	return nil
}

// wait reaps p and hands it to Run unless the agent stopped it on purpose.
func (s *supervisor) wait(p *program) {
	defer s.wg.Done()
	p.err = p.cmd.Wait()
	close(p.done)
	select {
	case s.exited <- p:
	case <-p.stopped:
	}
}

// restart stops t's program, if running, and starts it again.
func (s *supervisor) restart(t *Target) error {
	if t.program != nil {
		s.stop(t.program)
	}
	return s.start(t)
}

// stop sends SIGTERM to p's process and waits kill_timeout for it to exit,
// then kills its process group. Whatever is left in the group after the
// process exited is killed too, so nothing of the program survives.
func (s *supervisor) stop(p *program) {
	close(p.stopped)
	p.target.program = nil
	pid := p.cmd.Process.Pid
	grace := p.target.cfg.KillTimeout.Duration

	p.cmd.Process.Signal(syscall.SIGTERM) // safe after exit: os.Process knows
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		s.log.Warn("program ignored SIGTERM, killing it", zap.String("target", p.target.Name()),
			zap.Int("pid", pid), zap.Duration("kill_timeout", grace))
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	syscall.Kill(-pid, syscall.SIGKILL) // helpers it left behind; ESRCH when none
	s.log.Info("program stopped", zap.String("target", p.target.Name()), zap.Int("pid", pid),
		zap.String("status", exitStatus(p.err)))
}

// stopDropped stops the programs of the targets in old that are not in
// current, after a config reload replaced or removed them.
func (s *supervisor) stopDropped(old, current map[string]*Target) {
	for name, t := range old {
		if t.program != nil && current[name] != t {
			s.stop(t.program)
		}
	}
}

// stopAll stops every running program and waits for every wait goroutine.
func (s *supervisor) stopAll(targets map[string]*Target) {
	for _, t := range targets {
		if t.program != nil {
			s.stop(t.program)
		}
	}
	s.wg.Wait()
}

// ErrTooManyExits is returned by Agent.Run when an exec target's program
// exited on its own more than max_restarts times within a minute.
var ErrTooManyExits = errors.New("program exits too often")

// exitedOnItsOwn records an exit the agent did not ask for and starts the
// program again, or returns ErrTooManyExits once there were more than
// max_restarts of them in the last minute.
func (s *supervisor) exitedOnItsOwn(p *program) error {
	t := p.target
	if t.program != p {
		return nil // already replaced
	}
	t.program = nil
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // helpers it left behind; ESRCH when none
	now := time.Now()
	t.exits = append(recent(t.exits, now.Add(-time.Minute)), now)
	s.log.Warn("program exited", zap.String("target", t.Name()), zap.Int("pid", p.cmd.Process.Pid),
		zap.String("status", exitStatus(p.err)), zap.Int("exits_last_minute", len(t.exits)))

	if max := *t.cfg.MaxRestarts; len(t.exits) > max {
		return fmt.Errorf("target %s: %w: %d exits within a minute, max_restarts is %d",
			t.Name(), ErrTooManyExits, len(t.exits), max)
	}
	if err := s.start(t); err != nil {
		s.log.Error("cannot restart program", zap.String("target", t.Name()), zap.Error(err))
	}
	return nil
}

// recent drops the times before since.
func recent(times []time.Time, since time.Time) []time.Time {
	keep := times[:0]
	for _, at := range times {
		if at.After(since) {
			keep = append(keep, at)
		}
	}
	return keep
}

// exitStatus describes Wait's result: "exit status 0", "signal: killed".
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Error()
	}
	return err.Error()
}
