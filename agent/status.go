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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// status keeps what /healthz and /metrics report. The stream goroutine and
// the Run goroutine update it and HTTP handlers read it: its fields are
// guarded by mu, and the Prometheus metrics are safe for concurrent use.
type status struct {
	mu         sync.Mutex
	grace      time.Duration
	connected  bool
	since      time.Time // when the current state began (start, connect or disconnect)
	everUp     bool
	lastError  string
	lastApply  applyReport
	lastReload reloadReport

	reg           *prometheus.Registry
	up            prometheus.Gauge
	reconnects    prometheus.Counter
	received      prometheus.Counter
	rejected      *prometheus.CounterVec
	applied       prometheus.Counter
	applyRejected prometheus.Counter
	lastApplyTime prometheus.Gauge
	applyDuration prometheus.Histogram
	reloads       *prometheus.CounterVec
	filesWritten  prometheus.Counter
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
	s := &status{since: time.Now(), reg: prometheus.NewRegistry()}
	s.up = prometheus.NewGauge(gauge("connected",
		"1 while the event stream is connected, else 0."))
	s.reconnects = prometheus.NewCounter(counter("reconnects_total",
		"Connections made after the first."))
	s.received = prometheus.NewCounter(counter("events_received_total",
		"Valid settings snapshots received that differ from the previous one (stream, resync or cache)."))
	s.rejected = prometheus.NewCounterVec(counter("events_rejected_total",
		"Stream events refused, by reason."), []string{"reason"})
	s.applied = prometheus.NewCounter(counter("updates_applied_total",
		"Snapshots rendered and installed (including those that changed no file)."))
	s.applyRejected = prometheus.NewCounter(counter("updates_rejected_total",
		"Snapshots not applied: render, install or check failed."))
	s.lastApplyTime = prometheus.NewGauge(gauge("last_apply_timestamp_seconds",
		"Unix time of the last successful apply."))
	s.applyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "sseconfd", Name: "apply_duration_seconds",
		Help:    "Time to render, install, check and reload one snapshot.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
	s.reloads = prometheus.NewCounterVec(counter("reloads_total",
		"Reloads of targets, by target and result (ok, error)."), []string{"target", "result"})
	s.filesWritten = prometheus.NewCounter(counter("files_written_total",
		"Destination files replaced."))
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "sseconfd", Name: "build_info", Help: "Always 1; the version is a label.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	s.reg.MustRegister(s.up, s.reconnects, s.received, s.rejected, s.applied, s.applyRejected, s.lastApplyTime,
		s.applyDuration, s.reloads, s.filesWritten, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, reason := range []string{"invalid_json", "invalid_utf8", "no_settings", "wrong_type", "empty"} {
		s.rejected.WithLabelValues(reason)
	}
	return s
}

func counter(name, help string) prometheus.CounterOpts {
	return prometheus.CounterOpts{Namespace: "sseconfd", Name: name, Help: help}
}

func gauge(name, help string) prometheus.GaugeOpts {
	return prometheus.GaugeOpts{Namespace: "sseconfd", Name: name, Help: help}
}

// streamEvent is the Stream's Events hook; it must not block.
func (s *status) streamEvent(ev StreamEvent) {
	if ev.Rejected != "" {
		s.rejected.WithLabelValues(ev.Rejected).Inc()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ev.Connected:
		if s.everUp {
			s.reconnects.Inc()
		}
		s.connected, s.everUp, s.since = true, true, time.Now()
		s.up.Set(1)
	default:
		if s.connected {
			s.connected, s.since = false, time.Now()
		}
		if ev.Err != nil {
			s.lastError = ev.Err.Error()
		}
		s.up.Set(0)
	}
}

// applyDone records the outcome of one apply.
func (s *status) applyDone(hash string, res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastApply = applyReport{Time: time.Now(), Hash: shortHash(hash)}
	if err != nil {
		s.lastApply.Error = err.Error()
		s.applyRejected.Inc()
		return
	}
	s.applied.Inc()
	s.lastApplyTime.Set(float64(s.lastApply.Time.UnixNano()) / 1e9)
	s.applyDuration.Observe(res.Duration.Seconds())
	s.filesWritten.Add(float64(len(res.Changed)))
}

// reloadDone records the outcome of one target's reload; err is redacted.
func (s *status) reloadDone(target string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.reloads.WithLabelValues(target, result).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
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
		r.Reason = fmt.Sprintf("never connected to the config server since the start %s ago (status.grace is %s)", roundAge(down), s.grace)
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
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
