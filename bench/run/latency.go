package main

import (
	"fmt"
	"time"
)

// Round is one latency run of the agent or the floor.
type Round struct {
	Kind        string `json:"kind"`
	Round       int    `json:"round"`
	File        Stats  `json:"file"`         // POST sent → destination holds the marker
	Hup         Stats  `json:"sighup"`       // POST sent → target received SIGHUP showing it
	FileSkipped int    `json:"file_skipped"` // updates overtaken before reaching disk
	HupSkipped  int    `json:"sighup_skipped"`
	Missing     int    `json:"missing"` // updates never seen at all
	Apply       Stats  `json:"apply"`   // the agent's own "update applied" durations
}

// Latency is the update-latency part of the results.
type Latency struct {
	Templates string  `json:"templates"` // "mixed" or "range", see latencyTemplates
	Updates   int     `json:"updates"`
	Rate      int     `json:"rate_per_s"`
	Rounds    []Round `json:"rounds"`
	Agent     Pair    `json:"agent_median"`
	Floor     Pair    `json:"floor_median"`
	Ratios    Ratios  `json:"ratios"` // median over rounds of agent / floor
}

// Pair holds the file and SIGHUP latencies of one subject.
type Pair struct {
	File Stats `json:"file"`
	Hup  Stats `json:"sighup"`
}

// Ratios compare the agent with the floor.
type Ratios struct {
	FileP50 float64 `json:"file_p50"`
	FileP99 float64 `json:"file_p99"`
	HupP50  float64 `json:"sighup_p50"`
	HupP99  float64 `json:"sighup_p99"`
}

// runLatency runs rounds of agent then floor, interleaved, each posting
// n updates at rate per second.
func runLatency(t *tools, set string, rounds, n, rate int, logf func(string, ...any)) (Latency, error) {
	res := Latency{Templates: set, Updates: n, Rate: rate}
	for i := range rounds {
		for _, kind := range []string{"agent", "floor"} {
			r, err := latencyRound(t, set, kind, n, rate)
			if err != nil {
				return res, fmt.Errorf("latency round %d, %s: %w", i+1, kind, err)
			}
			r.Round = i + 1
			logf("latency round %d %-5s: file p50 %.2fms p99 %.2fms, sighup p50 %.2fms p99 %.2fms",
				i+1, kind, r.File.P50, r.File.P99, r.Hup.P50, r.Hup.P99)
			res.Rounds = append(res.Rounds, r)
		}
	}
	res.summarize()
	return res, nil
}

func latencyRound(t *tools, set, kind string, n, rate int) (Round, error) {
	r, err := newRig(t, rigOptions{kind: kind, n: n, templates: set})
	if err != nil {
		return Round{}, err
	}
	defer r.close()

	time.Sleep(200 * time.Millisecond) // let the start-up apply settle
	posts := make([]int64, n+1)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 1; i <= n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i-1) * interval)))
		if posts[i], err = r.post(i); err != nil {
			return Round{}, err
		}
	}
	r.file.wait(n, 10*time.Second)
	r.recv.hups.wait(n, 10*time.Second)

	fileAt, fileSkipped := r.file.times()
	hupAt, hupSkipped := r.recv.hups.times()
	fileDs, missing := latencies(posts, fileAt)
	hupDs, _ := latencies(posts, hupAt)
	return Round{Kind: kind, File: summarize(fileDs), Hup: summarize(hupDs),
		Apply:       summarize(appliedDurations(r.logFile)),
		FileSkipped: fileSkipped, HupSkipped: hupSkipped, Missing: missing}, nil
}

// summarize fills the medians and ratios from the rounds.
func (l *Latency) summarize() {
	var agentFile, agentHup, floorFile, floorHup []Stats
	var fileP50, fileP99, hupP50, hupP99 []float64
	for i := 0; i+1 < len(l.Rounds); i += 2 {
		a, f := l.Rounds[i], l.Rounds[i+1]
		agentFile, agentHup = append(agentFile, a.File), append(agentHup, a.Hup)
		floorFile, floorHup = append(floorFile, f.File), append(floorHup, f.Hup)
		fileP50 = append(fileP50, a.File.P50/f.File.P50)
		fileP99 = append(fileP99, a.File.P99/f.File.P99)
		hupP50 = append(hupP50, a.Hup.P50/f.Hup.P50)
		hupP99 = append(hupP99, a.Hup.P99/f.Hup.P99)
	}
	l.Agent = Pair{File: medianStats(agentFile), Hup: medianStats(agentHup)}
	l.Floor = Pair{File: medianStats(floorFile), Hup: medianStats(floorHup)}
	l.Ratios = Ratios{FileP50: median(fileP50), FileP99: median(fileP99), HupP50: median(hupP50),
		HupP99: median(hupP99)}
}
