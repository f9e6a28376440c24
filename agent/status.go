package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// status keeps what /healthz and /metrics report. The stream goroutine and
// the Run goroutine update it and HTTP handlers read it: its fields are
// guarded by mu, and so are the metrics.
type status struct {
	mu         sync.Mutex
	grace      time.Duration
	connected  bool
	since      time.Time // when the current state began (start, connect or disconnect)
	everUp     bool
	lastError  string
	lastApply  applyReport
	lastReload reloadReport

	m metrics
}

type applyReport struct {
	Time  time.Time `json:"time"`
	Hash  string    `json:"hash,omitempty"`
	Error string    `json:"error,omitempty"`
}

type reloadReport struct {
	Time   time.Time `json:"time"`
	Target string    `json:"target,omitempty"`
	Result string    `json:"result,omitempty"` // "ok" or "error"
	Error  string    `json:"error,omitempty"`
}

// healthReport is the JSON body of /healthz.
type healthReport struct {
	Status     string        `json:"status"` // "ok" or "unhealthy"
	Reason     string        `json:"reason,omitempty"`
	Connected  bool          `json:"connected"`
	Since      time.Time     `json:"since"`
	LastError  string        `json:"last_error,omitempty"`
	LastApply  *applyReport  `json:"last_apply,omitempty"`
	LastReload *reloadReport `json:"last_reload,omitempty"`
}

func newStatus(version string) *status {
	return &status{since: time.Now(), m: newMetrics(version)}
}

// streamEvent is the Stream's Events hook; it must not block.
func (s *status) streamEvent(ev StreamEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Rejected != "" {
		s.m.rejected[ev.Rejected]++
		return
	}
	switch {
	case ev.Connected:
		if s.everUp {
			s.m.reconnects++
		}
		s.connected, s.everUp, s.since = true, true, time.Now()
	default:
		if s.connected {
			s.connected, s.since = false, time.Now()
		}
		if ev.Err != nil {
			s.lastError = ev.Err.Error()
		}
	}
}

// applyDone records the outcome of one apply.
func (s *status) applyDone(hash string, res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastApply = applyReport{Time: time.Now(), Hash: shortHash(hash)}
	if err != nil {
		s.lastApply.Error = err.Error()
		s.m.applyRejected++
		return
	}
	s.m.applied++
	s.m.lastApply = s.lastApply.Time
	s.m.applyDuration.observe(res.Duration.Seconds())
	s.m.filesWritten += uint64(len(res.Changed))
}

// reloadDone records the outcome of one target's reload; err is redacted.
func (s *status) reloadDone(target string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.reloads[[2]string{target, result}]++
	s.lastReload = reloadReport{Time: time.Now(), Target: target, Result: result}
	if err != nil {
		s.lastReload.Error = err.Error()
	}
}

// health reports whether the agent is healthy: connected, or disconnected
// (or not yet connected) for less than grace.
func (s *status) health() (int, healthReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := healthReport{Status: "ok", Connected: s.connected, Since: s.since, LastError: s.lastError}
	if !s.lastApply.Time.IsZero() {
		la := s.lastApply
		r.LastApply = &la
	}
	if !s.lastReload.Time.IsZero() {
		lr := s.lastReload
		r.LastReload = &lr
	}
	if s.connected {
		return http.StatusOK, r
	}
	down := time.Since(s.since)
	if down < s.grace {
		r.Reason = fmt.Sprintf("disconnected for %s, within status.grace (%s)", roundAge(down), s.grace)
		return http.StatusOK, r
	}
	r.Status = "unhealthy"
	r.Reason = fmt.Sprintf("not connected to the config server for %s (status.grace is %s)",
		roundAge(down), s.grace)
	if !s.everUp {
		r.Reason = fmt.Sprintf("never connected to the config server since the start %s ago (status.grace is %s)",
			roundAge(down), s.grace)
	}
	return http.StatusServiceUnavailable, r
}

// roundAge rounds d for a message: to 10ms below a minute, else seconds.
func roundAge(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// isConnected reports whether the stream is connected now.
func (s *status) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// starting marks the start of Run: the grace for a first connect begins.
func (s *status) starting() {
	s.mu.Lock()
	if !s.everUp {
		s.since = time.Now()
	}
	s.mu.Unlock()
}

func (s *status) setGrace(d time.Duration) {
	s.mu.Lock()
	s.grace = d
	s.mu.Unlock()
}

// handler serves /healthz and /metrics.
func (s *status) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		code, report := s.health()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.mu.Lock()
		defer s.mu.Unlock()
		s.m.write(w, s.connected)
	})
	return mux
}

// serve listens on addr and serves the status endpoint until the
// returned stop is called; stop waits for the server to end. A listen
// error is returned at once, naming the key.
func (s *status) serve(addr string, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status.listen: %w", err)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status endpoint stopped", zap.Error(err))
		}
	}()
	log.Info("status endpoint listening", zap.String("addr", ln.Addr().String()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// countReceived counts a snapshot that differs from the previous one.
func (s *status) countReceived() {
	s.mu.Lock()
	s.m.received++
	s.mu.Unlock()
}
