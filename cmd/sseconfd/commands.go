package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sseconfd/sseconfd/agent"
	"github.com/sseconfd/sseconfd/render"
)

// daemonFlags are the flags shared by run and once.
type daemonFlags struct {
	config    string
	dryRun    bool
	logFormat string
	logLevel  string
}

func daemonCommand(name, synopsis, about string) (*command, *daemonFlags) {
	c := newCommand(name, synopsis, about)
	f := &daemonFlags{}
	c.fs.StringVar(&f.config, "config", defaultConfig, "agent config `file` (TOML)")
	c.fs.BoolVar(&f.dryRun, "dry-run", false,
		"render and print to stdout a unified diff per file that would change; write nothing, reload nothing")
	c.fs.StringVar(&f.logFormat, "log-format", "",
		"log `format`, console or json; overrides [log] format (unset: console on a terminal, json otherwise)")
	c.fs.StringVar(&f.logLevel, "log-level", "",
		"log `level`, debug, info, warn or error; overrides [log] level (unset: info)")
	return c, f
}

// service is what run and once share once the config is loaded.
type service struct {
	agent *agent.Agent
	log   *zap.Logger
	level zap.AtomicLevel
	cfg   *agent.Config
}

// setup loads the config and its templates (printing every problem and
// giving exitUsage if any), builds the logger and the agent.
func setup(f *daemonFlags, opts agent.Options) (*service, int) {
	if _, _, err := newLogger(firstSet(f.logFormat, "json"), firstSet(f.logLevel, "info")); err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err) // a bad flag, before any config problem
		return nil, exitUsage
	}
	probe, err := agent.Load(f.config, zap.NewNop(), opts)
	if err != nil {
		printProblems(f.config, err)
		return nil, exitUsage
	}
	cfg := probe.Config()
	format, level := firstSet(f.logFormat, cfg.Log.Format), firstSet(f.logLevel, cfg.Log.Level)
	log, atom, err := newLogger(format, level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return nil, exitUsage
	}
	a, err := agent.New(cfg, log, opts)
	if err != nil {
		printProblems(f.config, err)
		return nil, exitUsage
	}
	// The agent adds the env to its own lines; these are the command's.
	return &service{agent: a, log: log.With(zap.String("env", cfg.Source.Env)), level: atom, cfg: cfg}, exitOK
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// printProblems prints a config error to stderr, one problem a line.
func printProblems(path string, err error) {
	var ce *agent.ConfigError
	if errors.As(err, &ce) && len(ce.Problems) > 1 {
		fmt.Fprintf(os.Stderr, "%s\n%d problems; nothing was started or written.\n", err, len(ce.Problems))
		return
	}
	fmt.Fprintf(os.Stderr, "%s\n", err)
}

func cmdRun(args []string) int {
	c, f := daemonCommand("run", "sseconfd run [flags]",
		"Follow the config server's event stream and apply every update: render the\n"+
			"templates, install the files that changed, check and reload their targets.\n"+
			"SIGTERM or SIGINT stop it; SIGHUP re-reads the config file and the templates.")
	if code, ok := c.parse(args); !ok {
		return code
	}
	// From here on SIGHUP must not kill the process (its default action):
	// one that comes during start-up is handled once the agent runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	opts := agent.Options{DryRun: f.dryRun, DiffOut: os.Stdout, Version: version, Notify: sdNotify,
		TuneGC: true}
	opts.WatchdogInterval, _ = daemon.SdWatchdogEnabled(false)
	d, code := setup(f, opts)
	if code != exitOK {
		return code
	}
	defer d.log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Once stopping, SIGINT and SIGTERM stay caught until the process
	// exits: another one must not cut the stop short (exec'd programs
	// still being stopped would be orphaned) nor turn a clean exit into
	// death by signal. This channel is never read or unregistered.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM)
	hupDone := reloadOnHUP(ctx, hup, d, f)
	defer func() { stop(); <-hupDone }()

	d.log.Info("started", zap.String("version", version), zap.String("file", f.config),
		zap.Int("templates", len(d.cfg.Templates)), zap.Bool("dry_run", f.dryRun))
	err := d.agent.Run(ctx)
	sdNotify("STOPPING=1")
	if errors.Is(err, context.Canceled) {
		d.log.Info("stopped")
		return exitOK
	}
	d.log.Error("stopped", zap.Error(err))
	return exitFailure
}

// reloadOnHUP re-reads the config on every signal from hup until ctx
// ends; the returned channel is closed when it has stopped.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, d *service, f *daemonFlags) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadConfig(ctx, d, f)
			}
		}
	}()
	return done
}

func reloadConfig(ctx context.Context, d *service, f *daemonFlags) {
	d.log.Info("SIGHUP: reloading config", zap.String("file", f.config))
	cfg, err := d.agent.ReloadConfig(ctx, f.config)
	if err != nil {
		d.log.Error("config reload refused; still running on the previous config",
			zap.String("file", f.config), zap.Strings("problems", problemLines(err)))
		return
	}
	if f.logLevel == "" {
		if lvl, err := zapcore.ParseLevel(cfg.Log.Level); err == nil {
			d.level.SetLevel(lvl)
		}
	}
}

func problemLines(err error) []string {
	return strings.Split(err.Error(), "\n")
}

// sdNotify tells systemd the state when run under Type=notify; without
// NOTIFY_SOCKET it does nothing.
func sdNotify(state string) {
	daemon.SdNotify(false, state)
}

func cmdOnce(args []string) int {
	c, f := daemonCommand("once", "sseconfd once [flags]",
		"Fetch the current settings (GET /config/{env}), render, install, check and\n"+
			"reload, then exit: 0 when done, 1 with the reason on any failure.")
	if code, ok := c.parse(args); !ok {
		return code
	}
	d, code := setup(f, agent.Options{DryRun: f.dryRun, DiffOut: os.Stdout, Version: version,
		TuneGC: true})
	if code != exitOK {
		return code
	}
	defer d.log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := d.agent.Once(ctx)
	if err != nil {
		d.log.Error("once failed", zap.Error(err))
		return exitFailure
	}
	fields := []zap.Field{zap.String("hash", shortHash(res.Hash)), zap.Duration("duration", res.Duration)}
	if f.dryRun {
		d.log.Info("dry run: nothing written", append(fields, zap.Strings("would_change", res.Changed))...)
		return exitOK
	}
	d.log.Info("update applied", append(fields, zap.Strings("changed", res.Changed),
		zap.Strings("reloaded", res.Reloaded))...)
	return exitOK
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func cmdRender(args []string) int {
	c := newCommand("render", "sseconfd render -template FILE -settings FILE [-env ENV]",
		"Render one template offline to stdout, to try it. The settings file holds a\n"+
			"bare JSON object, or {\"settings\": {...}} as the stream sends it.")
	tmplPath := c.fs.String("template", "", "template `file` (required)")
	settingsPath := c.fs.String("settings", "", "settings JSON `file` (required)")
	env := c.fs.String("env", "dev", "value of .Env")
	if code, ok := c.parse(args); !ok {
		return code
	}
	if *tmplPath == "" || *settingsPath == "" {
		fmt.Fprintf(os.Stderr, "sseconfd render: -template and -settings are required\nRun \"sseconfd render -h\" for its flags.\n")
		return exitUsage
	}
	tmpl, err := render.ParseFile(*tmplPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitUsage
	}
	settings, err := readSettings(*settingsPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitUsage
	}
	out, err := tmpl.Render(render.Data{Settings: settings, Env: *env})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitFailure
	}
	os.Stdout.Write(out)
	return exitOK
}

// readSettings reads a bare settings object or {"settings": {...}}.
func readSettings(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	settings, err := render.ParseSettings(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if inner, ok := settings["settings"].(map[string]any); ok && len(settings) == 1 {
		settings = inner
	}
	return settings, nil
}

func cmdValidate(args []string) int {
	c := newCommand("validate", "sseconfd validate [-config FILE]",
		"Check the config file and parse every template without connecting or writing\n"+
			"anything. Every problem is listed, as FILE:LINE: KEY: PROBLEM; the exit code\n"+
			"is 2 if there is any.")
	config := c.fs.String("config", defaultConfig, "agent config `file` (TOML)")
	if code, ok := c.parse(args); !ok {
		return code
	}
	a, err := agent.Load(*config, zap.NewNop(), agent.Options{DryRun: true})
	if err != nil {
		printProblems(*config, err)
		return exitUsage
	}
	cfg := a.Config()
	fmt.Printf("%s: ok (%s, %s)\n", *config, plural(len(cfg.Templates), "template"),
		plural(len(cfg.Reloads), "reload target"))
	return exitOK
}

func cmdVersion(args []string) int {
	c := newCommand("version", "sseconfd version", "Print the version and build information.")
	if code, ok := c.parse(args); !ok {
		return code
	}
	fmt.Printf("sseconfd %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				fmt.Printf("%s %s\n", s.Key, s.Value)
			}
		}
	}
	return exitOK
}

// plural says "1 template", "2 templates".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
