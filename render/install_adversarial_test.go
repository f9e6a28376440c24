package render

import (
	"os"
	"path/filepath"
	"strings"
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

// TestSymlinkPlantedByAnotherUserRefused plants a symlink at a destination
// as another user could in a directory it may write (an app's own config
// directory): the agent, running as root, would follow it and replace the
// file it points to (/etc/shadow, root's authorized_keys) with the
// rendered content. A link owned by neither root nor the agent's user is
// refused; the file it points to stays as it was.
func TestSymlinkPlantedByAnotherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a symlink another owner")
	}
	dir := t.TempDir()
	precious := put(t, filepath.Join(dir, "shadow"), "root:secret-hash\n", 0o600)
	link := filepath.Join(dir, "app.conf")
	if err := os.Symlink(precious, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}

	_, err := Stage([]File{file(link, "rendered\n", 0)})
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("Stage through a symlink owned by uid 65534: %v, want a refusal naming the owner", err)
	}
	wantContent(t, precious, "root:secret-hash\n")

	// A link root made (sites-enabled/x -> ../sites-available/x) is followed.
	if err := os.Lchown(link, 0, 0); err != nil {
		t.Fatal(err)
	}
	install(t, file(link, "rendered\n", 0))
	wantContent(t, precious, "rendered\n")
}
