package agent

import (
	"context"
	"errors"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// schedule holds the timers of Agent.Run: one for an update held back by
// [apply] wait_min / wait_max, one for the earliest reload deferred by a
// target's min_interval. Used by the Run goroutine only. A stopped timer's
// channel never delivers (Go 1.23 timers), so Run can select on both always.
type schedule struct {
	quiet     *time.Timer // fires when the held snapshot is due
	held      *Snapshot   // the newest snapshot not applied yet, nil when none
	heldSince time.Time   // when the first snapshot of this burst arrived
	reload    *time.Timer // fires when the earliest deferred reload is due
	failures  int         // applies of the held snapshot that failed in a row
}

func newSchedule() schedule {
	return schedule{quiet: stoppedTimer(), reload: stoppedTimer()}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// receive takes a snapshot from the stream and applies it at once or, with
// [apply] wait_min set, holds it until no newer one came for wait_min, but
// no longer than wait_max after the first of the burst. A newer snapshot
// replaces the held one: only the newest is applied.
func (a *Agent) receive(ctx context.Context, s Snapshot) {
	wait := a.cfg.Apply
	a.sched.failures = 0 // a new snapshot: a retry of an older one is moot
	if wait.WaitMin.Duration == 0 {
		a.sched.held = nil
		a.sched.quiet.Stop()
		a.applyAndRetry(ctx, s)
		return
	}
	s, _ = s.resolve() // held: no hurry
	now := time.Now()
	if a.sched.held == nil {
		a.sched.heldSince = now
	}
	a.sched.held = &s
	due := quietUntil(a.sched.heldSince, now, wait.WaitMin.Duration, wait.WaitMax.Duration)
	a.sched.quiet.Reset(due.Sub(now))
	a.log.Debug("update held", zap.String("hash", s.ShortHash()), zap.Duration("apply_in", due.Sub(now)))
}

// quietUntil is when a burst that began at first and whose newest update
// came at last is applied: wait after last, but at most limit after first.
func quietUntil(first, last time.Time, wait, limit time.Duration) time.Time {
	due := last.Add(wait)
	if end := first.Add(limit); end.Before(due) {
		return end
	}
	return due
}

// applyHeld applies the held snapshot, when its quiet time has come.
func (a *Agent) applyHeld(ctx context.Context) {
	s := a.sched.held
	a.sched.held = nil
	if s != nil {
		a.applyAndRetry(ctx, *s)
	}
}

// Delays before an update that failed is tried again: the first, doubled
// per failure in a row, up to the last, for at most retryLimit tries
// (about ten minutes in all). The limit bounds how often a bad update is
// installed for its check and rolled back: a program that rereads its
// files just then would read the bad version.
const (
	retryFirst = 5 * time.Second
	retryMax   = 5 * time.Minute
	retryLimit = 7
)

// applyAndRetry applies s and, if that failed, holds it to be tried again
// after a delay unless a newer snapshot comes first (see retryLimit). A failure can pass
// (a full disk, a check that needs a file not there yet), and the stream
// will not hand over the same settings again: equal hashes are dropped.
func (a *Agent) applyAndRetry(ctx context.Context, s Snapshot) {
	a.applyAndLog(ctx, s)
	s, _ = s.resolve() // computed by now
	if a.opts.DryRun || a.applied == s.Hash {
		a.sched.failures = 0
		return
	}
	if a.sched.failures >= retryLimit {
		a.log.Warn("update not tried again; waiting for new settings or SIGHUP", zap.String("hash", s.ShortHash()),
			zap.Int("tries", a.sched.failures+1))
		return
	}
	delay := min(retryFirst<<min(a.sched.failures, 10), retryMax)
	a.sched.failures++
	a.sched.held, a.sched.heldSince = &s, time.Now()
	a.sched.quiet.Reset(delay)
	a.log.Info("update will be tried again", zap.String("hash", s.ShortHash()), zap.Duration("retry_in", delay))
}

// reloadAll reloads each of targets once, or defers those whose last reload
// is closer than their min_interval; a deferred reload fires when the
// interval has passed (reloadDeferred). It returns the names of both.
// Failures are logged and are no error of the update.
func (a *Agent) reloadAll(ctx context.Context, targets []*Target) (reloaded, deferred, failed []string) {
	now := time.Now()
	for _, t := range targets {
		if !t.due(now) {
			t.deferred = true
			deferred = append(deferred, t.Name())
			continue
		}
		if a.reload(ctx, t) {
			reloaded = append(reloaded, t.Name())
		} else {
			failed = append(failed, t.Name())
		}
	}
	a.armReloadTimer()
	return reloaded, deferred, failed
}

// reloadDeferred fires every deferred reload that is due.
func (a *Agent) reloadDeferred(ctx context.Context) {
	now := time.Now()
	for _, t := range a.sortedTargets() {
		if !t.deferred || now.Before(t.lastReload.Add(t.cfg.MinInterval.Duration)) {
			continue
		}
		if a.reload(ctx, t) {
			a.log.Info("deferred reload done", zap.String("target", t.Name()))
		}
	}
	a.armReloadTimer()
}

// armReloadTimer sets the reload timer to the earliest deferred reload.
func (a *Agent) armReloadTimer() {
	var next time.Time
	armed := false // next may be the zero time: a target never reloaded is due at once
	for _, t := range a.targets {
		due := t.lastReload.Add(t.cfg.MinInterval.Duration)
		if t.deferred && (!armed || due.Before(next)) {
			next, armed = due, true
		}
	}
	a.sched.reload.Stop()
	if armed {
		a.sched.reload.Reset(max(time.Until(next), 0))
	}
}

// reload reloads t now and reports whether that worked; a failure is
// logged with setting values redacted.
func (a *Agent) reload(ctx context.Context, t *Target) bool {
	t.lastReload = time.Now()
	t.deferred = false
	var did string
	var err error
	switch {
	case t.cfg.Exec == "":
		did, err = t.Reload(ctx)
	case a.sup == nil:
		a.log.Warn("exec target not started: programs run only under Agent.Run", zap.String("target", t.Name()))
		return false
	default:
		did, err = "restarted its program", a.sup.restart(t)
	}
	if err == nil {
		a.status.reloadDone(t.Name(), nil)
		// Redacting walks every setting: only for a line that is written.
		if ce := a.log.Check(zap.DebugLevel, "reloaded"); ce != nil {
			ce.Write(zap.String("target", t.Name()), zap.String("result", render.Redact(did, a.settings)))
		}
		return true
	}
	msg := "reload failed"
	if errors.Is(err, ErrRefused) {
		msg = "reload refused"
	}
	err = errors.New(render.Redact(err.Error(), a.settings))
	a.status.reloadDone(t.Name(), err)
	a.log.Error(msg, zap.String("target", t.Name()), zap.Error(err))
	return false
}

// withStartTargets adds the targets to reload although none of their files
// changed: after the first successful apply those with reload_on_start,
// and, under Run, exec targets whose program is not running (at start,
// after a config reload added one, or after a failed restart).
func (a *Agent) withStartTargets(targets []*Target) []*Target {
	first := !a.started
	a.started = true
	for _, t := range a.sortedTargets() {
		start := first && t.cfg.ReloadOnStart || a.sup != nil && t.cfg.Exec != "" && t.program == nil
		if start && !t.deferred && !containsTarget(targets, t) {
			targets = append(targets, t)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Name() < targets[j].Name() })
	return targets
}

func containsTarget(list []*Target, t *Target) bool {
	for _, e := range list {
		if e == t {
			return true
		}
	}
	return false
}

// sortedTargets returns every target in name order.
func (a *Agent) sortedTargets() []*Target {
	out := make([]*Target, 0, len(a.targets))
	for _, t := range a.targets {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// due reports whether t may be reloaded at now: no reload of it waits,
// and its min_interval has passed since the last.
func (t *Target) due(now time.Time) bool {
	return !t.deferred && !now.Before(t.lastReload.Add(t.cfg.MinInterval.Duration))
}
