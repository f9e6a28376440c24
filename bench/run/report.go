package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Check is one target of issue 7 and whether this run met it.
type Check struct {
	Target string `json:"target"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
}

// checks compares the results with the targets of issue 7; parts not run
// are left out.
func checks(res *Results, o options) []Check {
	var cs []Check
	add := func(target string, ok bool, format string, args ...any) {
		cs = append(cs, Check{Target: target, Got: fmt.Sprintf(format, args...), OK: ok})
	}
	if l := res.Latency; len(l.Rounds) > 0 {
		add("update p50 within 1.2x floor (file)", l.Ratios.FileP50 <= 1.2, "%.2fx", l.Ratios.FileP50)
		add("update p99 within 2x floor (file)", l.Ratios.FileP99 <= 2, "%.2fx", l.Ratios.FileP99)
		add("update p50 within 1.2x floor (SIGHUP)", l.Ratios.HupP50 <= 1.2, "%.2fx", l.Ratios.HupP50)
		add("update p99 within 2x floor (SIGHUP)", l.Ratios.HupP99 <= 2, "%.2fx", l.Ratios.HupP99)
	}
	if b := res.Burst; b.Updates > 0 {
		add("burst: final content on disk within 100ms", b.FinalOnDisk && b.FinalFileMS <= 100,
			"%.1fms", b.FinalFileMS)
		add("burst: renders far fewer than updates (<25%)", b.Renders*4 < b.Updates,
			"%d renders / %d updates", b.Renders, b.Updates)
		add("burst: reloads bounded by min_interval", b.FinalReloaded && b.Reloads <= b.ReloadBound,
			"%d reloads, bound %d (%s over %.1fs)", b.Reloads, b.ReloadBound, b.MinInterval, b.SpanSeconds)
	}
	for _, s := range res.Sizes {
		if s.Shape == "named" {
			continue // the stress case is reported, not held to the targets
		}
		name := fmt.Sprintf("size %s %d keys x %d templates", s.Shape, s.Keys, s.Templates)
		if s.Keys == 10000 && s.Templates == 50 {
			add(name+": apply < 100ms", s.ApplyMS < 100, "%.1fms", s.ApplyMS)
		}
		if s.Keys == 100000 {
			add(name+": apply < 1s", s.ApplyMS < 1000, "%.1fms", s.ApplyMS)
		}
		add(name+": peak RSS < 3x JSON + 30MiB", s.MaxRSSKiB < s.RSSLimitKiB,
			"%.1f MiB (limit %.1f)", mib(s.MaxRSSKiB), mib(s.RSSLimitKiB))
	}
	if i := res.Idle; i.Seconds > 0 {
		add("idle: RSS < 20MiB", i.RSSKiB < 20*1024, "%.1f MiB", mib(i.RSSKiB))
		add("idle: CPU < 0.1% of a core", i.CPUPercent < 0.1, "%.3f%%", i.CPUPercent)
	}
	return cs
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// printTable writes the human-readable summary.
func printTable(out io.Writer, res *Results) {
	w := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "\nsseconfd benchmarks at %s (%s), %.0fs in total\n", res.Commit, res.GoVersion, res.Seconds)
	printGoBench(w, res.GoBench)
	printLatency(w, res.Latency)
	printBurst(w, res.Burst)
	printSizes(w, res.Sizes)
	printIdle(w, res.Idle)
	fmt.Fprintf(w, "\ntarget\tresult\tok\n")
	for _, c := range res.Checks {
		fmt.Fprintf(w, "%s\t%s\t%s\n", c.Target, c.Got, yesNo(c.OK))
	}
	w.Flush()
}

func printGoBench(w io.Writer, bs []GoBench) {
	if len(bs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nGo benchmark\tns/op\tB/op\tallocs/op\n")
	for _, b := range bs {
		pkg := b.Package[strings.LastIndexByte(b.Package, '/')+1:]
		fmt.Fprintf(w, "%s.%s\t%.0f\t%d\t%d\n", pkg, b.Name, b.NsPerOp, b.BytesPerOp, b.AllocsPerOp)
	}
}

func printLatency(w io.Writer, l Latency) {
	if len(l.Rounds) == 0 {
		return
	}
	fmt.Fprintf(w, "\nupdate latency, %d updates at %d/s, %s templates, ms\tp50\tp90\tp99\tmax\tskipped\n",
		l.Updates, l.Rate, l.Templates)
	for _, r := range l.Rounds {
		fmt.Fprintf(w, "round %d %s, to file\t%s\t%d\n", r.Round, r.Kind, statCells(r.File), r.FileSkipped)
		fmt.Fprintf(w, "round %d %s, to SIGHUP\t%s\t%d\n", r.Round, r.Kind, statCells(r.Hup), r.HupSkipped)
		if r.Apply.N > 0 {
			fmt.Fprintf(w, "round %d %s, its own apply duration\t%s\t\n", r.Round, r.Kind, statCells(r.Apply))
		}
	}
	fmt.Fprintf(w, "median agent, to file\t%s\t\n", statCells(l.Agent.File))
	fmt.Fprintf(w, "median floor, to file\t%s\t\n", statCells(l.Floor.File))
	fmt.Fprintf(w, "median agent, to SIGHUP\t%s\t\n", statCells(l.Agent.Hup))
	fmt.Fprintf(w, "median floor, to SIGHUP\t%s\t\n", statCells(l.Floor.Hup))
	fmt.Fprintf(w, "agent/floor ratio (median of rounds)\tfile p50 %.2fx\t"+
		"file p99 %.2fx\tSIGHUP p50 %.2fx\tSIGHUP p99 %.2fx\t\n",
		l.Ratios.FileP50, l.Ratios.FileP99, l.Ratios.HupP50, l.Ratios.HupP99)
}

func statCells(s Stats) string {
	return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f", s.P50, s.P90, s.P99, s.Max)
}

func printBurst(w io.Writer, b Burst) {
	if b.Updates == 0 {
		return
	}
	fmt.Fprintf(w, "\nburst\tvalue\n")
	fmt.Fprintf(w, "updates posted (%d clients)\t%d in %.2fs (%.0f/s)\n", b.Clients, b.Updates,
		b.PostSeconds, b.PostsPerSec)
	fmt.Fprintf(w, "last POST → final content on disk\t%.1f ms\n", b.FinalFileMS)
	fmt.Fprintf(w, "last POST → final SIGHUP\t%.1f ms\n", b.FinalHupMS)
	fmt.Fprintf(w, "renders (update applied)\t%d\n", b.Renders)
	fmt.Fprintf(w, "reloads (SIGHUPs), min_interval %s\t%d (bound %d)\n", b.MinInterval, b.Reloads,
		b.ReloadBound)
}

func printSizes(w io.Writer, ss []Size) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprintf(w, "\nsize: shape\tkeys\ttemplates\tJSON KiB\tapply ms\tprocess ms\tpeak RSS MiB\tRSS limit MiB\n")
	for _, s := range ss {
		limit := fmt.Sprintf("%.1f", mib(s.RSSLimitKiB))
		if s.Shape == "named" {
			limit = "(stress case, no target)"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%s\n", s.Shape, s.Keys, s.Templates,
			float64(s.JSONBytes)/1024, s.ApplyMS, s.ProcessMS, mib(s.MaxRSSKiB), limit)
	}
}

func printIdle(w io.Writer, i Idle) {
	if i.Seconds == 0 {
		return
	}
	d := time.Duration(i.Seconds * float64(time.Second))
	fmt.Fprintf(w, "\nidle agent over %s, keep-alive %s\tvalue\n", d, i.KeepAlive)
	fmt.Fprintf(w, "RSS (peak since start)\t%.1f MiB (%.1f MiB)\n", mib(i.RSSKiB), mib(i.HWMKiB))
	fmt.Fprintf(w, "CPU time (schedstat; ticks)\t%.1f ms = %.3f%% of a core (%.0f ms)\n", i.CPUms,
		i.CPUPercent, i.CPUTicksMS)
	fmt.Fprintf(w, "context switches, %d threads\t%d (%.1f/s)\n", i.Threads, i.Wakeups, i.WakeupsPerSec)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
