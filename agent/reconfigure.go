package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Load reads the config file at path, validates it and parses every
// template it names. The error is a *ConfigError listing every problem of
// the config and of the templates at once, sorted by file and line; the
// daemon refuses to start (or to take a new config on SIGHUP) on any.
func Load(path string, log *zap.Logger, opts Options) (*Agent, error) {
	cfg, templates, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	return newAgent(cfg, templates, log, opts)
}

// loadFile is Load without building the Agent.
func loadFile(path string) (*Config, []*templateFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &ConfigError{Problems: []error{readProblem(path, err)}}
	}
	cfg, problems := parseConfig(path, data)
	if cfg == nil {
		return nil, nil, &ConfigError{Problems: problems}
	}
	templates, tproblems := loadTemplates(cfg)
	if problems = append(problems, tproblems...); len(problems) > 0 {
		sortProblems(problems)
		return nil, nil, &ConfigError{Problems: problems}
	}
	return cfg, templates, nil
}

// ReloadConfig re-reads the config file at path and its templates, as on
// SIGHUP. If they do not validate, the error (a *ConfigError) lists every
// problem and the agent goes on with its current config. Otherwise the new
// config takes effect in Run's goroutine: the files are rendered again at
// once from the last settings received, the stream reconnects only if
// [source] or [backoff] changed, and the template watch follows the new
// templates and the status endpoint its listen address.
// It returns the new config, which the caller must not change.
func (a *Agent) ReloadConfig(ctx context.Context, path string) (*Config, error) {
	cfg, templates, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	if _, errs := newTargets(cfg, nil); len(errs) > 0 {
		return nil, &ConfigError{Problems: errs}
	}
	if !a.Do(ctx, func() { a.adopt(ctx, cfg, templates) }) {
		return nil, ctx.Err()
	}
	return cfg, nil
}

// Config returns the config the agent was built with. Call it before Run
// (Run's goroutine owns it afterwards); the caller must not change it.
func (a *Agent) Config() *Config { return a.cfg }

// adopt takes cfg and its templates, which loadFile checked. Targets
// whose config is unchanged are kept with their state.
func (a *Agent) adopt(ctx context.Context, cfg *Config, templates []*templateFile) {
	old := a.cfg
	a.dropSpares() // a destination may have gone
	a.cfg, a.templates = cfg, templates
	oldTargets := a.targets
	a.targets, _ = newTargets(cfg, a.targets) // checked by ReloadConfig
	if a.sup != nil {
		a.sup.stopDropped(oldTargets, a.targets) // new ones start at the next apply
	}
	a.log = a.baseLog.With(zap.String("env", cfg.Source.Env))
	a.status.setGrace(cfg.Status.Grace.Duration)
	a.stale.stream = !reflect.DeepEqual(old.Source, cfg.Source) || !reflect.DeepEqual(old.Backoff, cfg.Backoff)
	a.stale.watch = true
	a.stale.status = old.Status.Listen != cfg.Status.Listen
	if old.Source.Env != cfg.Source.Env {
		a.last = nil // those settings belong to the old env
	}
	a.log.Info("config reloaded", zap.String("file", cfg.path), zap.Int("templates", len(templates)),
		zap.Bool("reconnect", a.stale.stream))
	if a.last != nil {
		since := time.Now()
		a.applyAndLog(ctx, *a.last)
		a.reloadChangedTargets(ctx, oldTargets, since)
	}
}

// reloadChangedTargets reloads once every signal or command target whose
// [[reload]] changed and that was not reloaded since, once files have been
// applied: after a reload was refused (a wrong pid_file or process_name),
// fixing the config and sending SIGHUP must reach the program, although
// its files are already current. min_interval still applies.
func (a *Agent) reloadChangedTargets(ctx context.Context, old map[string]*Target, since time.Time) {
	if a.applied == "" || a.opts.DryRun {
		return
	}
	var changed []*Target
	for _, t := range a.sortedTargets() {
		if old[t.Name()] != t && t.cfg.Exec == "" && t.lastReload.Before(since) && !t.deferred {
			changed = append(changed, t)
		}
	}
	if len(changed) == 0 {
		return
	}
	reloaded, deferred, _ := a.reloadAll(ctx, changed) // failures are logged by reload
	if len(reloaded)+len(deferred) > 0 {
		a.log.Info("reloaded targets whose config changed", zap.Strings("reloaded", reloaded),
			zap.Strings("deferred", deferred))
	}
}

// staleParts says which of Run's helpers must restart after adopt.
type staleParts struct {
	status bool // status.listen changed
	stream bool // [source] or [backoff] changed
	watch  bool // the templates may have changed
}

// child is a goroutine that Run started and stops before returning.
type child struct {
	cancel context.CancelFunc
	done   chan error    // its result, once; Run selects on the stream's
	ended  chan struct{} // closed when it has returned
}

func goChild(ctx context.Context, f func(context.Context) error) *child {
	ctx, cancel := context.WithCancel(ctx)
	c := &child{cancel: cancel, done: make(chan error, 1), ended: make(chan struct{})}
	go func() {
		c.done <- f(ctx)
		close(c.ended)
	}()
	return c
}

// stop cancels the goroutine and waits until it has returned.
func (c *child) stop() {
	c.cancel()
	<-c.ended
}

// startStream follows the configured source in a child goroutine, handing
// snapshots to pending.
func (a *Agent) startStream(ctx context.Context, pending *latest[Snapshot]) *child {
	stream := &Stream{Source: a.cfg.Source, Backoff: a.cfg.Backoff, Log: a.log,
		Fallback: a.fromCache, Events: a.status.streamEvent, sized: a.sized()}
	a.lastReceived = nil // a new source: its first snapshot is news
	return goChild(ctx, func(ctx context.Context) error {
		return stream.runInto(ctx, pending)
	})
}

// restartStale restarts the stream and the template watch when the last
// request (a config reload) made them stale.
func (a *Agent) restartStale(ctx context.Context, pending *latest[Snapshot], stream,
	watch *child) (*child, *child) {
	if a.stale.stream {
		a.stale.stream = false
		stream.stop()
		pending.take() // from the old source; the new one sends the current settings
		a.status.streamEvent(StreamEvent{Err: errors.New("reconnecting after a config reload")})
		stream = a.startStream(ctx, pending)
	}
	if a.stale.status {
		a.stale.status = false
		a.moveStatus()
	}
	if a.stale.watch {
		a.stale.watch = false
		watch.stop()
		watch = a.startWatch(ctx)
		a.stopDrift()
		a.stopDrift = a.watchDrift(ctx)
	}
	return stream, watch
}

// startStatus serves /healthz and /metrics when status.listen is set;
// a.stopStatus stops it.
func (a *Agent) startStatus() error {
	a.status.starting()
	a.stopStatus = func() {}
	if a.cfg.Status.Listen == "" {
		return nil
	}
	stop, err := a.status.serve(a.cfg.Status.Listen, a.log)
	if err != nil {
		return err
	}
	a.stopStatus = stop
	return nil
}

// moveStatus serves the status endpoint on the new status.listen. The old
// one stops first, since the new address may be the same port on another
// interface; if the new one cannot listen the endpoint is off until the
// next config reload or restart, and the error says so.
func (a *Agent) moveStatus() {
	a.stopStatus()
	a.stopStatus = func() {}
	if a.cfg.Status.Listen == "" {
		a.log.Info("status endpoint off")
		return
	}
	stop, err := a.status.serve(a.cfg.Status.Listen, a.log)
	if err != nil {
		a.log.Error("status endpoint off: cannot listen on the new address", zap.Error(err))
		return
	}
	a.stopStatus = stop
}

// startHeartbeat returns a ticker for the watchdog, or one that never
// fires when there is none.
func (a *Agent) startHeartbeat() *time.Ticker {
	if a.opts.WatchdogInterval <= 0 || a.opts.Notify == nil {
		t := time.NewTicker(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTicker(a.opts.WatchdogInterval / 2)
}

// silentEnvWarning is how long after the start Run waits for a first
// snapshot before warnIfSilent explains the silence.
const silentEnvWarning = 10 * time.Second

// warnIfSilent warns when the stream is connected but no settings came:
// the server keeps the stream of an environment it does not know open and
// silent, so a misspelt env looks like a healthy, idle agent.
func (a *Agent) warnIfSilent() {
	if a.last != nil || !a.status.isConnected() {
		return
	}
	a.log.Warn("connected, but no settings received yet: the server sends nothing for an environment it does not know; check source.env",
		zap.Duration("waited", silentEnvWarning))
}

func (a *Agent) notify(state string) {
	if a.opts.Notify != nil {
		a.opts.Notify(state)
	}
}

func readProblem(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &Problem{File: path, Msg: "config file not found; pass its path with -config"}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Problem{File: path, Msg: fmt.Sprintf("cannot read config file: %v", err)}
}

// templateErrorLine matches Go's parse errors, "template: FILE:LINE: why".
var templateErrorLine = regexp.MustCompile(`^template: (.*):(\d+): (.*)$`)

// templateProblem names the template file and line of a parse error, or,
// when the file cannot be read, the config line of its source key.
func templateProblem(cfg *Config, i int, err error) error {
	if m := templateErrorLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[2])
		return &Problem{File: m[1], Line: line, Msg: m[3]}
	}
	key := fmt.Sprintf("template[%d].source", i)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return cfg.problem(key, "cannot read template %s: %v", cfg.Templates[i].Source, err)
}
