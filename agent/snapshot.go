package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sseconfd/sseconfd/render"
)

// Snapshot is one complete settings map received from the server.
type Snapshot struct {
	Settings map[string]any // numbers normalised as render.ParseSettings does
	Hash     string         // hex SHA-256 of the settings' canonical JSON
	Time     time.Time      // when it was received
	Origin   string         // "stream", "resync", "fetch" or "cache"

	// canonical is the JSON that Hash was computed over, kept so that the
	// cache is written without encoding the settings again; nil when the
	// Snapshot was not made by NewSnapshot, or when it is over
	// keepCanonicalMax bytes. size is its length (an estimate before
	// resolve).
	canonical []byte
	size      int

	// deferred, when set, computes Hash and canonical on the goroutine that
	// calls resolve first (see decodeEventDeferred); Hash is "" until then.
	deferred *deferredHash
}

// deferredHash is the hash of a snapshot, computed once, by whichever
// goroutine asks first.
type deferredHash struct {
	once      sync.Once
	settings  map[string]any
	sizeHint  int
	hash      string
	canonical []byte
	size      int
	err       error
}

func (d *deferredHash) compute() {
	d.once.Do(func() {
		h, err := newSnapshot(d.settings, "", d.sizeHint)
		d.hash, d.canonical, d.size, d.err = h.Hash, h.canonical, h.size, err
	})
}

// resolve returns s with its Hash, computing it if it was deferred and no
// other goroutine has yet. The error is the hash's (it does not happen
// for settings decoded from JSON).
func (s Snapshot) resolve() (Snapshot, error) {
	if s.deferred == nil {
		return s, nil
	}
	d := s.deferred
	d.compute()
	if d.err != nil {
		return s, d.err
	}
	s.Hash, s.canonical, s.size, s.deferred = d.hash, d.canonical, d.size, nil
	return s, nil
}

// ShortHash is the first 12 hex digits of Hash, for logs.
func (s Snapshot) ShortHash() string {
	if len(s.Hash) < 12 {
		return s.Hash
	}
	return s.Hash[:12]
}

// NewSnapshot hashes settings into a Snapshot.
func NewSnapshot(settings map[string]any, origin string) (Snapshot, error) {
	return newSnapshot(settings, origin, 0)
}

// newSnapshot is NewSnapshot with the expected size of the canonical JSON
// (that of the JSON it was decoded from), so its buffer is not regrown.
func newSnapshot(settings map[string]any, origin string, sizeHint int) (Snapshot, error) {
	canonical, err := appendCanonical(make([]byte, 0, sizeHint), settings)
	if err != nil {
		return Snapshot{}, fmt.Errorf("hash settings: %w", err)
	}
	sum := sha256.Sum256(canonical)
	size := len(canonical)
	if size > keepCanonicalMax {
		canonical = nil
	}
	return Snapshot{Settings: settings, Hash: hex.EncodeToString(sum[:]), Time: time.Now(),
		Origin: origin, canonical: canonical, size: size}, nil
}

// keepCanonicalMax is the largest canonical JSON a Snapshot keeps for the
// cache. A larger one is encoded again when the cache is written (some 50
// ms at 100,000 keys) rather than held through the whole apply: at
// 100,000 keys it was 2.4 MB of the heap at its peak, which the GC's
// headroom doubles.
const keepCanonicalMax = 1 << 20

// DecodeEvent decodes a stream event's data, {"settings": {...}}. The error
// says what was wrong (invalid JSON or UTF-8 at an offset, no settings key,
// settings of the wrong type) and never quotes a value. A key repeated in
// one object keeps its last value.
func DecodeEvent(data []byte) (Snapshot, error) {
	snap, _, err := decodeEvent(data)
	return snap, err
}

// decodeEvent is DecodeEvent that also names the repeated keys.
func decodeEvent(data []byte) (Snapshot, []string, error) {
	snap, dups, err := decodeEventDeferred(data)
	if err == nil {
		snap, err = snap.resolve()
	}
	return snap, dups, err
}

// decodeEventDeferred is decodeEvent with the hash left to compute (see
// Snapshot.resolve): the agent's stream goroutine hands the snapshot over
// first and hashes it after, while the agent renders and installs on the
// other core. Hashing is a third of decoding: the keys sorted and written
// out as canonical JSON.
func decodeEventDeferred(data []byte) (Snapshot, []string, error) {
	v, dups, err := render.DecodeJSONDuplicates(data)
	if err != nil {
		return Snapshot{}, nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Snapshot{}, nil, fmt.Errorf("event data is a JSON %s, want an object with a \"settings\" key",
			render.KindOf(v))
	}
	raw, ok := obj["settings"]
	if !ok {
		return Snapshot{}, nil, fmt.Errorf("event has no \"settings\" key (keys: %s)", keyList(obj))
	}
	settings, ok := raw.(map[string]any)
	if !ok {
		return Snapshot{}, nil, fmt.Errorf("event's \"settings\" is a JSON %s, want an object", render.KindOf(raw))
	}
	snap := Snapshot{Settings: settings, Time: time.Now(), Origin: "stream",
		size: len(data), deferred: &deferredHash{settings: settings, sizeHint: len(data)}}
	return snap, dups, nil
}

// DecodeSettings decodes a bare settings object, as GET /config/{env} sends it.
func DecodeSettings(data []byte, origin string) (Snapshot, error) {
	snap, _, err := decodeSettings(data, origin)
	return snap, err
}

// decodeSettings is DecodeSettings that also names the repeated keys.
func decodeSettings(data []byte, origin string) (Snapshot, []string, error) {
	v, dups, err := render.DecodeJSONDuplicates(data)
	if err != nil {
		return Snapshot{}, nil, err
	}
	settings, ok := v.(map[string]any)
	if !ok {
		return Snapshot{}, nil, fmt.Errorf("settings are a JSON %s, want an object", render.KindOf(v))
	}
	snap, err := newSnapshot(settings, origin, len(data))
	return snap, dups, err
}

// keyList names at most ten keys of obj, sorted, for error messages.
func keyList(obj map[string]any) string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sort.Strings(keys)
	if len(keys) > 10 {
		keys = append(keys[:10], "...")
	}
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}
