package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseconfd/sseconfd/configserver"
)

// herdClient is one of many SDK clients following the same server.
type herdClient struct {
	version   atomic.Int64 // the "version" setting last handled
	mu        sync.Mutex
	attempts  []time.Time // when each retry was due, from the failures' RetryIn
	connected []time.Time
}

func (c *herdClient) record(ev StreamEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ev.Connected && ev.Rejected == "":
		c.connected = append(c.connected, time.Now())
	case !ev.Connected:
		c.attempts = append(c.attempts, time.Now().Add(ev.RetryIn))
	}
}

// reconnectAfter returns when the attempt that reconnected after t was
// due, so the client's own timing and not the server's speed is measured.
func (c *herdClient) reconnectAfter(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.connected, func(at time.Time) bool { return at.After(t) })
	if i < 0 {
		return time.Time{}, false
	}
	var due time.Time
	for _, at := range c.attempts {
		if at.Before(c.connected[i]) {
			due = at
		}
	}
	return due, !due.IsZero()
}

// serveOn serves handler on a new listener at addr ("127.0.0.1:0" for any
// port) and returns the server and its address.
func serveOn(t testing.TB, addr string, handler http.Handler) (*http.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// TestHerdReconnectsSpread runs 500 SDK clients against the stand-in
// server, restarts it on the same port with new settings, and checks that
// the clients come back spread over time, not in one burst, and that every
// one of them ends with the settings posted after the restart.
func TestHerdReconnectsSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("500 clients and a server restart take a few seconds; skipped with -short")
	}
	const clients = 500
	// With min 400ms the check tells jitter from noise on a busy machine:
	// without jitter these clients' retries fall within about 50ms.
	const minDelay, factor = 400 * time.Millisecond, 2
	firstWindow := time.Duration(factor-1) * minDelay // first delays lie in [min, min*factor]

	cs := configserver.New()
	post(t, cs, "dev", map[string]any{"version": 1})
	first, addr := serveOn(t, "127.0.0.1:0", cs)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	herd := make([]*herdClient, clients)
	jitter := true
	for i := range herd {
		c := &herdClient{}
		herd[i] = c
		s := &Stream{
			Source: SourceConfig{URL: "http://" + addr, Env: "dev"},
			Backoff: BackoffConfig{Min: Duration{minDelay}, Max: Duration{2 * time.Second},
				Factor: factor, Jitter: &jitter},
			Events: c.record,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(ctx, func(snap Snapshot) { c.version.Store(snap.Settings["version"].(int64)) })
		}()
	}
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%d clients' Run did not return within 10s of cancel", clients)
		}
	})
	eventually(t, 20*time.Second, herdAt(herd, 1))

	// The restart: every connection drops, the port refuses for a second,
	// then a fresh server (which lost its state) comes back and is posted
	// new settings.
	first.Close()
	time.Sleep(time.Second)
	restarted := time.Now()
	serveOn(t, addr, configserver.New())
	postHTTP(t, "http://"+addr, "dev", map[string]any{"version": 2})
	eventually(t, 20*time.Second, herdAt(herd, 2))

	var after []time.Duration
	for _, c := range herd {
		at, ok := c.reconnectAfter(restarted)
		if !ok {
			t.Fatalf("a client has version 2 but no reconnect recorded")
		}
		after = append(after, at.Sub(restarted))
	}
	slices.Sort(after)
	p10, p50, p90 := after[clients/10], after[clients/2], after[clients*9/10]
	t.Logf("%d reconnect attempts due after the restart: first %s, p10 %s, p50 %s, p90 %s, last %s",
		clients, after[0].Round(time.Millisecond), p10.Round(time.Millisecond), p50.Round(time.Millisecond),
		p90.Round(time.Millisecond), after[clients-1].Round(time.Millisecond))
	if spread := p90 - p10; spread < firstWindow/2 {
		t.Errorf("reconnects p10..p90 span %s, want at least half the first backoff window (%s)",
			spread, firstWindow/2)
	}
}

// herdAt is a cond for eventually: every client handled version v.
func herdAt(herd []*herdClient, v int64) func() string {
	return func() string {
		behind := 0
		for _, c := range herd {
			if c.version.Load() != v {
				behind++
			}
		}
		if behind > 0 {
			return fmt.Sprintf("%d of %d clients have not handled version %d", behind, len(herd), v)
		}
		return ""
	}
}
