package main

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// newLogger builds the one logger of the process: console encoding on a
// terminal, JSON otherwise, unless format says which. Its level can be
// changed later through the returned AtomicLevel.
func newLogger(format, level string) (*zap.Logger, zap.AtomicLevel, error) {
	atom := zap.NewAtomicLevel()
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, atom, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	if format == "" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "console"
		}
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "time"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, atom, fmt.Errorf("log format %q: want console or json", format)
	}
	cfg.DisableStacktrace = true // a stack means nothing to an operator
	cfg.Sampling = nil
	atom.SetLevel(lvl)
	cfg.Level = atom
	cfg.DisableCaller = true
	cfg.OutputPaths = []string{"stderr"}
	log, err := cfg.Build()
	return log, atom, err
}
