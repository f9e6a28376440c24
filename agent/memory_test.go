package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// gcPercent returns the GOGC in force.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// withGCTuning runs the test with tuneGC's state reset, as if GOGC were
// set in the environment or not, and puts the percent back after.
func withGCTuning(t *testing.T, envSet bool) {
	before := gcPercent()
	gcTuning.Lock()
	gcTuning.tight, gcTuning.checked, gcTuning.ours, gcTuning.large = false, true, !envSet, nil
	gcTuning.Unlock()
	t.Cleanup(func() {
		debug.SetGCPercent(before)
		gcTuning.Lock()
		gcTuning.tight, gcTuning.checked, gcTuning.large = false, false, nil
		gcTuning.Unlock()
	})
}

func TestTuneGCFollowsTheSettingsSize(t *testing.T) {
	withGCTuning(t, false)
	normal := gcPercent()
	tuneGC := tuneGC(t)
	accepted := tuneGC(largeSettings + 1)
	if got := gcPercent(); got != largeGCPercent {
		t.Fatalf("decoding large settings: GOGC %d, want %d", got, largeGCPercent)
	}
	accepted(true)
	tuneGC(2 * largeSettings)(true) // still large: nothing to change
	if got := gcPercent(); got != largeGCPercent {
		t.Fatalf("after two large settings: GOGC %d, want %d", got, largeGCPercent)
	}
	accepted = tuneGC(100)
	if got := gcPercent(); got != largeGCPercent {
		t.Fatalf("decoding small settings: GOGC %d, want %d until they are accepted", got, largeGCPercent)
	}
	accepted(true)
	if got := gcPercent(); got != normal {
		t.Fatalf("after small settings: GOGC %d, want %d again", got, normal)
	}
	tuneGC(largeSettings + 1)(false)
	if got := gcPercent(); got != normal {
		t.Fatalf("after large settings rejected: GOGC %d, want %d", got, normal)
	}
}

// Two agents in one program: GOGC stays low while either one's newest
// settings are large.
func TestTuneGCForSeveralAgents(t *testing.T) {
	withGCTuning(t, false)
	normal := gcPercent()
	one, other := tuneGC("one"), tuneGC("other")
	one(largeSettings + 1)(true)
	other(largeSettings + 1)(true)
	other(100)(true)
	if got := gcPercent(); got != largeGCPercent {
		t.Fatalf("one agent's settings large, the other's small: GOGC %d, want %d", got, largeGCPercent)
	}
	one(100)(true)
	if got := gcPercent(); got != normal {
		t.Fatalf("both agents' settings small: GOGC %d, want %d", got, normal)
	}
}

func TestTuneGCLeavesTheOperatorsGOGC(t *testing.T) {
	withGCTuning(t, true)
	normal := gcPercent()
	tuneGC(t)(largeSettings + 1)(true)
	if got := gcPercent(); got != normal {
		t.Fatalf("GOGC set in the environment: tuneGC changed it to %d", got)
	}
}

// largeSettingsMap is settings of over largeSettings bytes of JSON.
func largeSettingsMap() map[string]any {
	m := map[string]any{}
	for i := range 40_000 {
		m[fmt.Sprintf("key%06d", i)] = fmt.Sprintf("value-%06d-abcdefghij", i)
	}
	return m
}

// The agent tells tuneGC the size of what it fetches (once) and of each
// event it follows (run), with Options.TuneGC and only with it.
func TestAgentTunesGCForLargeSettings(t *testing.T) {
	withGCTuning(t, false)
	normal := gcPercent()
	cs, url := startServer(t, "dev", largeSettingsMap())
	dir := t.TempDir()
	cfg := loadConfig(t, dir, baseConfig(url)+templateBlock(t, dir, "out.env",
		"{{range $k, $v := .Settings}}{{$k}}={{$v}}\n{{end}}", ""))
	log, _ := observedLogger()

	untuned, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untuned.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gcPercent(); got != normal {
		t.Fatalf("without TuneGC: GOGC %d after large settings, want %d", got, normal)
	}

	a, err := New(cfg, log, Options{TuneGC: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gcPercent(); got != largeGCPercent {
		t.Fatalf("once, large settings fetched: GOGC %d, want %d", got, largeGCPercent)
	}

	stop := runAgent(t, a)
	defer stop()
	post(t, cs, "dev", map[string]any{"small": "yes"})
	eventually(t, 5*time.Second, fileHas(filepath.Join(dir, "out.env"), "small=yes\n"))
	if got := gcPercent(); got != normal {
		t.Fatalf("run, small settings streamed: GOGC %d, want %d again", got, normal)
	}
	post(t, cs, "dev", largeSettingsMap())
	eventually(t, 5*time.Second, func() string {
		if got := gcPercent(); got != largeGCPercent {
			return fmt.Sprintf("run, large settings streamed: GOGC %d, want %d", got, largeGCPercent)
		}
		return ""
	})
}

// A body of known length is read into one buffer of that size; an unknown
// or oversized one is still cut at limit+1 bytes, for the caller to refuse.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("0123456789", 100_000)
	got, err := readBody(strings.NewReader(body), int64(len(body)), 2<<20)
	if err != nil || string(got) != body {
		t.Fatalf("known length: %d bytes, %v", len(got), err)
	}
	if cap(got) != len(body)+bytes.MinRead {
		t.Errorf("known length: buffer of %d bytes for %d: it grew", cap(got), len(body))
	}
	for _, length := range []int64{-1, int64(len(body))} {
		got, err = readBody(strings.NewReader(body), length, 1000)
		if err != nil || len(got) != 1001 {
			t.Errorf("length %d over the limit: %d bytes, %v; want 1001", length, len(got), err)
		}
	}
}

// An agent that starts with the server down renders the cached settings:
// when they are large, they are the newest settings it has, and the
// collector is tuned for them as for fetched ones, before they are decoded.
func TestAgentTunesGCForLargeCache(t *testing.T) {
	withGCTuning(t, false)
	c := newInstallCase(t)
	cfg := c.config(t, closedURL(t), "", "a")
	large := largeSettingsMap()
	large["v"] = "cached"
	s, err := NewSnapshot(large, "stream")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCache(cfg.Cache.Path, "dev", s); err != nil {
		t.Fatal(err)
	}
	log, _ := observedLogger()
	a, err := New(cfg, log, Options{TuneGC: true})
	if err != nil {
		t.Fatal(err)
	}

	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(c.path("a"), "a cached\n"))
	if got := gcPercent(); got != largeGCPercent {
		t.Fatalf("large settings read from the cache: GOGC %d, want %d", got, largeGCPercent)
	}
}

// A rejected event is not settings: the collector stays tuned for the
// newest settings accepted, whatever the size of the payload refused.
func TestTuneGCIgnoresRejectedEvents(t *testing.T) {
	large, err := json.Marshal(largeSettingsMap())
	if err != nil {
		t.Fatal(err)
	}
	garbage := "data: {\"settings\": {\"v\": \"" + strings.Repeat("x", largeSettings) + "\"\n\n"
	for _, tc := range []struct {
		name, first, rejected string
		want                  func(normal int) int
	}{
		{"large then small rejected", event(string(large)), "data: {oops\n\n",
			func(int) int { return largeGCPercent }},
		{"small then large rejected", event(`{"v":"small"}`), garbage,
			func(normal int) int { return normal }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withGCTuning(t, false)
			normal := gcPercent()
			url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				writeStream(w, tc.first+tc.rejected)
				holdOpen(t, r)
			})
			s, logs := fastStream(url)
			s.Source.MaxEventBytes = 8 << 20
			s.sized = tuneGC(t)
			run := startStream(t, s, nil)
			eventually(t, 10*time.Second, func() string {
				if len(logged(logs, "event rejected")) == 0 || len(run.snapshots()) < 1 {
					return "the first event not applied or the second not rejected yet"
				}
				return ""
			})
			run.stop(t)
			if got, want := gcPercent(), tc.want(normal); got != want {
				t.Fatalf("GOGC %d after a rejected event, want %d", got, want)
			}
		})
	}
}

// A resync's body that a newer event overtook is not the newest settings:
// the collector follows the event's (small) settings, not the stale large
// ones fetched meanwhile.
func TestTuneGCIgnoresAnOvertakenResync(t *testing.T) {
	withGCTuning(t, false)
	normal := gcPercent()
	large, err := json.Marshal(largeSettingsMap())
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}) // the handler got the small settings
	var once sync.Once
	// The slow resync answers the large settings, older than the event:
	// dropped. No later resync answers before the test looks.
	url, _ := overtakenResync(t, string(large), `{"v":"small"}`, string(large), handled,
		func(_ http.ResponseWriter, r *http.Request) { holdOpen(t, r) })
	s, logs := fastStream(url)
	s.Source.MaxEventBytes = 8 << 20
	s.Source.ResyncInterval.Duration = 50 * time.Millisecond
	s.sized = tuneGC(t)
	run := startStream(t, s, func(snap Snapshot) {
		if snap.Settings["v"] == "small" {
			once.Do(func() { close(handled) })
		}
	})
	eventually(t, 10*time.Second, func() string {
		if len(logged(logs, "resync fetched")) == 0 {
			return "the slow resync not dealt with yet"
		}
		return ""
	})
	if used := logged(logs, "resync fetched")[0].ContextMap()["used"]; used != false {
		t.Fatalf("the overtaken resync was used: %v", used)
	}
	if got := gcPercent(); got != normal {
		t.Fatalf("GOGC %d after an overtaken large resync, want %d: the newest settings are small", got, normal)
	}
	run.stop(t)
}
