package render

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveStaleOnlyNamedFiles checks that RemoveStale with names leaves
// the temporary files of other destinations alone: another agent writing
// to the same directory may be about to rename them into place.
func TestRemoveStaleOnlyNamedFiles(t *testing.T) {
	dir := t.TempDir()
	mine := []string{".sseconfd.a.conf.1", ".sseconfd.a.conf.99"}
	others := []string{".sseconfd.b.conf.1", ".sseconfd.a.conf.bak.7", ".sseconfd.xa.conf.3"}
	for _, n := range append(append([]string{}, mine...), others...) {
		put(t, filepath.Join(dir, n), "x", 0o644)
	}

	removed, err := RemoveStale(dir, "a.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(mine) {
		t.Errorf("RemoveStale(%s, a.conf) removed %v, want %v", dir, removed, join(dir, mine...))
	}
	for _, p := range join(dir, others...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("RemoveStale(%s, a.conf) removed %s, another file's: %v", dir, p, err)
		}
	}
}
