package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"os"
	"runtime"
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
// Zero fields of Source and Backoff take the config file's defaults, except
// ResyncInterval: zero turns resync off (Follow turns it on).
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

	summaryEvery time.Duration // outage summary period; 0: one minute
	deferHash    bool          // hash snapshots after handing them over (runInto)

	// sized, if set, is told each payload's size before it is decoded,
	// and what it returns whether the payload was taken as the newest
	// settings (see tuneGC).
	sized func(int) func(bool)
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
	s := &Stream{Source: SourceConfig{URL: baseURL, Env: env}}
	s.Source.ResyncInterval.Duration = resyncDefault
	return s.Run(ctx, handler)
}

// Run follows the stream until ctx is cancelled (then it returns ctx's
// error) or, with max_retries set, until that many failures in a row (then
// an error wrapping ErrGaveUp). Every goroutine it starts has ended when it
// returns. Snapshots equal to the last one handled are not passed again.
func (s *Stream) Run(ctx context.Context, handler func(Snapshot)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	slot := newLatest[Snapshot]()
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer slot.close()
		runErr = s.follow(ctx, slot)
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

// runInto is Run for a caller with a newest-wins slot of its own, as the
// Agent has: the connection's goroutine puts each snapshot into slot
// itself, one goroutine hand-over fewer than through Run's handler (each
// costs the wake-up of another thread, tens of microseconds on a VM), and
// snapshots are not deduplicated. Their hash is computed after the
// hand-over (see decodeEventDeferred): call resolve. slot is not closed.
func (s *Stream) runInto(ctx context.Context, slot *latest[Snapshot]) error {
	deferred := *s
	deferred.deferHash = true
	return deferred.follow(ctx, slot)
}

// follow connects as s says and puts each snapshot into slot until ctx
// ends or the stream gives up.
func (s *Stream) follow(ctx context.Context, slot *latest[Snapshot]) error {
	s = s.withDefaults()
	client, err := s.httpClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	return s.connectLoop(ctx, client, slot)
}

// withDefaults returns a copy of s whose zero settings have their defaults.
func (s *Stream) withDefaults() *Stream {
	c := *s
	cfg := Config{Source: s.Source, Backoff: s.Backoff}
	cfg.setDefaults()
	c.Source, c.Backoff = cfg.Source, cfg.Backoff
	if c.summaryEvery <= 0 {
		c.summaryEvery = time.Minute
	}
	return &c
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
	retry := newRetryDelay(s.Backoff)
	out := &outageLog{log: s.log(), every: s.summaryEvery}
	conn := &connection{stream: s, client: client, put: slot.put, outage: out}
	everDelivered, fallback := false, s.fallbackOnce(slot)

	stopResync := s.startResync(ctx, client, slot)
	defer stopResync()

	for {
		delivered, err := conn.run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if delivered {
			retry.reset()
			everDelivered = true
		}
		if !everDelivered {
			fallback()
		}

		wait := conn.nextDelay(retry)
		out.failed(err, retry.failures, wait)
		s.notify(StreamEvent{Err: err, Failures: retry.failures, RetryIn: wait})
		if limit := s.Backoff.MaxRetries; limit > 0 && retry.failures >= limit {
			return fmt.Errorf("%w after %d failures in a row (backoff.max_retries = %d); last: %w",
				ErrGaveUp, retry.failures, limit, err)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// fallbackOnce returns a function that, the first time it is called,
// offers Fallback's snapshot, if any, to slot.
func (s *Stream) fallbackOnce(slot *latest[Snapshot]) func() {
	asked := false
	return func() {
		if asked || s.Fallback == nil {
			return
		}
		asked = true
		if snap, ok := s.Fallback(); ok {
			slot.put(snap)
		}
	}
}

// nextDelay counts a failure and returns the delay before the next try. A
// server's retry: field is a floor, but never beyond backoff.max: a server
// must not park its clients for days.
func (c *connection) nextDelay(r *retryDelay) time.Duration {
	return max(r.next(), min(c.retryFloor, c.stream.Backoff.Max.Duration))
}

// sleep waits for d and reports true, or false if ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryDelay counts failures in a row and chooses the delay before the next
// attempt with jpillora/backoff. It belongs to connectLoop's goroutine.
type retryDelay struct {
	b        backoff.Backoff
	failures int
}

func newRetryDelay(c BackoffConfig) *retryDelay {
	return &retryDelay{b: backoff.Backoff{
		Min:    c.Min.Duration,
		Max:    c.Max.Duration,
		Factor: c.Factor,
		Jitter: c.Jitter == nil || *c.Jitter,
	}}
}

// next counts one more failure and returns the delay before the next try.
//
// jpillora/backoff jitters attempt n over [min, min*factor^n], which for
// the first attempt is the single point min: agents dropped together by a
// server restart would all come back after exactly min. With jitter on,
// the window one step ahead is used, so the first delay lies in
// [min, min*factor] and later ones spread wider, capped at max.
func (r *retryDelay) next() time.Duration {
	r.failures++
	attempt := float64(r.failures - 1)
	if r.b.Jitter {
		attempt++
	}
	return r.b.ForAttempt(attempt)
}

// reset starts counting again; called once a connection delivered an event.
func (r *retryDelay) reset() { r.failures = 0 }

// outageLog logs a run of failures as an operator wants to read it: the
// first at info, then a summary every so often (the rest at debug), then
// the recovery at info. It belongs to connectLoop's goroutine.
type outageLog struct {
	log   *zap.Logger
	every time.Duration

	start, lastSummary time.Time // zero while connected
	attempts           int       // failed attempts in this outage
}

func (o *outageLog) failed(err error, failures int, wait time.Duration) {
	now := time.Now()
	if o.start.IsZero() {
		o.start, o.lastSummary, o.attempts = now, now, 1
		o.log.Info("disconnected", zap.Error(err), zap.Int("failures", failures), zap.Duration("retry_in", wait))
		return
	}
	o.attempts++
	if now.Sub(o.lastSummary) < o.every {
		o.log.Debug("reconnect failed", zap.Error(err), zap.Int("failures", failures),
			zap.Duration("retry_in", wait))
		return
	}
	o.lastSummary = now
	o.log.Warn("still disconnected", zap.Error(err), zap.Int("failures", failures),
		zap.Int("attempts", o.attempts), zap.Duration("since", now.Sub(o.start).Round(time.Millisecond)),
		zap.Duration("retry_in", wait))
}

func (o *outageLog) connected(url string) {
	if o.start.IsZero() {
		o.log.Info("connected", zap.String("url", url))
		return
	}
	o.log.Info("connected", zap.String("url", url), zap.Int("failed_attempts", o.attempts),
		zap.Duration("down_for", time.Since(o.start).Round(time.Millisecond)))
	o.start, o.attempts = time.Time{}, 0
}

// connection is the state kept across reconnects of one Run. It belongs to
// connectLoop's goroutine.
type connection struct {
	stream      *Stream
	client      *http.Client
	put         func(Snapshot) // never blocks
	outage      *outageLog
	lastEventID string
	retryFloor  time.Duration // from the server's last retry: field
	rejects     rejectLog     // thins the warnings for rejected events
}

// run makes one connection and reads it until it fails. delivered reports
// whether at least one valid snapshot arrived.
func (c *connection) run(ctx context.Context) (delivered bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	resp, err := c.connect(ctx, cancel)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	c.outage.connected(redactURL(resp.Request.URL))
	c.stream.notify(StreamEvent{Connected: true})

	idle := c.stream.Source.IdleTimeout.Duration
	body := newIdleReader(resp.Body, idle, func() {
		cancel(fmt.Errorf("no bytes for %s (source.idle_timeout)", idle))
	})
	defer body.stop()

	delivered, err = c.read(body)
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return delivered, cause
	}
	return delivered, err
}

// connect sends the stream request and checks the answer. Dialling, TLS,
// redirects and the response headers together get idle_timeout, so a
// server that accepts and then freezes is noticed. cancel ends ctx.
func (c *connection) connect(ctx context.Context, cancel context.CancelCauseFunc) (*http.Response, error) {
	s := c.stream
	req, err := s.newRequest(ctx, "/sse/", "text/event-stream")
	if err != nil {
		return nil, err
	}
	if sendableID(c.lastEventID) {
		req.Header.Set("Last-Event-ID", c.lastEventID)
	}

	resp, err := doWithin(c.client, req, cancel, s.Source.IdleTimeout.Duration)
	if err != nil {
		return nil, err
	}
	if err := checkResponse(resp, "text/event-stream"); err != nil {
		resp.Body.Close()
		if errors.Is(err, errAuth) && s.Source.TokenFile == "" {
			err = fmt.Errorf("%w (no source.token_file is set)", err)
		}
		return nil, err
	}
	return resp, nil
}

// doWithin sends req, whose context cancel ends, and gives the response
// headers (dialling, TLS and redirects included) at most d to arrive.
func doWithin(client *http.Client, req *http.Request, cancel context.CancelCauseFunc,
	d time.Duration) (*http.Response, error) {
	timer := time.AfterFunc(d, func() {
		cancel(fmt.Errorf("no response headers within %s (source.idle_timeout)", d))
	})
	resp, err := client.Do(req)
	timer.Stop()
	if err != nil {
		ctx := req.Context()
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return nil, cause
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return resp, nil
}

// read hands each message event of r to accept until r fails or ends.
func (c *connection) read(r io.Reader) (delivered bool, err error) {
	limit := int(c.stream.Source.MaxEventBytes)
	onRetry := func(d time.Duration) { c.retryFloor = d }
	for ev, err := range messages(resumeFrom(r, c.lastEventID), limit, &c.lastEventID, onRetry) {
		if errors.Is(err, bufio.ErrTooLong) {
			return delivered, fmt.Errorf("event larger than source.max_event_bytes (%d bytes): refused", limit)
		}
		if err != nil {
			return delivered, fmt.Errorf("read stream: %w", err)
		}
		if ev.Type != "" && ev.Type != "message" {
			c.stream.log().Debug("event of another type ignored", zap.String("type", ev.Type))
			continue
		}
		if c.accept(ev.Data) {
			delivered = true
		}
	}
	return delivered, errors.New("stream ended by the server")
}

// messages parses r by the WHATWG event-stream rules, through go-sse's
// Read, and yields each event that is dispatched, of any type. *lastID
// follows the last event ID buffer as events are dispatched, so that it
// can be sent back as Last-Event-ID. Reading stops at the first error.
//
// Read dispatches an event that set only id: or event:, with empty data;
// WHATWG does not dispatch an event whose data buffer is empty. messages
// skips every event with empty data instead. That also skips "data:" alone,
// which WHATWG dispatches with empty data; for this stream both carry no
// payload, so nothing is lost.
//
// r is read through a batchReader: see there why. It also tells onRetry,
// if not nil, of each retry: field.
func messages(r io.Reader, maxBytes int, lastID *string,
	onRetry func(time.Duration)) iter.Seq2[sse.Event, error] {
	return func(yield func(sse.Event, error) bool) {
		batches := newBatchReader(r, onRetry)
		for ev, err := range sse.Read(batches, &sse.ReadConfig{MaxEventSize: maxBytes}) {
			if err != nil {
				yield(ev, err)
				return
			}
			*lastID = ev.LastEventID
			if ev.Data == "" {
				continue
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// resumeFrom returns r with the last event ID of the previous connection
// set, as WHATWG keeps the last event ID buffer across reconnects. go-sse's
// Read starts every stream with an empty one, so an event without id: would
// report "" and the ID to send back would be lost. An id-only event in
// front sets it; a leading BOM of r is dropped first, since Read strips one
// only at the very start of its input.
func resumeFrom(r io.Reader, lastID string) io.Reader {
	if lastID == "" {
		return r
	}
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); string(bom) == "\xEF\xBB\xBF" {
		br.Discard(3)
	}
	return io.MultiReader(strings.NewReader("id: "+lastID+"\n\n"), br)
}

// accept decodes one event's data and hands it on; it reports whether the
// data was a valid snapshot. Rejections are logged with their reason,
// never with a value.
func (c *connection) accept(data string) bool {
	s := c.stream
	log := s.log()
	accepted := func(bool) {}
	if s.sized != nil {
		accepted = s.sized(len(data))
	}
	decode := decodeEvent
	if s.deferHash {
		decode = decodeEventDeferred
	}
	snap, dups, err := decode([]byte(data))
	if err == nil {
		err = s.checkEmpty(snap)
	}
	accepted(err == nil)
	if err != nil {
		if skipped, ok := c.rejects.allow(time.Now(), s.summaryEvery); ok {
			log.Warn("event rejected", zap.Error(err), zap.Int("size", len(data)),
				zap.Int("not_logged_before", skipped))
		} else {
			log.Debug("event rejected", zap.Error(err), zap.Int("size", len(data)))
		}
		s.notify(StreamEvent{Connected: true, Rejected: rejectReason(err)})
		return false
	}
	if len(dups) > 0 {
		log.Debug("repeated keys in event, the last one wins", zap.Strings("keys", dups))
	}
	c.put(snap)
	if snap.deferred != nil {
		// Let the receiver, woken by put onto this thread's run queue, run
		// here now; this goroutine hashes on the other core meanwhile.
		// Without the yield the receiver waits for the hash.
		runtime.Gosched()
		snap.deferred.compute()
	}
	if ce := log.Check(zap.DebugLevel, "event received"); ce != nil {
		snap, _ = snap.resolve()
		ce.Write(zap.Int("size", len(data)), zap.String("hash", snap.ShortHash()),
			zap.Int("keys", len(snap.Settings)))
	}
	return true
}

// ErrEmptySettings is the reason an empty settings map is refused: a
// server that lost its state must not wipe every rendered file.
var ErrEmptySettings = errors.New("settings map is empty; refused (set source.allow_empty = true to accept it)")

// checkEmpty refuses an empty settings map unless allow_empty is set.
func (s *Stream) checkEmpty(snap Snapshot) error {
	if len(snap.Settings) == 0 && !s.Source.AllowEmpty {
		return ErrEmptySettings
	}
	return nil
}

// rejectReason names err's kind for StreamEvent.Rejected.
func rejectReason(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, ErrEmptySettings):
		return "empty"
	case strings.Contains(msg, "UTF-8"):
		return "invalid_utf8"
	case strings.Contains(msg, "invalid JSON"):
		return "invalid_json"
	case strings.Contains(msg, "no \"settings\""):
		return "no_settings"
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

// errAuth marks a 401 or 403 answer.
var errAuth = errors.New("authentication failed")

// checkResponse accepts a 2xx other than 204 with the wanted content type.
// Otherwise the error names the status and quotes a short body excerpt.
func checkResponse(resp *http.Response, wantType string) error {
	code := resp.StatusCode
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		return fmt.Errorf("%w: HTTP %d: %s", errAuth, code, excerpt(resp.Body))
	}
	if code < 200 || code > 299 || code == http.StatusNoContent {
		return fmt.Errorf("HTTP %d: %s", code, excerpt(resp.Body))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != wantType {
		return fmt.Errorf("HTTP %d with content type %q, want %s: %s", code,
			resp.Header.Get("Content-Type"), wantType, excerpt(resp.Body))
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
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 5 {
				return fmt.Errorf("stopped after 5 redirects")
			}
			return nil
		},
	}, nil
}
