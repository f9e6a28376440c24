package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Idle is the idle part of the results.
type Idle struct {
	Seconds       float64 `json:"seconds"`
	KeepAlive     string  `json:"keepalive"`
	CPUms         float64 `json:"cpu_ms"`           // on-CPU time of all threads (schedstat)
	CPUPercent    float64 `json:"cpu_percent"`      // of one core
	CPUTicksMS    float64 `json:"cpu_ticks_ms"`     // utime+stime from /proc/PID/stat, 10ms steps
	RSSKiB        int64   `json:"rss_kib"`          // VmRSS at the end
	HWMKiB        int64   `json:"rss_peak_kib"`     // VmHWM, start-up included
	Wakeups       int64   `json:"context_switches"` // voluntary + involuntary, all threads
	WakeupsPerSec float64 `json:"context_switches_per_second"`
	Threads       int     `json:"threads"`
}

// procSample is what /proc says about a process at one moment.
type procSample struct {
	cpuNS   int64 // sum of every thread's schedstat run time
	ticks   int64 // utime + stime
	ctxt    int64 // voluntary + nonvoluntary switches of every thread
	rss     int64
	hwm     int64
	threads int
}

// runIdle starts an agent on a server with 1 s keep-alives, lets it
// settle, then measures it for d.
func runIdle(t *tools, set string, d time.Duration) (Idle, error) {
	res := Idle{Seconds: d.Seconds(), KeepAlive: "1s"}
	r, err := newRig(t, rigOptions{kind: "agent", keepAlive: time.Second, templates: set})
	if err != nil {
		return res, err
	}
	defer r.close()
	time.Sleep(3 * time.Second)

	pid := r.subject.pid()
	before, err := sampleProc(pid)
	if err != nil {
		return res, err
	}
	time.Sleep(d)
	after, err := sampleProc(pid)
	if err != nil {
		return res, err
	}
	res.CPUms = float64(after.cpuNS-before.cpuNS) / 1e6
	res.CPUPercent = res.CPUms / (d.Seconds() * 1000) * 100
	res.CPUTicksMS = float64(after.ticks-before.ticks) * 10
	res.RSSKiB, res.HWMKiB, res.Threads = after.rss, after.hwm, after.threads
	res.Wakeups = after.ctxt - before.ctxt
	res.WakeupsPerSec = float64(res.Wakeups) / d.Seconds()
	return res, nil
}

func sampleProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rss = statusField(string(status), "VmRSS:")
	s.hwm = statusField(string(status), "VmHWM:")
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the parenthesised command: utime and stime are 14 and 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	s.ticks = utime + stime

	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	s.threads = len(tasks)
	for _, task := range tasks {
		if b, err := os.ReadFile(task + "/schedstat"); err == nil {
			f := strings.Fields(string(b))
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			s.cpuNS += ns
		}
		if b, err := os.ReadFile(task + "/status"); err == nil {
			status := string(b)
			s.ctxt += statusField(status, "voluntary_ctxt_switches:") +
				statusField(status, "nonvoluntary_ctxt_switches:")
		}
	}
	return s, nil
}

// statusField returns the number after name in a /proc status file.
func statusField(status, name string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
