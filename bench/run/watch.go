package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// progress records, for each update number, the wall-clock time at which
// that update or a newer one was first observed (on disk, or by the
// reload target). Newest wins, so an update overtaken by a newer one
// counts as arrived when the newer one arrived; skipped counts those.
type progress struct {
	mu      sync.Mutex
	last    int     // highest number seen, -1 before any
	at      []int64 // wall-clock UnixNano per number; 0 = not yet
	skipped int     // numbers never seen themselves
	changed chan struct{}
}

func newProgress(n int) *progress {
	return &progress{last: -1, at: make([]int64, n+1), changed: make(chan struct{})}
}

// advance records that number seq was observed at ts.
func (p *progress) advance(seq int, ts int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.last || seq >= len(p.at) {
		return
	}
	if p.last >= 0 {
		p.skipped += seq - p.last - 1
	}
	for k := p.last + 1; k <= seq; k++ {
		p.at[k] = ts
	}
	p.last = seq
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait blocks until seq was observed or limit passes; it reports which.
func (p *progress) wait(seq int, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		done, changed := p.last >= seq, p.changed
		p.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// times returns a copy of the observation times and the skipped count.
func (p *progress) times() ([]int64, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.at...), p.skipped
}

// markerRE finds the marker in an agent-rendered line ("marker = m0000012")
// or in the floor's copy of the raw event ("marker":"m0000012").
var markerRE = regexp.MustCompile(`marker[" =:]*m(\d{7})`)

func markerText(seq int) string { return "m" + leftPad(seq) }

func leftPad(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 7 {
		s = "0" + s
	}
	return s
}

// readMarker returns the marker number in path, or -1.
func readMarker(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	m := markerRE.FindSubmatch(data)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// watchFile follows dest with inotify (fsnotify on its directory, since
// dest is replaced by rename) and advances the returned progress with the
// marker it holds after each event. Inotify, not polling: a tight poll
// would take one of the machine's two cores from the programs measured.
// The time is taken when the event is read, before the file is; a rename
// is always visible by then.
func watchFile(ctx context.Context, dest string, n int) (*progress, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(dest)); err != nil {
		w.Close()
		return nil, err
	}
	p := newProgress(n)
	if seq := readMarker(dest); seq >= 0 {
		p.advance(seq, time.Now().UnixNano())
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-w.Events:
				if ev.Name != dest {
					continue
				}
				ts := time.Now().UnixNano()
				if seq := readMarker(dest); seq >= 0 {
					p.advance(seq, ts)
				}
			case <-w.Errors:
			}
		}
	}()
	return p, nil
}
