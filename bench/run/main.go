// Command run is the benchmark orchestrator behind `make bench`. It builds
// the daemon, the stand-in server, the floor program and a SIGHUP receiver
// into a temporary directory, runs every benchmark of issue 7 as separate
// processes on loopback, prints a table and writes the results as JSON.
// See bench/README.md for what each number means and how it is taken.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Results is everything one run measured; it is written as JSON.
type Results struct {
	Commit    string    `json:"commit"`
	GoVersion string    `json:"go_version"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	GoBench   []GoBench `json:"go_bench"`
	Latency   Latency   `json:"latency"`
	Idle      Idle      `json:"idle"`
	Burst     Burst     `json:"burst"`
	Sizes     []Size    `json:"size"`
	Checks    []Check   `json:"targets"`
}

type options struct {
	out         string
	rounds      int
	updates     int
	rate        int
	burst       int
	clients     int
	minInterval time.Duration
	idle        time.Duration
	benchtime   string
	only        string
	bin         string
	templates   string
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "bench/results.json", "write the results as JSON here")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved latency rounds (agent, floor, agent, ...)")
	flag.IntVar(&o.updates, "updates", 500, "updates per latency round")
	flag.IntVar(&o.rate, "rate", 20, "updates per second in a latency round")
	flag.IntVar(&o.burst, "burst", 10000, "updates in the burst")
	flag.IntVar(&o.clients, "clients", 4, "concurrent POST connections in the burst")
	flag.DurationVar(&o.minInterval, "min-interval", time.Second, "reload min_interval in the burst")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "idle measurement period")
	flag.StringVar(&o.benchtime, "benchtime", "500ms", "go test -benchtime for the Go benchmarks")
	flag.StringVar(&o.only, "only", "gobench,latency,idle,burst,size", "comma-separated parts to run")
	flag.StringVar(&o.templates, "templates", "mixed",
		"latency, burst and idle templates: mixed (one ranges over the map, nine name keys) or range (all ten range)")
	flag.StringVar(&o.bin, "bin", "",
		"use the programs in this directory instead of building them (to compare builds)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("run from the module root (make bench): %w", err)
	}
	res := &Results{Commit: commit(root), GoVersion: runtime.Version(), Started: time.Now().UTC()}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(res.Started).Seconds(), fmt.Sprintf(format, args...))
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(o.only, ",") {
		parts[strings.TrimSpace(p)] = true
	}

	t := toolsIn(o.bin)
	if o.bin == "" {
		logf("building binaries")
		if t, err = buildTools(root); err != nil {
			return err
		}
		defer os.RemoveAll(t.dir)
	}
	if err := runParts(root, t, o, parts, res, logf); err != nil {
		return err
	}
	res.Seconds = time.Since(res.Started).Seconds()
	res.Checks = checks(res, o)
	printTable(os.Stdout, res)
	return writeJSON(o.out, res)
}

// runParts runs the parts in an order that keeps the measurements apart:
// the Go benchmarks alone, the idle agent beside the light latency rounds
// (20 updates/s to other processes), then the burst and sizes alone.
func runParts(root string, t *tools, o options, parts map[string]bool, res *Results,
	logf func(string, ...any)) error {
	var err error
	if parts["gobench"] {
		logf("go test -bench (render, agent)")
		if res.GoBench, err = runGoBench(root, o.benchtime, "./render", "./agent"); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	var idleErr error
	if parts["idle"] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logf("idle: measuring an agent for %s, concurrently with the latency rounds", o.idle)
			res.Idle, idleErr = runIdle(t, o.templates, o.idle)
			logf("idle done: CPU %.3f%%, RSS %d KiB", res.Idle.CPUPercent, res.Idle.RSSKiB)
		}()
	}
	if parts["latency"] {
		res.Latency, err = runLatency(t, o.templates, o.rounds, o.updates, o.rate, logf)
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if idleErr != nil {
		return fmt.Errorf("idle: %w", idleErr)
	}

	if parts["burst"] {
		logf("burst: %d updates from %d clients", o.burst, o.clients)
		if res.Burst, err = runBurst(t, o.templates, o.burst, o.clients, o.minInterval); err != nil {
			return fmt.Errorf("burst: %w", err)
		}
	}
	if parts["size"] {
		if res.Sizes, err = runSizes(t, []int{10, 10000, 100000}, []int{1, 50}, logf); err != nil {
			return err
		}
	}
	return nil
}

func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func writeJSON(path string, res *Results) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	fmt.Printf("\nresults written to %s\n", abs)
	return nil
}
