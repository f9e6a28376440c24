package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jpillora/backoff"
	sse "github.com/tmaxmax/go-sse"
	"go.uber.org/zap"
)

// Stream follows one environment's event stream and hands every valid
// settings snapshot to a handler. It reconnects with exponential backoff and
// jitter, drops a connection that stays silent for IdleTimeout, refuses
// events above MaxEventBytes, and re-fetches GET /config/{env} every
// ResyncInterval to catch an event the server dropped.
//
// The handler runs in Run's goroutine while the socket is drained by
// another; snapshots that arrive while the handler is busy are coalesced so
// that it next sees only the newest. A Stream is used for one Run at a time.
type Stream struct {
	Source  SourceConfig
	Backoff BackoffConfig
	Log     *zap.Logger // nil: no logs

	// Events, if set, is told of connection changes; it must not block.
	Events func(StreamEvent)

	// Fallback, if set, is asked once for a snapshot to use when the first
	// connection fails before any snapshot arrived (the daemon's cache).
	Fallback func() (Snapshot, bool)
}

// StreamEvent reports a change of the connection's state.
type StreamEvent struct {
	Connected bool  // true: connected; false: a connection attempt or stream ended
	Err       error // why it ended, when not connected
	Failures  int   // failures in a row so far
	RetryIn   time.Duration
	Rejected  string // non-empty: an event was refused, for this reason
}

// ErrGaveUp is returned by Run when max_retries failures happened in a row.
var ErrGaveUp = errors.New("gave up reconnecting")

// Follow subscribes to env on the config server at baseURL with default
// settings and calls handler with each new snapshot until ctx is cancelled.
// It is the shortest way to use the SDK; see Stream for the details.
func Follow(ctx context.Context, baseURL, env string, handler func(Snapshot)) error {
	c := &Config{Source: SourceConfig{URL: baseURL, Env: env}}
	c.setDefaults()
	c.Source.ResyncInterval.Duration = resyncDefault
	s := &Stream{Source: c.Source, Backoff: c.Backoff}
	return s.Run(ctx, handler)
}

// Run follows the stream until ctx is cancelled (then it returns ctx's
// error) or, with max_retries set, until that many failures in a row (then
// an error wrapping ErrGaveUp). Every goroutine it starts has ended when it
// returns. Snapshots equal to the last one handled are not passed again.
func (s *Stream) Run(ctx context.Context, handler func(Snapshot)) error {
	client, err := s.httpClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	slot := newLatest[Snapshot]()
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer slot.close()
		runErr = s.connectLoop(ctx, client, slot)
	}()

	lastHash := ""
	for {
		snap, ok := slot.wait(ctx)
		if !ok {
			break
		}
		if snap.Hash == lastHash {
			continue
		}
		lastHash = snap.Hash
		handler(snap)
	}
	cancel()
	wg.Wait()
	return runErr
}

func (s *Stream) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

func (s *Stream) notify(ev StreamEvent) {
	if s.Events != nil {
		s.Events(ev)
	}
}

// connectLoop connects, reads until the stream fails, and waits out the
// backoff, until ctx ends or the retries are used up.
func (s *Stream) connectLoop(ctx context.Context, client *http.Client, slot *latest[Snapshot]) error {
	b := &backoff.Backoff{
		Min:    s.Backoff.Min.Duration,
		Max:    s.Backoff.Max.Duration,
		Factor: s.Backoff.Factor,
		Jitter: s.Backoff.Jitter == nil || *s.Backoff.Jitter,
	}
	log := s.log()
	conn := &connection{stream: s, client: client, slot: slot}
	failures := 0
	everDelivered, askedFallback := false, false
	var outageStart, lastSummary time.Time

	stopResync := s.startResync(ctx, client, slot)
	defer stopResync()

	for {
		delivered, err := conn.run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if delivered {
			b.Reset()
			failures = 0
			everDelivered = true
		}
		if !everDelivered && !askedFallback && s.Fallback != nil {
			askedFallback = true
			if snap, ok := s.Fallback(); ok {
				slot.put(snap)
			}
		}
		failures++
		wait := b.Duration()
		s.notify(StreamEvent{Err: err, Failures: failures, RetryIn: wait})

		now := time.Now()
		switch {
		case failures == 1:
			outageStart, lastSummary = now, now
			log.Info("disconnected", zap.Error(err), zap.Duration("retry_in", wait))
		case now.Sub(lastSummary) >= time.Minute:
			lastSummary = now
			log.Warn("still disconnected", zap.Error(err), zap.Int("failures", failures),
				zap.Duration("since", now.Sub(outageStart).Round(time.Second)), zap.Duration("retry_in", wait))
		default:
			log.Debug("reconnect failed", zap.Error(err), zap.Int("failures", failures), zap.Duration("retry_in", wait))
		}
		if max := s.Backoff.MaxRetries; max > 0 && failures >= max {
			return fmt.Errorf("%w after %d failures in a row: %w", ErrGaveUp, failures, err)
		}

		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// connection is the state kept across reconnects of one Run.
type connection struct {
	stream      *Stream
	client      *http.Client
	slot        *latest[Snapshot]
	lastEventID string
}

// run makes one connection and reads it until it fails. delivered reports
// whether at least one valid snapshot arrived.
func (c *connection) run(ctx context.Context) (delivered bool, err error) {
	s := c.stream
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	req, err := s.newRequest(ctx, "/sse/", "text/event-stream")
	if err != nil {
		return false, err
	}
	if c.lastEventID != "" {
		req.Header.Set("Last-Event-ID", c.lastEventID)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return false, cause
		}
		return false, fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, "text/event-stream"); err != nil {
		return false, err
	}

	log := s.log()
	log.Info("connected", zap.String("url", redactURL(req.URL)))
	s.notify(StreamEvent{Connected: true})

	idle := s.Source.IdleTimeout.Duration
	body := newIdleReader(resp.Body, idle, func() {
		cancel(fmt.Errorf("no bytes for %s (idle_timeout)", idle))
	})
	defer body.stop()

	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: int(s.Source.MaxEventBytes)}) {
		if err != nil {
			return delivered, c.readError(ctx, err)
		}
		c.lastEventID = ev.LastEventID
		if ev.Type != "" && ev.Type != "message" {
			log.Debug("event of another type ignored", zap.String("type", ev.Type))
			continue
		}
		if ok := c.accept([]byte(ev.Data)); ok {
			delivered = true
		}
	}
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return delivered, cause
	}
	return delivered, errors.New("stream ended by the server")
}

// accept decodes one event's data and offers it to the slot.
func (c *connection) accept(data []byte) bool {
	s := c.stream
	log := s.log()
	snap, err := DecodeEvent(data)
	if err == nil && len(snap.Settings) == 0 && !s.Source.AllowEmpty {
		err = errors.New("settings map is empty; set source.allow_empty = true to accept it")
	}
	if err != nil {
		log.Warn("event rejected", zap.Error(err), zap.Int("size", len(data)))
		s.notify(StreamEvent{Connected: true, Rejected: rejectReason(err)})
		return false
	}
	log.Debug("event received", zap.Int("size", len(data)), zap.String("hash", snap.ShortHash()),
		zap.Int("keys", len(snap.Settings)))
	c.slot.put(snap)
	return true
}

// readError names why reading the stream stopped.
func (c *connection) readError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return cause
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("event larger than source.max_event_bytes (%d bytes): refused", c.stream.Source.MaxEventBytes)
	}
	return fmt.Errorf("read stream: %w", err)
}

func rejectReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "invalid JSON"):
		return "invalid_json"
	case strings.Contains(msg, "no \"settings\""):
		return "no_settings"
	case strings.Contains(msg, "empty"):
		return "empty"
	default:
		return "wrong_type"
	}
}

// newRequest builds a GET of base URL + prefix + env with the configured
// token and headers. The token file is read now, so a rotated token is used
// at the next connect.
func (s *Stream) newRequest(ctx context.Context, prefix, accept string) (*http.Request, error) {
	u := strings.TrimSuffix(s.Source.URL, "/") + prefix + url.PathEscape(s.Source.Env)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("source.url: %w", err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Cache-Control", "no-cache")
	for k, v := range s.Source.Headers {
		req.Header.Set(k, v)
	}
	if s.Source.TokenFile != "" {
		tok, err := os.ReadFile(s.Source.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read source.token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	return req, nil
}

// checkResponse accepts a 2xx other than 204 with the wanted content type.
func checkResponse(resp *http.Response, wantType string) error {
	code := resp.StatusCode
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		return fmt.Errorf("authentication failed: HTTP %d: %s", code, excerpt(resp.Body))
	}
	if code < 200 || code > 299 || code == http.StatusNoContent {
		return fmt.Errorf("HTTP %d: %s", code, excerpt(resp.Body))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != wantType {
		return fmt.Errorf("content type %q, want %s: %s", resp.Header.Get("Content-Type"), wantType, excerpt(resp.Body))
	}
	return nil
}

// excerpt reads at most 200 bytes of an error body, on one line.
func excerpt(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 200))
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if s == "" {
		return "(empty body)"
	}
	return fmt.Sprintf("%q", s)
}

// redactURL drops user info and query from u for logs.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// httpClient builds the client for the stream and the resync fetch: TLS as
// configured, redirects limited to 5, and no overall timeout (the stream is
// long-lived; idle_timeout guards it).
func (s *Stream) httpClient() (*http.Client, error) {
	tlsConf := &tls.Config{InsecureSkipVerify: s.Source.InsecureSkipVerify}
	if s.Source.CAFile != "" {
		pem, err := os.ReadFile(s.Source.CAFile)
		if err != nil {
			return nil, fmt.Errorf("source.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("source.ca_file: %s holds no PEM certificate", s.Source.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if s.Source.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.Source.CertFile, s.Source.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("source.cert_file/key_file: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	if s.Source.InsecureSkipVerify {
		s.log().Warn("TLS verification is off (source.insecure_skip_verify = true)")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConf
	transport.ResponseHeaderTimeout = s.Source.IdleTimeout.Duration
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("stopped after 5 redirects")
			}
			return nil
		},
	}, nil
}
