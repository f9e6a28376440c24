package agent

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// watchDebounce is how long the template watch waits after the last
// change before it reloads: an editor's save is several events.
const watchDebounce = 100 * time.Millisecond

// startWatch watches the templates in a child goroutine.
func (a *Agent) startWatch(ctx context.Context) *child {
	sources := make([]string, len(a.templates))
	for i, tf := range a.templates {
		sources[i] = tf.cfg.Source
	}
	log := a.log // read here: adopt may replace a.log while the watch runs
	return goChild(ctx, func(ctx context.Context) error {
		a.watchTemplates(ctx, log, sources)
		return nil
	})
}

// watchTemplates watches the directories of the template files, so that
// a save by rename is seen too, and watchDebounce after the last change to
// one of them asks Run to parse it again and render. The agent's own
// temporary files and every other file are ignored. The watcher and its
// timer belong to this goroutine. A watch that cannot start is logged and
// the agent goes on without it.
func (a *Agent) watchTemplates(ctx context.Context, log *zap.Logger, sources []string) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("template watch off", zap.Error(err))
		return
	}
	defer w.Close()
	set := newWatchSet(sources)
	for dir := range set.dirs {
		if err := w.Add(dir); err != nil {
			log.Warn("cannot watch template directory", zap.String("dir", dir), zap.Error(err))
		}
	}

	changed := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			for _, src := range set.sourcesFor(ev) {
				changed[src] = true
				timer.Reset(watchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("template watch error", zap.Error(err))
		case <-timer.C:
			paths := slices.Sorted(maps.Keys(changed))
			changed = map[string]bool{}
			a.Do(ctx, func() { a.reloadTemplates(ctx, paths) })
		}
	}
}

// watchSet says which template sources a file event may have changed.
type watchSet struct {
	dirs   map[string]bool     // directories to watch
	byPath map[string][]string // a source, or the file it resolves to → sources
	links  map[string][]string // a directory → its sources that are symlinks
}

// newWatchSet watches each source's directory and, for a symlinked source,
// also the directory of the file it points to. Any event in the directory
// of a symlinked source counts for it: Kubernetes updates a mounted
// ConfigMap by renaming a "..data" symlink, and no event names the file.
func newWatchSet(sources []string) *watchSet {
	w := &watchSet{dirs: map[string]bool{}, byPath: map[string][]string{}, links: map[string][]string{}}
	for _, src := range sources {
		src = filepath.Clean(src)
		w.add(src, src)
		if fi, err := os.Lstat(src); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		w.links[filepath.Dir(src)] = append(w.links[filepath.Dir(src)], src)
		if real, err := filepath.EvalSymlinks(src); err == nil {
			w.add(filepath.Clean(real), src)
		}
	}
	return w
}

func (w *watchSet) add(path, src string) {
	w.dirs[filepath.Dir(path)] = true
	w.byPath[path] = append(w.byPath[path], src)
}

// sourcesFor returns the sources ev may have changed; the agent's own
// temporary files never count.
func (w *watchSet) sourcesFor(ev fsnotify.Event) []string {
	if !isTemplateChange(ev) {
		return nil
	}
	name := filepath.Clean(ev.Name)
	return append(append([]string(nil), w.byPath[name]...), w.links[filepath.Dir(name)]...)
}

// isTemplateChange reports whether ev can change a template's content; the
// agent's own temporary files never count.
func isTemplateChange(ev fsnotify.Event) bool {
	if strings.HasPrefix(filepath.Base(ev.Name), render.TempPrefix) {
		return false
	}
	return ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) ||
		ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove)
}

// reloadTemplates parses the changed template files again and renders the
// last settings with them. A template that no longer parses (or is gone)
// is logged and its previous version stays in use, so its file is kept.
func (a *Agent) reloadTemplates(ctx context.Context, paths []string) {
	changed := map[string]bool{}
	for _, p := range paths {
		changed[p] = true
	}
	reloaded := 0
	for _, tf := range a.templates {
		if !changed[filepath.Clean(tf.cfg.Source)] {
			continue
		}
		// loadTemplate, not render.ParseFile: the [[template]]'s options
		// (missing_key) apply to the new text as to the old.
		fresh, err := loadTemplate(tf.cfg)
		if err != nil {
			a.log.Error("template not reloaded; keeping the previous version",
				zap.String("file", tf.cfg.Source), zap.Error(err))
			continue
		}
		tf.tmpl = fresh.tmpl
		reloaded++
		a.log.Info("template changed", zap.String("file", tf.cfg.Source))
	}
	if reloaded > 0 && a.last != nil {
		a.applyAndLog(ctx, *a.last)
	}
}
