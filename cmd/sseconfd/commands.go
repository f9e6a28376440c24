package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"go.uber.org/zap"

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

func parseDaemonFlags(name string, args []string) (*daemonFlags, error) {
	f := &daemonFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "/etc/sseconfd/sseconfd.toml", "agent config file (TOML)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "render and report, write nothing, reload nothing")
	fs.StringVar(&f.logFormat, "log-format", "", "console or json (default: the config's, else console on a terminal and json otherwise)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default: the config's, else info)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, nil
}

// setup loads the config, builds the logger and the agent.
func setup(f *daemonFlags) (*agent.Config, *zap.Logger, *agent.Agent, int) {
	cfg, err := agent.LoadConfig(f.config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return nil, nil, nil, exitUsage
	}
	format, level := cfg.Log.Format, cfg.Log.Level
	if f.logFormat != "" {
		format = f.logFormat
	}
	if f.logLevel != "" {
		level = f.logLevel
	}
	log, err := newLogger(format, level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return nil, nil, nil, exitUsage
	}
	log = log.With(zap.String("env", cfg.Source.Env))
	a, err := agent.New(cfg, log, agent.Options{DryRun: f.dryRun})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return nil, nil, nil, exitUsage
	}
	return cfg, log, a, exitOK
}

func cmdRun(args []string) int {
	f, err := parseDaemonFlags("run", args)
	if err != nil {
		return usageError(err)
	}
	cfg, log, a, code := setup(f)
	if code != exitOK {
		return code
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("started", zap.String("version", version), zap.String("config", f.config),
		zap.Int("templates", len(cfg.Templates)), zap.Bool("dry_run", f.dryRun))
	err = a.Run(ctx)
	if errors.Is(err, context.Canceled) {
		log.Info("stopped")
		return exitOK
	}
	log.Error("stopped", zap.Error(err))
	return exitFailure
}

func cmdOnce(args []string) int {
	f, err := parseDaemonFlags("once", args)
	if err != nil {
		return usageError(err)
	}
	_, log, a, code := setup(f)
	if code != exitOK {
		return code
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := a.Once(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitFailure
	}
	log.Info("update applied", zap.String("hash", res.Hash[:12]), zap.Strings("changed", res.Changed),
		zap.Strings("reloaded", res.Reloaded), zap.Duration("duration", res.Duration))
	return exitOK
}

func cmdRender(args []string) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	tmplPath := fs.String("template", "", "template file (required)")
	settingsPath := fs.String("settings", "", "settings JSON file: a bare object, or {\"settings\": {...}} (required)")
	env := fs.String("env", "dev", "value of .Env")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if *tmplPath == "" || *settingsPath == "" {
		return usageError(errors.New("-template and -settings are required"))
	}
	tmpl, err := render.ParseFile(*tmplPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitUsage
	}
	data, err := os.ReadFile(*settingsPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitUsage
	}
	settings, err := render.ParseSettings(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %s: %v\n", *settingsPath, err)
		return exitUsage
	}
	if inner, ok := settings["settings"].(map[string]any); ok && len(settings) == 1 {
		settings = inner
	}
	out, err := tmpl.Render(render.Data{Settings: settings, Env: *env})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
		return exitFailure
	}
	os.Stdout.Write(out)
	return exitOK
}

func cmdValidate(args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	config := fs.String("config", "/etc/sseconfd/sseconfd.toml", "agent config file (TOML)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	cfg, err := agent.LoadConfig(*config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return exitUsage
	}
	if _, err := agent.New(cfg, zap.NewNop(), agent.Options{DryRun: true}); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return exitUsage
	}
	fmt.Printf("%s: ok (%d templates, %d reload targets)\n", *config, len(cfg.Templates), len(cfg.Reloads))
	return exitOK
}

func cmdVersion() int {
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

func usageError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "sseconfd: %v\n", err)
	return exitUsage
}
