package agent

import (
	"path/filepath"
	"testing"
)

// WriteCache reuses the JSON that NewSnapshot hashed; a Snapshot built by
// hand has none and must still round-trip.
func TestWriteCacheWithAndWithoutCanonicalJSON(t *testing.T) {
	made, err := NewSnapshot(map[string]any{"port": int64(8080), "name": "web"}, "stream")
	if err != nil {
		t.Fatal(err)
	}
	byHand := Snapshot{Settings: made.Settings, Hash: made.Hash, Time: made.Time, Origin: "stream"}
	for name, s := range map[string]Snapshot{"NewSnapshot": made, "by hand": byHand} {
		path := filepath.Join(t.TempDir(), "cache.json")
		if err := WriteCache(path, "dev", s); err != nil {
			t.Fatalf("%s: WriteCache: %v", name, err)
		}
		got, err := ReadCache(path, "dev")
		if err != nil || got.Hash != made.Hash || got.Settings["port"] != int64(8080) {
			t.Errorf("%s: ReadCache = %s %v, %v; want hash %s and port 8080", name, got.ShortHash(),
				got.Settings, err, made.ShortHash())
		}
	}
}
