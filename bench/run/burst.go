package main

import (
	"bytes"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Burst is the burst part of the results.
type Burst struct {
	Updates       int     `json:"updates"`
	Clients       int     `json:"clients"`
	MinInterval   string  `json:"min_interval"`
	PostSeconds   float64 `json:"post_seconds"`     // first POST sent → last POST answered
	PostsPerSec   float64 `json:"posts_per_second"` // as the server took them
	FinalFileMS   float64 `json:"final_file_ms"`    // last POST sent → its content on disk
	FinalHupMS    float64 `json:"final_sighup_ms"`  // last POST sent → SIGHUP showing it
	Renders       int     `json:"renders"`          // "update applied" log lines, start-up excluded
	Reloads       int     `json:"reloads"`          // SIGHUPs received, start-up excluded
	ReloadBound   int     `json:"reload_bound"`     // 1 + span / min_interval
	SpanSeconds   float64 `json:"span_seconds"`     // first POST → final SIGHUP
	FinalOnDisk   bool    `json:"final_on_disk"`
	FinalReloaded bool    `json:"final_reloaded"`
}

// runBurst posts n-1 updates from clients concurrent keep-alive
// connections as fast as the server takes them, then the last one alone,
// and times how long the last one takes to reach disk and the target.
func runBurst(t *tools, set string, n, clients int, minInterval time.Duration) (Burst, error) {
	res := Burst{Updates: n, Clients: clients, MinInterval: minInterval.String()}
	r, err := newRig(t, rigOptions{kind: "agent", n: n, minInterval: minInterval, conns: clients,
		templates: set})
	if err != nil {
		return res, err
	}
	defer r.close()
	time.Sleep(minInterval) // the start-up reload must not count against the burst

	first := time.Now()
	if err := postConcurrently(r, n-1, clients); err != nil {
		return res, err
	}
	last, err := r.post(n)
	if err != nil {
		return res, err
	}
	res.PostSeconds = time.Since(first).Seconds()
	res.PostsPerSec = float64(n) / res.PostSeconds

	res.FinalOnDisk = r.file.wait(n, 10*time.Second)
	res.FinalReloaded = r.recv.hups.wait(n, minInterval+10*time.Second)
	time.Sleep(minInterval + 200*time.Millisecond) // catch late extra reloads
	fileAt, _ := r.file.times()
	hupAt, _ := r.recv.hups.times()
	if res.FinalOnDisk {
		res.FinalFileMS = float64(fileAt[n]-last) / 1e6
	}
	if res.FinalReloaded {
		res.FinalHupMS = float64(hupAt[n]-last) / 1e6
		res.SpanSeconds = float64(hupAt[n]-first.UnixNano()) / 1e9
	}
	res.Reloads = int(r.recv.count.Load()) - 1
	r.subject.stop()
	res.Renders = countLines(r.logFile, `"update applied"`) - 1
	if minInterval > 0 {
		res.ReloadBound = 1 + int(res.SpanSeconds/minInterval.Seconds())
	}
	return res, nil
}

// postConcurrently posts updates 1..last from clients goroutines.
func postConcurrently(r *rig, last, clients int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq := int(next.Add(1))
				if seq > last {
					return
				}
				if _, err := r.post(seq); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// countLines counts the lines of path that contain substr.
func countLines(path, substr string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.Contains(line, []byte(substr)) {
			n++
		}
	}
	return n
}
