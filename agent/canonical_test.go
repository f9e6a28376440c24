package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sseconfd/sseconfd/render"
)

// The snapshot hash is taken over appendCanonical's output; it must be
// byte for byte what json.Marshal wrote before, or every cached snapshot
// would stop matching its hash.
func TestCanonicalEqualsMarshal(t *testing.T) {
	tricky := []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>",
		"\b\f\n\r\t\x00\x01\x1f\x7f", "line\u2028para\u2029", "é ü 日本 🙂", "bad \xff byte", "\xed\xa0\x80",
		strings.Repeat("x", 300)}
	values := []any{nil, true, false, int64(0), int64(-42), int64(math.MaxInt64), int64(math.MinInt64),
		uint64(math.MaxUint64), render.Float(1), render.Float(0.25), render.Float(1e21), render.Float(-1e-7),
		json.Number("123456789012345678901234567890"), 7, 3.5, []string{"a"}, map[string]int{"b": 1},
		[]any{}, []any{int64(1), "two", nil, []any{true}}, map[string]any{}, map[string]any(nil)}
	for _, s := range tricky {
		values = append(values, s, map[string]any{s: s})
	}
	for _, v := range values {
		wantCanonical(t, v)
	}
	wantCanonical(t, map[string]any{"settings": map[string]any{"values": values}, "z": "last", "a": "first"})
	wantCanonical(t, randomSettings(rand.New(rand.NewPCG(1, 2)), 3))
}

func wantCanonical(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", v, err)
	}
	got, err := appendCanonical(nil, v)
	if err != nil {
		t.Fatalf("appendCanonical(%#v): %v", v, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("appendCanonical(%#v) = %s, json.Marshal wrote %s", v, got, want)
	}
}

// randomSettings builds a nested settings map of random keys and values.
func randomSettings(r *rand.Rand, depth int) map[string]any {
	m := map[string]any{}
	for range r.IntN(40) {
		m[randomString(r)] = randomValue(r, depth)
	}
	return m
}

func randomValue(r *rand.Rand, depth int) any {
	switch n := r.IntN(8); {
	case n == 0 && depth > 0:
		return randomSettings(r, depth-1)
	case n == 1 && depth > 0:
		return []any{randomValue(r, depth-1), randomValue(r, depth-1)}
	case n == 2:
		return r.Int64() - r.Int64()
	case n == 3:
		return render.Float(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20)))
	case n == 4:
		return r.IntN(2) == 0
	default:
		return randomString(r)
	}
}

func randomString(r *rand.Rand) string {
	alphabet := []rune("ab<>&\"\\\n\t\x00\x7fé\u2028🙂")
	var b []byte
	for range r.IntN(12) {
		if r.IntN(20) == 0 {
			b = append(b, 0xff) // invalid UTF-8
			continue
		}
		b = utf8.AppendRune(b, alphabet[r.IntN(len(alphabet))])
	}
	return string(b)
}

// The cache file is written by hand; it must read as json.Marshal wrote it.
func TestEncodeCacheEqualsMarshal(t *testing.T) {
	snap, err := NewSnapshot(map[string]any{"a": "<b>", "n": int64(1), "f": render.Float(2)}, "stream")
	if err != nil {
		t.Fatal(err)
	}
	c := cacheFile{Env: "dev \"x\" <y>", Hash: snap.Hash, Time: snap.Time, Settings: snap.canonical}
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeCache(c, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encodeCache = %s, json.Marshal wrote %s", got, want)
	}
	// A large snapshot keeps no canonical JSON: it is encoded in place.
	c.Settings = nil
	got, err = encodeCache(c, snap.Settings, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encodeCache without canonical JSON = %s, json.Marshal wrote %s", got, want)
	}
}

// A snapshot over keepCanonicalMax keeps no canonical JSON; its cache is
// the same, and reads back with the same hash.
func TestLargeSnapshotCache(t *testing.T) {
	settings := map[string]any{}
	for i := range 60000 { // about 1.3 MB of JSON
		settings[fmt.Sprintf("key%06d", i)] = fmt.Sprintf("value %d", i)
	}
	snap, err := NewSnapshot(settings, "stream")
	if err != nil {
		t.Fatal(err)
	}
	if snap.canonical != nil || snap.size <= keepCanonicalMax {
		t.Fatalf("canonical kept (%d bytes) for a snapshot of %d bytes", len(snap.canonical), snap.size)
	}
	path := filepath.Join(t.TempDir(), "cache.json")
	if err := WriteCache(path, "dev", snap); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCache(path, "dev")
	if err != nil || back.Hash != snap.Hash || len(back.Settings) != len(settings) {
		t.Fatalf("ReadCache: hash %q, %d keys, %v; want %q, %d keys", back.Hash, len(back.Settings), err,
			snap.Hash, len(settings))
	}
}
