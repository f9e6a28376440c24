package render

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// bindFile bind-mounts a new file holding content over dest, as a
// container runtime does with a single config file, and returns the
// mounted file's path.
func bindFile(t *testing.T, dest, content string) string {
	t.Helper()
	source := put(t, filepath.Join(t.TempDir(), "source.conf"), content, 0o644)
	mount(t, source, dest, "", syscall.MS_BIND, "")
	return source
}

func TestBindMountedDestination(t *testing.T) {
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "under the mount\n", 0o644)
	other := put(t, filepath.Join(dir, "other.conf"), "old other\n", 0o644)
	bindFile(t, dest, "old\n")

	// Without in_place: a clear error, nothing changed, no temp file.
	txn, err := Stage([]File{file(other, "new other\n", 0), file(dest, "new\n", 0)})
	if err != nil {
		t.Fatal(err)
	}
	err = txn.Commit()
	txn.Abort()
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), dest) ||
		!strings.Contains(err.Error(), "in_place = true") || !strings.Contains(err.Error(), "mount") {
		t.Fatalf("Commit error = %v, want EBUSY naming %s, the mount and in_place", err, dest)
	}
	wantContent(t, dest, "old\n")
	wantContent(t, other, "old other\n")
	noTemps(t, dir)
}

func TestBindMountedDestinationInPlace(t *testing.T) {
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "under the mount\n", 0o644)
	source := bindFile(t, dest, "old content, longer than the new\n")

	f := file(dest, "new\n", 0o640)
	f.InPlace = true
	txn := install(t, f)
	if !hasNotice(txn, dest, NoticeInPlace) {
		t.Errorf("Notices() = %v, want %q for %s", txn.Notices(), NoticeInPlace, dest)
	}
	wantContent(t, dest, "new\n")
	wantContent(t, source, "new\n")
	wantMeta(t, dest, 0o640, -1, -1)
	noTemps(t, dir)

	// A rollback writes the old content back in place too.
	if err := txn.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	wantContent(t, dest, "old content, longer than the new\n")
	wantMeta(t, dest, 0o644, -1, -1)
}

// TestFullDisk fills a small tmpfs (as root) so that staging fails with
// ENOSPC: the update is refused, the old files stay, nothing is left
// behind, and the same update succeeds once space is freed.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	mount(t, "tmpfs", dir, "tmpfs", 0, "size=1m,mode=0755")
	a := put(t, filepath.Join(dir, "a.conf"), "old a\n", 0o644)
	b := put(t, filepath.Join(dir, "b.conf"), "old b\n", 0o644)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 700<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []File{file(a, strings.Repeat("a", 200<<10), 0), file(b, strings.Repeat("b", 200<<10), 0)}

	_, err := Stage(files)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), b) {
		t.Fatalf("Stage on a full disk: err = %v, want ENOSPC naming %s", err, b)
	}
	wantContent(t, a, "old a\n")
	wantContent(t, b, "old b\n")
	noTemps(t, dir)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	install(t, files...)
	wantContent(t, a, string(files[0].Content))
	wantContent(t, b, string(files[1].Content))
	noTemps(t, dir)
}

// TestFullDiskInjected is TestFullDisk without root: the writer fails with
// ENOSPC until "space is freed".
func TestFullDiskInjected(t *testing.T) {
	dir := t.TempDir()
	a := put(t, filepath.Join(dir, "a.conf"), "old a\n", 0o644)
	b := put(t, filepath.Join(dir, "b.conf"), "old b\n", 0o644)
	full := true
	failWrites(t, func(string) bool { return full })
	files := []File{file(a, "new a\n", 0), file(b, "new b\n", 0)}

	if _, err := Stage(files); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Stage with a failing writer: err = %v, want ENOSPC", err)
	}
	wantContent(t, a, "old a\n")
	wantContent(t, b, "old b\n")
	noTemps(t, dir)

	full = false
	install(t, files...)
	wantContent(t, a, "new a\n")
	wantContent(t, b, "new b\n")
}

// TestInPlaceWriteFailureRestores fails an in-place write half way: the
// old content is written back and the error says what failed.
func TestInPlaceWriteFailureRestores(t *testing.T) {
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "", 0o644)
	bindFile(t, dest, "old content\n")
	calls := 0
	failWrites(t, func(name string) bool {
		if name == dest {
			calls++
			return calls == 1 // the update's write; the restore's goes through
		}
		return false
	})

	f := file(dest, "new content that does not fit\n", 0)
	f.InPlace = true
	txn, err := Stage([]File{f})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if err := txn.Commit(); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "in place") {
		t.Fatalf("Commit with a failing in-place write: err = %v, want ENOSPC saying in place", err)
	}
	wantContent(t, dest, "old content\n")
	noTemps(t, dir)
}
