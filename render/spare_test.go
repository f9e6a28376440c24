package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// spareOf returns the path of dest's spare, or "".
func spareOf(dest string) string {
	spares.Lock()
	defer spares.Unlock()
	if sp, ok := spares.m[dest]; ok {
		return sp.f.Name()
	}
	return ""
}

// dropAllSpares drops every spare of every destination.
func dropAllSpares() {
	spares.Lock()
	var dests []string
	for d := range spares.m {
		dests = append(dests, d)
	}
	spares.Unlock()
	DropSpares(dests...)
}

// A spare created after a commit is the file the next Stage of the same
// destination writes; DropSpares removes what is left.
func TestSpareServesTheNextStage(t *testing.T) {
	t.Cleanup(dropAllSpares)
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	install(t, file(dest, "v1\n", 0o640)).PrepareSpares()
	spare := spareOf(dest)
	if spare == "" || filepath.Dir(spare) != dir || !IsTemp(filepath.Base(spare)) {
		t.Fatalf("spare %q: want a temporary file beside %s", spare, dest)
	}
	if fi, err := os.Stat(spare); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spare: %v, %v; want an empty file of mode 0600", fi, err)
	}
	if got := SparePaths(); !slices.Equal(got, []string{spare}) {
		t.Fatalf("SparePaths() = %q, want %q", got, spare)
	}

	txn, err := Stage([]File{file(dest, "v2\n", 0o640)})
	if err != nil {
		t.Fatal(err)
	}
	if got := txn.StagedPath(dest); got != spare {
		t.Fatalf("staged in %q, want the spare %q", got, spare)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "v2\n" {
		t.Fatalf("%s holds %q", dest, b)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 (the spare's 0600 must not stay)", fi.Mode().Perm())
	}
	noTemps(t, dir) // the spare was used up
	txn.PrepareSpares()
	if spareOf(dest) == "" {
		t.Fatal("no new spare after the second commit")
	}
	DropSpares(dest)
	noTemps(t, dir)
}

// A spare that someone wrote to, linked, removed or replaced is not used:
// the next Stage creates its own temporary file, and the file the spare's
// name now leads to is left as it is.
func TestSpareNotTrustedAfterTampering(t *testing.T) {
	t.Cleanup(dropAllSpares)
	tamper := map[string]func(t *testing.T, spare, dir string){
		"written to": func(t *testing.T, spare, _ string) {
			if err := os.WriteFile(spare, []byte("planted"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"hard-linked": func(t *testing.T, spare, dir string) {
			if err := os.Link(spare, filepath.Join(dir, "other-link")); err != nil {
				t.Fatal(err)
			}
		},
		"removed": func(t *testing.T, spare, _ string) { os.Remove(spare) },
		// Whoever may change the spare's mode or owner could read what is
		// written to it before its final mode is set.
		"chmodded": func(t *testing.T, spare, _ string) {
			if err := os.Chmod(spare, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"chowned": func(t *testing.T, spare, _ string) {
			requireRoot(t, "chown")
			if err := os.Chown(spare, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		},
		"replaced by a symlink": func(t *testing.T, spare, dir string) {
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(spare)
			if err := os.Symlink(victim, spare); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, change := range tamper {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "app.conf")
			install(t, file(dest, "v1\n", 0o644)).PrepareSpares()
			spare := spareOf(dest)
			if spare == "" {
				t.Fatal("no spare")
			}
			change(t, spare, dir)
			txn, err := Stage([]File{file(dest, "v2\n", 0o644)})
			if err != nil {
				t.Fatal(err)
			}
			if got := txn.StagedPath(dest); got == spare {
				t.Fatalf("the tampered spare %s was used", spare)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(dest); string(b) != "v2\n" {
				t.Fatalf("%s holds %q", dest, b)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "victim")); err == nil && string(b) != "keep me" {
				t.Fatalf("the symlink's target was changed to %q", b)
			}
			if fi, err := os.Lstat(spare); name == "replaced by a symlink" &&
				(err != nil || fi.Mode()&os.ModeSymlink == 0) {
				t.Fatalf("the symlink at the spare's name was not left alone: %v, %v", fi, err)
			}
		})
	}
}

// Spares prepared at the same time (several agents in one program) are
// each kept once: no temporary file is left that no spare holds, and no
// more than maxSpares are kept.
func TestConcurrentSparesLeaveNoOrphans(t *testing.T) {
	t.Cleanup(dropAllSpares)
	dir := t.TempDir()
	var files []File
	for i := range maxSpares + 4 {
		files = append(files, file(filepath.Join(dir, fmt.Sprintf("f%d.conf", i)), "v1\n", 0o644))
	}
	txn := install(t, files...)
	for round := range 50 {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); txn.PrepareSpares() }()
		}
		wg.Wait()
		temps, _ := filepath.Glob(filepath.Join(dir, TempPrefix+"*"))
		held := SparePaths()
		if len(held) > maxSpares || len(temps) != len(held) {
			t.Fatalf("round %d: %d temporary files, %d spares (at most %d)", round, len(temps), len(held), maxSpares)
		}
		dropAllSpares()
		noTemps(t, dir)
	}
}

// A destination whose symlink is pointed at a file in another directory
// has its old spare dropped when it is next staged: no spare is kept
// for a file the destination no longer leads to, and none is used
// outside the directory of the file replaced.
func TestSpareDroppedWhenTheLinkMoves(t *testing.T) {
	t.Cleanup(dropAllSpares)
	root := t.TempDir()
	rel1, rel2 := filepath.Join(root, "rel1"), filepath.Join(root, "rel2")
	for _, d := range []string{rel1, rel2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		put(t, filepath.Join(d, "app.conf"), "v1\n", 0o644)
	}
	dest := filepath.Join(root, "app.conf")
	if err := os.Symlink(filepath.Join(rel1, "app.conf"), dest); err != nil {
		t.Fatal(err)
	}
	install(t, file(dest, "v2\n", 0o644)).PrepareSpares()
	if len(SparePaths()) != 1 {
		t.Fatalf("spares %q, want one in %s", SparePaths(), rel1)
	}

	os.Remove(dest)
	if err := os.Symlink(filepath.Join(rel2, "app.conf"), dest); err != nil {
		t.Fatal(err)
	}
	txn := install(t, file(dest, "v3\n", 0o644))
	noTemps(t, rel1) // the spare of the old target is gone
	wantContent(t, filepath.Join(rel2, "app.conf"), "v3\n")
	wantContent(t, filepath.Join(rel1, "app.conf"), "v2\n")
	txn.PrepareSpares()
	for _, p := range SparePaths() {
		if filepath.Dir(p) != rel2 {
			t.Errorf("spare %s kept outside %s", p, rel2)
		}
	}
}

// A spare whose directory was renamed away (and a new one made in its
// place) is not used, and is removed from where it went: no temporary
// file is left in the renamed directory.
func TestSpareOfARenamedDirectoryRemoved(t *testing.T) {
	t.Cleanup(dropAllSpares)
	root := t.TempDir()
	dir, moved := filepath.Join(root, "app"), filepath.Join(root, "app.old")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "app.conf")
	install(t, file(dest, "v1\n", 0o644)).PrepareSpares()
	spare := spareOf(dest)
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	txn := install(t, file(dest, "v2\n", 0o644))
	if got := txn.StagedPath(dest); got == spare {
		t.Fatalf("the spare of the renamed directory was used")
	}
	wantContent(t, dest, "v2\n")
	wantContent(t, filepath.Join(moved, "app.conf"), "v1\n")
	noTemps(t, dir, moved)
}

// The content written into a spare gets the destination's mode and
// owner as it is now (set by someone since the spare was made), not the
// spare's 0600 and the agent's owner.
func TestSpareTakesTheDestinationsModeAndOwner(t *testing.T) {
	requireRoot(t, "chown")
	t.Cleanup(dropAllSpares)
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	install(t, file(dest, "v1\n", 0o644)).PrepareSpares()
	spare := spareOf(dest)
	if err := os.Chown(dest, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dest, 0o640); err != nil {
		t.Fatal(err)
	}

	txn := install(t, file(dest, "v2\n", 0)) // mode and owner unset: kept
	if got := txn.StagedPath(dest); got != "" && got != spare {
		t.Fatalf("staged in %s, want the spare %s", got, spare)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := owner(fi)
	if fi.Mode().Perm() != 0o640 || uid != nobody || gid != nobody {
		t.Fatalf("%s: mode %v owner %d:%d, want 0640 %d:%d", dest, fi.Mode().Perm(), uid, gid, nobody, nobody)
	}
	wantContent(t, dest, "v2\n")
}

// A spare cannot be made on a read-only filesystem, nor written on a
// full one: neither is an error of its own, and the update after each
// goes as it would without spares (the full disk's error is ENOSPC
// naming the destination, and no temporary file is left).
func TestSpareOnReadOnlyAndFullFilesystems(t *testing.T) {
	t.Cleanup(dropAllSpares)
	dir := t.TempDir()
	mount(t, "tmpfs", dir, "tmpfs", 0, "size=64k,mode=0755")
	dest := filepath.Join(dir, "app.conf")
	txn := install(t, file(dest, "v1\n", 0o644))
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("skipped: remount read-only: %v", err)
	}
	txn.PrepareSpares()
	if got := spareOf(dest); got != "" {
		t.Fatalf("spare %s on a read-only filesystem", got)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}

	txn.PrepareSpares()
	if spareOf(dest) == "" {
		t.Fatal("no spare once writable again")
	}
	fill := filepath.Join(dir, "fill")
	os.WriteFile(fill, make([]byte, 128<<10), 0o644) // fails when full: that is the point
	_, err := Stage([]File{file(dest, strings.Repeat("x", 32<<10), 0o644)})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dest) {
		t.Fatalf("Stage on a full disk: %v, want ENOSPC naming %s", err, dest)
	}
	wantContent(t, dest, "v1\n")
	noTemps(t, dir)
	os.Remove(fill)
	wantContent(t, dest, "v1\n")
	install(t, file(dest, "v2\n", 0o644))
	wantContent(t, dest, "v2\n")
}

// A destination written in place (a bind-mounted file) gets no spare:
// its next update cannot rename one either. Beside it, a destination in
// the same update that was renamed gets one.
func TestNoSpareForADestinationWrittenInPlace(t *testing.T) {
	t.Cleanup(dropAllSpares)
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "under the mount\n", 0o644)
	other := filepath.Join(dir, "other.conf")
	bindFile(t, dest, "old\n")
	f := file(dest, "new\n", 0o644)
	f.InPlace = true
	install(t, f, file(other, "other\n", 0o644)).PrepareSpares()
	if got := spareOf(dest); got != "" {
		t.Fatalf("spare %s for a destination written in place", got)
	}
	if spareOf(other) == "" {
		t.Fatal("no spare for the renamed destination beside it")
	}
	dropAllSpares()
	noTemps(t, dir)
}

// With backup set, the spare takes the new content and the backup gets a
// temporary file of its own: the destination holds the new version, the
// backup the old one, each with its own mode.
func TestSpareHoldsTheContentNotTheBackup(t *testing.T) {
	t.Cleanup(dropAllSpares)
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	install(t, file(dest, "v1\n", 0o640)).PrepareSpares()
	spare := spareOf(dest)
	f := file(dest, "v2\n", 0o644)
	f.Backup = true
	txn, err := Stage([]File{f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(txn.Abort)
	if got := txn.StagedPath(dest); got != spare {
		t.Fatalf("content staged in %s, want the spare %s", got, spare)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	wantContent(t, dest, "v2\n")
	wantContent(t, BackupPath(dest), "v1\n")
	wantMeta(t, dest, 0o644, -1, -1)
	wantMeta(t, BackupPath(dest), 0o640, -1, -1)
	noTemps(t, dir)
}
