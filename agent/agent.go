// Package agent follows a config-server-sse stream and keeps files in step
// with it: each settings snapshot is rendered through the configured
// templates, installed atomically, checked, and announced to the programs
// that read the files. Rendering and installing are left to package render.
//
// The package is also the SDK for the stream: Follow and Stream give a Go
// program the same reconnecting, validating client that the daemon uses.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// Options change how an Agent applies updates.
type Options struct {
	DryRun  bool      // render and report, write nothing, reload nothing
	DiffOut io.Writer // with DryRun: where each file's unified diff goes; nil: nowhere
	Version string    // reported by the sseconfd_build_info metric

	// Notify, if set, is told the agent's state in sd_notify(3) terms:
	// "READY=1" after the first apply (or the first apply from the cache),
	// "WATCHDOG=1" every WatchdogInterval/2 from Run's loop. It must not block.
	Notify           func(state string)
	WatchdogInterval time.Duration // 0: no watchdog

	// TuneGC lowers the process's GOGC to 25 while the newest settings
	// are over 1 MiB of JSON (see largeSettings), unless GOGC is set in
	// the environment. The sseconfd command sets it; a program embedding
	// the agent decides for itself.
	TuneGC bool
}

// Agent applies snapshots to the configured templates and reload targets.
// Its methods are called from one goroutine.
type Agent struct {
	cfg        *Config
	baseLog    *zap.Logger // as given to New; log adds the env
	log        *zap.Logger
	opts       Options
	templates  []*templateFile
	targets    map[string]*Target
	applied    string      // hash of the last snapshot applied, "" before the first
	last       *Snapshot   // the last snapshot received, to render again on request
	requests   chan func() // work for the Run goroutine, from Do
	status     *status     // health and metrics, shared with the stream and HTTP goroutines
	ready      bool        // READY=1 was sent
	keepSpares bool        // Run prepares spare temporary files (see render.PrepareSpares)
	stale      staleParts  // what Run must restart after a request changed the config
	stopStatus func()      // stops the status endpoint Run serves; Run's goroutine only

	installed map[string]render.File // destination → its last applied file, for restore_drift
	stopDrift func()                 // stops the restore_drift watcher

	settings map[string]any // of the last applied snapshot, to redact reload errors
	started  bool           // an apply succeeded: reload_on_start is done
	rejected bool           // the last apply failed: the next success says it recovered
	sched    schedule       // held updates and deferred reloads
	sup      *supervisor    // exec targets' programs; nil outside Run

	renderTime   time.Duration // of the last render, to choose serial or parallel
	lastReceived *Snapshot     // the last snapshot taken from the stream; see news
}

// templateFile is one [[template]] with its parsed source.
type templateFile struct {
	cfg  TemplateConfig
	tmpl *render.Template
	mode fs.FileMode
	uid  int
	gid  int

	// What the last successful apply installed from it, to tell when an
	// update cannot change it (see unaffected and drifted).
	sum  [sha256.Size]byte // of the content
	from renderInputs      // what rendered and installed it, besides the settings; zero before
}

// renderInputs is everything but the settings that decides a template's
// file: its parsed text (the watch swaps it when the file is edited), its
// [[template]] and the owner and mode resolved from it, and the env.
type renderInputs struct {
	tmpl     *render.Template
	cfg      TemplateConfig
	mode     fs.FileMode
	uid, gid int
	env      string
}

// inputs returns what renders and installs tf now.
func (a *Agent) inputs(tf *templateFile) renderInputs {
	return renderInputs{tmpl: tf.tmpl, cfg: tf.cfg, mode: tf.mode, uid: tf.uid, gid: tf.gid,
		env: a.cfg.Source.Env}
}

// New parses every template of cfg and prepares its reload targets. The
// error is a *ConfigError listing every template that does not parse.
// Load does the same from a config file, reporting the config's problems
// and the templates' together.
func New(cfg *Config, log *zap.Logger, opts Options) (*Agent, error) {
	templates, problems := loadTemplates(cfg)
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return newAgent(cfg, templates, log, opts)
}

func newAgent(cfg *Config, templates []*templateFile, log *zap.Logger, opts Options) (*Agent, error) {
	targets, errs := newTargets(cfg, nil)
	if len(errs) > 0 {
		return nil, &ConfigError{Problems: errs}
	}
	a := &Agent{cfg: cfg, baseLog: log, log: log.With(zap.String("env", cfg.Source.Env)), opts: opts,
		templates: templates, targets: targets, requests: make(chan func()), status: newStatus(opts.Version),
		sched: newSchedule()}
	a.status.setGrace(cfg.Status.Grace.Duration)
	return a, nil
}

// loadTemplates parses the source of every [[template]] of cfg that has
// one; each that fails is a Problem naming the template's file and line.
func loadTemplates(cfg *Config) ([]*templateFile, []error) {
	var out []*templateFile
	var problems []error
	for i, tc := range cfg.Templates {
		if tc.Source == "" {
			continue // reported by the config's validation
		}
		tf, err := loadTemplate(tc)
		if err != nil {
			problems = append(problems, templateProblem(cfg, i, err))
			continue
		}
		out = append(out, tf)
	}
	return out, problems
}

// newTargets builds the reload targets of cfg, keeping those of old whose
// config is unchanged, so that their state (last reload) carries over.
func newTargets(cfg *Config, old map[string]*Target) (map[string]*Target, []error) {
	targets := map[string]*Target{}
	var errs []error
	for _, rc := range cfg.Reloads {
		if t, ok := old[rc.Name]; ok && reflect.DeepEqual(t.cfg, rc) {
			targets[rc.Name] = t
			continue
		}
		t, err := NewTarget(rc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		targets[rc.Name] = t
	}
	return targets, errs
}

func loadTemplate(tc TemplateConfig) (*templateFile, error) {
	var opts []render.Option
	if tc.MissingKey == "zero" {
		opts = append(opts, render.MissingKeyZero())
	}
	tmpl, err := render.ParseFile(tc.Source, opts...)
	if err != nil {
		return nil, err
	}
	tf := &templateFile{cfg: tc, tmpl: tmpl}
	if tc.Mode != "" {
		tf.mode, _ = parseMode(tc.Mode) // validated by LoadConfig
	}
	tf.uid, _ = lookupUID(tc.User)
	tf.gid, _ = lookupGID(tc.Group)
	return tf, nil
}

// Result says what one apply did.
type Result struct {
	Hash     string
	Rendered []string // destinations rendered: the others' keys did not change
	Changed  []string // destinations whose content was replaced
	Reloaded []string // targets reloaded
	Deferred []string // targets whose reload waits for their min_interval
	Failed   []string // targets whose reload failed or was refused (logged; the files stay)
	Duration time.Duration
}

// Run follows the stream and applies every new snapshot until ctx is
// cancelled. It returns ctx's error, or an error when the stream gave up.
// Every goroutine it starts has ended when it returns.
//
// The stream is read in its own goroutine and hands snapshots over through
// a newest-wins slot, so the socket is drained while an update is applied;
// everything else (applying, timers, requests from Do) happens in the
// goroutine that called Run, which owns the Agent's state.
//
// Programs of exec targets are started after the first apply and stopped
// (SIGTERM, then SIGKILL after kill_timeout) before Run returns; Run
// returns an error wrapping ErrTooManyExits when one exits on its own more
// than max_restarts times in a minute.
func (a *Agent) Run(ctx context.Context) error {
	a.removeStale()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.stopDrift = a.watchDrift(ctx)
	defer func() { a.stopDrift() }()
	a.sup = newSupervisor(a.log)
	defer func() { a.sup.stopAll(a.targets); a.sup = nil }()
	a.keepSpares = true
	defer func() { a.keepSpares = false; a.dropSpares() }()

	if err := a.startStatus(); err != nil {
		return err
	}
	defer func() { a.stopStatus() }()

	pending := newLatest[Snapshot]()
	stream := a.startStream(ctx, pending)
	defer func() { stream.stop() }()
	watch := a.startWatch(ctx)
	defer func() { watch.stop() }()
	heartbeat := a.startHeartbeat()
	defer heartbeat.Stop()
	silence := time.NewTimer(silentEnvWarning)
	defer silence.Stop()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-stream.done:
			return err
		case <-pending.ready():
			if s, ok := pending.take(); ok && a.news(s) {
				a.status.countReceived()
				a.receive(ctx, s)
			}
		case <-a.sched.quiet.C:
			a.applyHeld(ctx)
		case <-a.sched.reload.C:
			a.reloadDeferred(ctx)
		case p := <-a.sup.exited:
			if err := a.sup.exitedOnItsOwn(p); err != nil {
				return err
			}
		case f := <-a.requests:
			f()
			stream, watch = a.restartStale(ctx, pending, stream, watch)
		case <-heartbeat.C:
			a.notify("WATCHDOG=1")
		case <-silence.C:
			a.warnIfSilent()
		}
	}
}

// Do runs f in the goroutine of Run, between updates, and waits for it.
// It reports false, without running f, when ctx ends first.
func (a *Agent) Do(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	select {
	case a.requests <- func() { f(); close(done) }:
	case <-ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Once fetches the current settings and applies them. A reload that
// failed or was refused is an error too (the files stay installed).
func (a *Agent) Once(ctx context.Context) (Result, error) {
	a.removeStale()
	stream := &Stream{Source: a.cfg.Source, Backoff: a.cfg.Backoff, Log: a.log, sized: a.sized()}
	snap, err := stream.Fetch(ctx)
	if err != nil {
		return Result{}, err
	}
	res, err := a.Apply(ctx, snap)
	if err == nil && len(res.Failed) > 0 {
		err = fmt.Errorf("files installed, but the reload of %s failed or was refused (see the log)",
			strings.Join(res.Failed, ", "))
	}
	return res, err
}

// news reports whether s, just taken from the stream, differs from the
// snapshot taken before it, and remembers it. A snapshot whose hash is
// still being computed (see decodeEventDeferred) is compared by its
// settings, which is cheaper than waiting for the hash.
func (a *Agent) news(s Snapshot) bool {
	prev := a.lastReceived
	a.lastReceived = &s
	switch {
	case prev == nil:
		return true
	case s.Hash != "" && prev.Hash != "":
		return s.Hash != prev.Hash
	}
	return !render.SameValue(s.Settings, prev.Settings)
}

// applyAndLog applies s and logs the outcome; errors never stop the agent.
func (a *Agent) applyAndLog(ctx context.Context, s Snapshot) {
	a.last = &s
	res, err := a.Apply(ctx, s)
	s.Hash = res.Hash // when it was deferred
	a.status.applyDone(s.Hash, res, err)
	if !a.ready {
		a.ready = true
		a.notify("READY=1")
	}
	if err != nil {
		a.log.Error("update rejected", zap.String("hash", s.ShortHash()), zap.String("origin", s.Origin),
			zap.Error(err))
		a.rejected = true
		return
	}
	if a.opts.DryRun {
		a.log.Info("dry run: nothing written", zap.String("hash", s.ShortHash()),
			zap.Strings("would_change", res.Changed))
		return
	}
	recovered := a.rejected
	a.rejected = false
	if len(res.Changed) == 0 && len(res.Reloaded) == 0 && !recovered {
		a.log.Debug("update changed nothing", zap.String("hash", s.ShortHash()))
		return
	}
	fields := []zap.Field{zap.String("hash", s.ShortHash()), zap.String("origin", s.Origin),
		zap.Strings("changed", res.Changed), zap.Strings("reloaded", res.Reloaded)}
	if len(res.Deferred) > 0 {
		fields = append(fields, zap.Strings("deferred", res.Deferred))
	}
	if recovered {
		fields = append(fields, zap.Bool("recovered", true)) // the last update was rejected
	}
	a.log.Info("update applied", append(fields, zap.Duration("duration", res.Duration))...)
}

// Apply renders with s every template it can change (see unaffected),
// installs the files that changed,
// runs the checks of the targets whose files changed, and reloads each of
// them once (or defers the reload, see min_interval). If rendering or a
// check_staged command fails nothing is installed; if a check fails every
// file of the update is put back and nothing is reloaded. After the first
// successful apply, targets with reload_on_start are reloaded even when
// nothing changed. Last, s is saved as the cache, if one is set. Errors
// never quote a value.
func (a *Agent) Apply(ctx context.Context, s Snapshot) (Result, error) {
	start := time.Now()
	res, err := a.apply(ctx, s)
	// A hash deferred by the stream was computed on its goroutine while
	// apply ran; it is needed only now.
	s, hashErr := s.resolve()
	res.Hash = s.Hash
	if err == nil && !a.opts.DryRun {
		a.applied = s.Hash
		// Once apply has returned, the rendered files it held can be
		// collected while the cache is written: at 100,000 keys the two
		// together set the agent's peak memory.
		if hashErr == nil {
			a.saveCache(s)
		}
	}
	res.Duration = time.Since(start)
	return res, err
}

// apply is Apply without the cache.
func (a *Agent) apply(ctx context.Context, s Snapshot) (Result, error) {
	var res Result
	redact := a.redactor(s.Settings)
	for _, t := range a.targets {
		t.redact = redact
	}

	files, rendered, unsure, err := a.renderAll(s)
	if err != nil {
		return res, err
	}
	for _, f := range files {
		res.Rendered = append(res.Rendered, f.Path)
	}
	if a.opts.DryRun {
		res.Changed, err = a.dryRun(files)
		return res, err
	}

	waitAhead, held := a.holdAhead(rendered, unsure)
	defer func() {
		waitAhead()
		for _, t := range held { // unused: the file did not change, the reload waits, or the update failed
			t.release()
		}
	}()
	txn, err := render.Stage(files)
	if drifted := waitAhead(); err == nil && len(drifted) > 0 {
		// Rare: someone changed a file this update would have left alone.
		// It is rendered and the update staged again, all in one.
		txn.Abort()
		var more []render.File
		if more, err = a.renderFiles(s, drifted); err != nil {
			return res, err
		}
		files, rendered = append(files, more...), append(rendered, drifted...)
		for _, f := range more {
			res.Rendered = append(res.Rendered, f.Path)
		}
		txn, err = render.Stage(files)
	}
	if err != nil {
		return res, err
	}
	defer txn.Abort()
	defer a.logNotices(txn)
	res.Changed = txn.Changed()
	var targets []*Target
	if len(res.Changed) > 0 {
		targets = a.affectedTargets(res.Changed)
		if err := a.install(ctx, txn, targets, s.Settings); err != nil {
			return Result{}, err
		}
	}

	a.settings = s.Settings
	targets = a.withStartTargets(targets)
	res.Reloaded, res.Deferred, res.Failed = a.reloadAll(ctx, targets)
	// After the signals: hashing what was rendered need not delay them.
	a.noteInstalled(files)
	a.noteRendered(rendered, files)
	if a.keepSpares {
		txn.PrepareSpares() // for the next update (see render.PrepareSpares)
	}
	return res, nil
}

// redactor hides the values of settings, and of the settings applied
// last, in a command's output: a deferred reload runs with the files of
// the one, a check with those of the other.
func (a *Agent) redactor(settings map[string]any) func(string) string {
	applied := a.settings
	return func(text string) string {
		text = render.Redact(text, settings)
		if applied != nil {
			text = render.Redact(text, applied)
		}
		return text
	}
}

// install runs the targets' staged checks, commits txn, and runs their
// checks; a failing check rolls the update back. Errors are redacted.
func (a *Agent) install(ctx context.Context, txn *render.Txn, targets []*Target,
	settings map[string]any) error {
	for _, t := range targets {
		if err := a.checkStaged(ctx, txn, t); err != nil {
			return fmt.Errorf("target %s: %s; update not installed", t.Name(), render.Redact(err.Error(), settings))
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	for _, t := range targets {
		if err := t.Check(ctx); err != nil {
			if rbErr := txn.Rollback(); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
			return fmt.Errorf("target %s: %s; update rolled back", t.Name(), render.Redact(err.Error(), settings))
		}
	}
	return nil
}

// checkStaged runs t's check_staged on each of its staged files.
func (a *Agent) checkStaged(ctx context.Context, txn *render.Txn, t *Target) error {
	for _, tf := range a.templates {
		if tf.cfg.Reload != t.Name() {
			continue
		}
		if staged := txn.StagedPath(tf.cfg.Destination); staged != "" {
			if err := t.CheckStaged(ctx, staged, tf.cfg.Destination); err != nil {
				return err
			}
		}
	}
	return nil
}

// saveCache writes s as the last-known-good snapshot, if a cache is set.
func (a *Agent) saveCache(s Snapshot) {
	if a.cfg.Cache.Path == "" || s.Origin == "cache" {
		return
	}
	if err := WriteCache(a.cfg.Cache.Path, a.cfg.Source.Env, s); err != nil {
		a.log.Warn("cannot save cache", zap.String("file", a.cfg.Cache.Path), zap.Error(err))
	}
}

// fromCache returns the cached snapshot when the server cannot be reached
// at start; a missing or corrupt cache is logged and ignored.
func (a *Agent) fromCache() (Snapshot, bool) {
	if a.cfg.Cache.Path == "" {
		return Snapshot{}, false
	}
	read := a.sizeCache()
	s, err := ReadCache(a.cfg.Cache.Path, a.cfg.Source.Env)
	read(err == nil)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cache ignored", zap.Error(err))
		}
		return Snapshot{}, false
	}
	a.log.Info("server unreachable, rendering from cache", zap.String("file", a.cfg.Cache.Path),
		zap.String("hash", s.ShortHash()), zap.Duration("age", time.Since(s.Time).Round(time.Second)))
	return s, true
}

// renderAll renders in memory every template that the update can change
// and returns their files, with the templates they came from; the first
// error, in template order, fails all. It also returns the templates
// skipped because no key they read changed (see unaffected): their
// destinations are still to be checked (see drifted).
func (a *Agent) renderAll(s Snapshot) (files []render.File, todo, unsure []*templateFile, err error) {
	for _, tf := range a.templates {
		if a.unaffected(tf, s) {
			unsure = append(unsure, tf)
		} else {
			todo = append(todo, tf)
		}
	}
	files, err = a.renderFiles(s, todo)
	return files, todo, unsure, err
}

// renderFiles renders todo with s. Templates render in parallel, one
// goroutine per core, when the last render took long enough to gain from
// it: text/template sorts a map's keys on every range, so ten templates
// over a large map take milliseconds on one core, while a single small one
// is done before another thread could wake up.
func (a *Agent) renderFiles(s Snapshot, todo []*templateFile) ([]render.File, error) {
	data := render.Data{Settings: s.Settings, Env: a.cfg.Source.Env}
	contents := make([][]byte, len(todo))
	errs := make([]error, len(todo))
	render1 := func(i int) { contents[i], errs[i] = todo[i].tmpl.Render(data) }
	start := time.Now()
	if a.renderTime < parallelRenderAbove {
		for i := range todo {
			render1(i)
		}
	} else {
		parallel(len(todo), render1)
	}
	if len(todo) > 0 {
		a.renderTime = time.Since(start)
	}

	files := make([]render.File, 0, len(todo))
	for i, tf := range todo {
		if errs[i] != nil {
			return nil, fmt.Errorf("render %s: %w", tf.cfg.Source, errs[i])
		}
		files = append(files, render.File{
			Path: tf.cfg.Destination, Content: contents[i], Mode: tf.mode,
			UID: tf.uid, GID: tf.gid, CreateDirs: tf.cfg.CreateDirs,
			Backup: tf.cfg.Backup, InPlace: tf.cfg.InPlace,
		})
	}
	return files, nil
}

// parallelRenderAbove is how long a render of the templates must have
// taken for the next one to be spread over the cores.
const parallelRenderAbove = time.Millisecond

// holdAhead checks and holds (see Target.hold), on another goroutine, the
// processes of the signal targets that the rendered templates may reload,
// while the main goroutine writes and fsyncs their files: the signals then
// follow the renames at once. Targets with a check or check_staged are
// left to Reload, after their command. The same goroutine then checks the
// destinations of the unsure templates (see drifted), a stat each that
// the fsync hides; with no target to hold they are checked here, before
// the files are staged. The returned function waits, and returns the
// unsure templates whose destination no longer holds their output.
func (a *Agent) holdAhead(rendered, unsure []*templateFile) (wait func() []*templateFile, held []*Target) {
	now := time.Now()
	for _, tf := range rendered {
		t := a.targets[tf.cfg.Reload]
		if t == nil || containsTarget(held, t) || !t.due(now) || t.cfg.Check != "" || t.cfg.CheckStaged != "" {
			continue
		}
		held = append(held, t)
	}
	if len(held) == 0 {
		drifted := a.drifted(unsure)
		return func() []*templateFile { return drifted }, nil
	}
	done := make(chan struct{})
	var drifted []*templateFile
	go func() {
		defer close(done)
		for _, t := range held {
			t.hold()
		}
		drifted = a.drifted(unsure)
	}()
	return func() []*templateFile { <-done; return drifted }, held
}

// unaffected reports whether s cannot change what tf renders: the last
// apply installed its output from the same template text, config and env
// (renderInputs), and s agrees with the settings of that apply on every
// key the template reads (render.Template.Keys). Whether the destination
// still holds that output is for drifted to say. A dry run renders
// everything, to show every file.
func (a *Agent) unaffected(tf *templateFile, s Snapshot) bool {
	if tf.from.tmpl == nil || a.opts.DryRun || tf.from != a.inputs(tf) {
		return false
	}
	keys, all := tf.tmpl.Keys()
	if all {
		return false
	}
	for _, k := range keys {
		was, had := a.settings[k]
		now, has := s.Settings[k]
		if had != has || !render.SameValue(was, now) {
			return false
		}
	}
	return true
}

// drifted returns the templates of unsure whose destination no longer
// holds what the agent installed from them, as its remembered stat says
// without reading it (render.Holds): an edited, replaced or removed file,
// or one whose stat is not trusted yet. They are rendered after all.
func (a *Agent) drifted(unsure []*templateFile) []*templateFile {
	var out []*templateFile
	for _, tf := range unsure {
		if !render.Holds(tf.cfg.Destination, tf.sum) {
			out = append(out, tf)
		}
	}
	return out
}

// noteRendered records what each rendered template installed, for drifted.
func (a *Agent) noteRendered(rendered []*templateFile, files []render.File) {
	for i, tf := range rendered {
		tf.sum, tf.from = sha256.Sum256(files[i].Content), a.inputs(tf)
	}
}

// parallel calls f(0) ... f(n-1) from up to GOMAXPROCS goroutines and
// returns when all calls have returned.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// affectedTargets returns, sorted by name, the targets of changed files.
func (a *Agent) affectedTargets(changed []string) []*Target {
	isChanged := map[string]bool{}
	for _, p := range changed {
		isChanged[p] = true
	}
	seen := map[string]bool{}
	var out []*Target
	for _, tf := range a.templates {
		name := tf.cfg.Reload
		if name == "" || seen[name] || !isChanged[tf.cfg.Destination] {
			continue
		}
		seen[name] = true
		out = append(out, a.targets[name])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
