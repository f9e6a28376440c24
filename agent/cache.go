package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sseconfd/sseconfd/render"
)

// cacheFile is the on-disk form of the last applied snapshot.
type cacheFile struct {
	Env      string          `json:"env"`
	Hash     string          `json:"hash"`
	Time     time.Time       `json:"time"`
	Settings json.RawMessage `json:"settings"`
}

// WriteCache saves s as the last-known-good snapshot at path, atomically
// and with mode 0600 (settings may hold secrets).
func WriteCache(path, env string, s Snapshot) error {
	data, err := encodeCache(cacheFile{Env: env, Hash: s.Hash, Time: s.Time, Settings: s.canonical},
		s.Settings, s.size)
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	txn, err := render.Stage([]render.File{{Path: path, Content: data, Mode: 0o600, UID: -1, GID: -1}})
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	defer txn.Abort()
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	return nil
}

// encodeCache writes c as json.Marshal does, into a buffer of the right
// size, with c.Settings (compact JSON) copied as it is: json.Marshal
// copied the settings twice more and regrew its buffer, megabytes of
// garbage at a moment when the rendered files are still in memory.
//
// When c.Settings is nil (a large snapshot keeps no canonical JSON), the
// settings are encoded canonically straight into the buffer, whose size
// is estimated by size, instead of into one of their own that is then
// copied.
func encodeCache(c cacheFile, settings map[string]any, size int) ([]byte, error) {
	when, err := c.Time.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, max(len(c.Settings), size)+len(c.Env)+len(c.Hash)+len(when)+64)
	b = appendJSONString(append(b, `{"env":`...), c.Env)
	b = appendJSONString(append(b, `,"hash":`...), c.Hash)
	b = append(append(b, `,"time":`...), when...)
	b = append(b, `,"settings":`...)
	if c.Settings != nil {
		b = append(b, c.Settings...)
	} else if b, err = appendCanonical(b, settings); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// ReadCache loads the snapshot saved at path for env. The error says why
// a cache is unusable: missing, corrupt, or saved for another environment.
func ReadCache(path, env string) (Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, err
	}
	var c cacheFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return Snapshot{}, fmt.Errorf("cache %s is corrupt: %v", path, err)
	}
	if c.Env != env {
		return Snapshot{}, fmt.Errorf("cache %s holds environment %q, not %q", path, c.Env, env)
	}
	snap, err := DecodeSettings(c.Settings, "cache")
	if err != nil {
		return Snapshot{}, fmt.Errorf("cache %s is corrupt: %w", path, err)
	}
	if snap.Hash != c.Hash {
		return Snapshot{}, fmt.Errorf("cache %s is corrupt: its hash does not match its settings", path)
	}
	snap.Time = c.Time
	return snap, nil
}
