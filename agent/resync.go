package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrUnknownEnv is wrapped by Fetch's error when the server answers 404:
// it does not know the environment.
var ErrUnknownEnv = errors.New("environment unknown to the server")

// Fetch gets the current settings with GET /config/{env}. An unknown
// environment is an error wrapping ErrUnknownEnv that names the
// environment and the URL.
func (s *Stream) Fetch(ctx context.Context) (Snapshot, error) {
	s = s.withDefaults()
	client, err := s.httpClient()
	if err != nil {
		return Snapshot{}, err
	}
	defer client.CloseIdleConnections()
	snap, taken, err := s.fetch(ctx, client, "fetch")
	taken(err == nil)
	return snap, err
}

// payloadError marks a fetched body that arrived but was refused.
type payloadError struct{ err error }

func (e *payloadError) Error() string { return e.err.Error() }
func (e *payloadError) Unwrap() error { return e.err }

// fetch gets the settings; the caller must tell taken whether they
// became the newest settings (see Stream.sized).
func (s *Stream) fetch(ctx context.Context, client *http.Client, origin string) (
	snap Snapshot, taken func(bool), err error) {
	taken = func(bool) {}
	data, where, err := s.fetchBody(ctx, client)
	if err != nil {
		return Snapshot{}, taken, err
	}
	if s.sized != nil {
		taken = s.sized(len(data))
	}
	snap, dups, err := decodeSettings(data, origin)
	if err == nil {
		err = s.checkEmpty(snap)
	}
	if err != nil {
		return Snapshot{}, taken, fmt.Errorf("fetch %s: %w", where, &payloadError{err})
	}
	if len(dups) > 0 {
		s.log().Debug("repeated keys in fetched settings, the last one wins", zap.Strings("keys", dups))
	}
	return snap, taken, nil
}

// fetchBody reads the body of GET /config/{env}, at most
// source.max_event_bytes; where is the URL for errors, redacted.
func (s *Stream) fetchBody(ctx context.Context, client *http.Client) (data []byte, where string, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := s.newRequest(ctx, "/config/", "application/json")
	if err != nil {
		return nil, "", err
	}
	where = redactURL(req.URL)
	idle := s.Source.IdleTimeout.Duration
	resp, err := doWithin(client, req, cancel, idle)
	if err != nil {
		return nil, where, fmt.Errorf("fetch %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, where, fmt.Errorf("fetch %s: %w: %q (HTTP 404)", where, ErrUnknownEnv, s.Source.Env)
	}
	if err := checkResponse(resp, "application/json"); err != nil {
		return nil, where, fmt.Errorf("fetch %s: %w", where, err)
	}

	limit := int(s.Source.MaxEventBytes)
	body := newIdleReader(resp.Body, idle, func() {
		cancel(fmt.Errorf("no bytes for %s (source.idle_timeout)", idle))
	})
	defer body.stop()
	data, err = readBody(body, resp.ContentLength, limit)
	if cause := context.Cause(ctx); err != nil && cause != nil {
		err = cause
	}
	if err != nil {
		return nil, where, fmt.Errorf("fetch %s: %w", where, err)
	}
	if len(data) > limit {
		return nil, where, fmt.Errorf("fetch %s: %w", where, &payloadError{
			fmt.Errorf("body larger than source.max_event_bytes (%d bytes)", limit)})
	}
	return data, where, nil
}

// startResync fetches the settings every ResyncInterval, plus up to 10%
// jitter, and offers them to slot; Run drops them if they equal the last
// ones handled. It returns a function that stops it and waits.
func (s *Stream) startResync(ctx context.Context, client *http.Client, slot *latest[Snapshot]) (stop func()) {
	every := s.Source.ResyncInterval.Duration
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sleep(ctx, every+time.Duration(rand.Int64N(int64(every)/10+1))) {
			s.resyncOnce(ctx, client, slot)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// resyncOnce fetches the settings and offers them to slot, unless a stream
// event came in meanwhile: that one is as new or newer.
func (s *Stream) resyncOnce(ctx context.Context, client *http.Client, slot *latest[Snapshot]) {
	log := s.log()
	before := slot.version()
	snap, taken, err := s.fetch(ctx, client, "resync")
	used := false
	defer func() { taken(used) }() // an event that came meanwhile is newer
	var payload *payloadError
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, ErrUnknownEnv):
		log.Info("resync found the environment unknown; settings unchanged", zap.Error(err))
		return
	case errors.As(err, &payload):
		log.Warn("resync rejected; settings unchanged", zap.Error(err))
		return
	case err != nil:
		log.Debug("resync failed", zap.Error(err))
		return
	}
	used = slot.putIfUnchanged(before, snap)
	log.Debug("resync fetched", zap.String("hash", snap.ShortHash()), zap.Bool("used", used))
}

// readBody reads a body of at most limit+1 bytes. A known length
// (Content-Length) sizes the buffer at once: io.ReadAll's buffer grows
// step by step, and read 2.4 MB of settings through 10 MB of buffers.
func readBody(r io.Reader, length int64, limit int) ([]byte, error) {
	r = io.LimitReader(r, int64(limit)+1)
	if length < 0 || length > int64(limit) {
		return io.ReadAll(r)
	}
	// bytes.Buffer reads while at least MinRead bytes are free: with them
	// spare, a body of the announced length needs no second buffer.
	b := bytes.NewBuffer(make([]byte, 0, int(length)+bytes.MinRead))
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}
