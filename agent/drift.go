package agent

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// driftDelay is how long the drift watcher gathers events before it asks
// for a restore: an editor's save is several events, one restore follows.
const driftDelay = 100 * time.Millisecond

// driftWatch watches the directories of the destinations whose template
// sets restore_drift. Its goroutine owns the fsnotify watcher and the
// timers; the restore itself runs in the Run goroutine, through Do.
type driftWatch struct {
	a     *Agent      // only for a.Do and, through it, a.restoreDrift
	log   *zap.Logger // a.log when started: a.log belongs to the Run goroutine
	w     *fsnotify.Watcher
	dests map[string]string // a watched path (destination or symlink target) → destination
	paths []string          // directories to watch, and in_place files
}

// watchDrift starts the drift watcher if any template sets restore_drift,
// and returns a function that stops it and waits for it to end.
func (a *Agent) watchDrift(ctx context.Context) (stop func()) {
	d := &driftWatch{a: a, log: a.log, dests: map[string]string{}}
	for _, tf := range a.templates {
		if tf.cfg.RestoreDrift && !a.opts.DryRun {
			d.add(tf.cfg.Destination, tf.cfg.InPlace)
		}
	}
	if len(d.dests) == 0 {
		return func() {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.log.Error("restore_drift is off: cannot watch destinations", zap.Error(err))
		return func() {}
	}
	d.w = w
	d.watchMissing()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
		w.Close()
	}
}

// add registers dest, and the file its symlink points to, for watching
// through their directories. An in_place file may be a mount point, whose
// writes its directory's watch never reports: it is watched itself too.
func (d *driftWatch) add(dest string, inPlace bool) {
	dest = filepath.Clean(dest)
	paths := []string{dest}
	if real, err := filepath.EvalSymlinks(dest); err == nil && real != dest {
		paths = append(paths, real)
	}
	for _, p := range paths {
		d.dests[p] = dest
		d.watch(filepath.Dir(p))
		if inPlace {
			d.watch(p)
		}
	}
}

// watchMissing adds a watch on each path not watched yet: at start, and
// again later for a path that did not exist or was replaced.
func (d *driftWatch) watchMissing() {
	watched := d.w.WatchList()
	for _, p := range d.paths {
		if slices.Contains(watched, p) {
			continue
		}
		if err := d.w.Add(p); err != nil {
			d.log.Debug("cannot watch for restore_drift yet", zap.String("path", p), zap.Error(err))
		}
	}
}

// run gathers the destinations touched by events for driftDelay, then has
// the Run goroutine compare them with what the agent installed. The agent's
// own writes come back as events too; the comparison finds nothing to do.
func (d *driftWatch) run(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	var delay *time.Timer
	var fire <-chan time.Time
	touched := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			if delay != nil {
				delay.Stop()
			}
			return
		case ev, ok := <-d.w.Events:
			if !ok {
				return
			}
			dest, ours := d.dests[ev.Name]
			if !ours {
				continue
			}
			touched[dest] = true
			if fire == nil {
				delay = time.NewTimer(driftDelay)
				fire = delay.C
			}
		case err, ok := <-d.w.Errors:
			if !ok {
				return
			}
			d.log.Warn("restore_drift watch error", zap.Error(err))
		case <-fire:
			fire = nil
			paths := slices.Sorted(maps.Keys(touched))
			clear(touched)
			d.a.Do(ctx, func() { d.a.restoreDrift(paths) })
		case <-retry.C:
			d.watchMissing()
		}
	}
}

func (d *driftWatch) watch(p string) {
	if !slices.Contains(d.paths, p) {
		d.paths = append(d.paths, p)
	}
}

// restoreDrift puts back the last applied version of each destination in
// paths that differs from it on disk, and warns for each. A restore
// reloads nothing: the program was last told to read this very content.
// It runs in the Run goroutine.
func (a *Agent) restoreDrift(paths []string) {
	var files []render.File
	for _, p := range paths {
		if f, ok := a.installed[p]; ok {
			f.Backup = false // the backup keeps the previous version, not the edit
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return
	}
	txn, err := render.Stage(files)
	if err != nil {
		a.log.Error("cannot restore drifted destination", zap.Strings("files", paths), zap.Error(err))
		return
	}
	defer txn.Abort()
	a.logNotices(txn)
	for _, p := range txn.Changed() {
		a.log.Warn("destination changed by someone else; restoring it", zap.String("file", p))
	}
	if err := txn.Commit(); err != nil {
		a.log.Error("cannot restore drifted destination", zap.Strings("files", paths), zap.Error(err))
	}
}
