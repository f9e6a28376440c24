package agent

import (
	"errors"
	"io/fs"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// removeStale deletes temporary files a crashed agent left beside the
// destinations (and their symlink targets) and beside the cache. Only
// those of this agent's own files go: another agent may be writing to the
// same directory.
func (a *Agent) removeStale() {
	for _, d := range a.installDirs() {
		removed, err := render.RemoveStale(d.dir, d.names...)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cannot clean temporary files", zap.String("dir", d.dir), zap.Error(err))
		}
		for _, p := range removed {
			a.log.Info("removed stale temporary file", zap.String("file", p))
		}
	}
}

// installDir is a directory the agent writes temporary files in, with the
// base names of the files it writes there.
type installDir struct {
	dir   string
	names []string
}

// installDirs returns each directory the agent writes temporary files in.
func (a *Agent) installDirs() []installDir {
	var paths []string
	for _, tf := range a.templates {
		paths = append(paths, tf.cfg.Destination)
		if real, err := filepath.EvalSymlinks(tf.cfg.Destination); err == nil {
			paths = append(paths, real)
		}
	}
	if a.cfg.Cache.Path != "" {
		paths = append(paths, a.cfg.Cache.Path)
	}
	index := map[string]int{}
	var dirs []installDir
	for _, p := range paths {
		dir, name := filepath.Split(p)
		dir = filepath.Clean(dir)
		i, ok := index[dir]
		if !ok {
			i = len(dirs)
			index[dir] = i
			dirs = append(dirs, installDir{dir: dir})
		}
		dirs[i].names = append(dirs[i].names, name)
	}
	return dirs
}

// dropSpares removes the spare temporary files of the agent's own
// destinations (see render.PrepareSpares); another agent in the same
// program keeps its own.
func (a *Agent) dropSpares() {
	dests := make([]string, len(a.templates))
	for i, tf := range a.templates {
		dests[i] = tf.cfg.Destination
	}
	render.DropSpares(dests...)
}

// logNotices logs what an install did without failing: a drifted mode or
// owner fixed, a file written in place.
func (a *Agent) logNotices(txn *render.Txn) {
	for _, n := range txn.Notices() {
		a.log.Warn(n.Msg, zap.String("file", n.Path))
	}
}

// noteInstalled remembers the files of the last applied update whose
// templates set restore_drift, so that they can be put back; the content
// of the others is not kept. It runs in the Run goroutine.
func (a *Agent) noteInstalled(files []render.File) {
	installed := make(map[string]render.File)
	for _, tf := range a.templates { // those not rendered this time keep their file
		if f, ok := a.installed[tf.cfg.Destination]; ok && tf.cfg.RestoreDrift {
			installed[f.Path] = f
		}
	}
	for _, f := range files {
		if a.restoresDrift(f.Path) {
			installed[f.Path] = f
		}
	}
	a.installed = installed
}

// restoresDrift reports whether the template of destination dest sets
// restore_drift.
func (a *Agent) restoresDrift(dest string) bool {
	for _, tf := range a.templates {
		if tf.cfg.Destination == dest {
			return tf.cfg.RestoreDrift
		}
	}
	return false
}
