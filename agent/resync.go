package agent

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Fetch gets the current settings with GET /config/{env}. An unknown
// environment is an error naming the environment and the URL.
func (s *Stream) Fetch(ctx context.Context) (Snapshot, error) {
	client, err := s.httpClient()
	if err != nil {
		return Snapshot{}, err
	}
	return s.fetch(ctx, client, "fetch")
}

func (s *Stream) fetch(ctx context.Context, client *http.Client, origin string) (Snapshot, error) {
	req, err := s.newRequest(ctx, "/config/", "application/json")
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch settings: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Snapshot{}, fmt.Errorf("environment %q is unknown to the server at %s (HTTP 404)", s.Source.Env, redactURL(req.URL))
	}
	if err := checkResponse(resp, "application/json"); err != nil {
		return Snapshot{}, fmt.Errorf("fetch %s: %w", redactURL(req.URL), err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.Source.MaxEventBytes)+1))
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch %s: %w", redactURL(req.URL), err)
	}
	if len(data) > int(s.Source.MaxEventBytes) {
		return Snapshot{}, fmt.Errorf("fetch %s: body larger than source.max_event_bytes (%d bytes)", redactURL(req.URL), s.Source.MaxEventBytes)
	}
	snap, err := DecodeSettings(data, origin)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch %s: %w", redactURL(req.URL), err)
	}
	if len(snap.Settings) == 0 && !s.Source.AllowEmpty {
		return Snapshot{}, fmt.Errorf("fetch %s: settings map is empty; set source.allow_empty = true to accept it", redactURL(req.URL))
	}
	return snap, nil
}

// startResync fetches the settings every ResyncInterval, with up to 10%
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
		for {
			t := time.NewTimer(every + time.Duration(rand.Int64N(int64(every)/10+1)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			before := slot.version()
			snap, err := s.fetch(ctx, client, "resync")
			if err != nil {
				if ctx.Err() == nil {
					s.log().Debug("resync failed", zap.Error(err))
				}
				continue
			}
			// A stream event that came during the fetch is as new or newer.
			used := slot.putIfUnchanged(before, snap)
			s.log().Debug("resync fetched", zap.String("hash", snap.ShortHash()), zap.Bool("used", used))
		}
	}()
	return func() { cancel(); wg.Wait() }
}
