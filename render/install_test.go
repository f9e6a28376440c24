package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestInstallMode(t *testing.T) {
	tests := []struct {
		name     string
		existing fs.FileMode // 0: no file before
		mode     fs.FileMode // configured; 0: unset
		want     fs.FileMode
	}{
		{name: "new file gets default", want: DefaultMode},
		{name: "new file gets configured", mode: 0o640, want: 0o640},
		{name: "existing mode kept when unset", existing: 0o600, want: 0o600},
		{name: "configured mode replaces existing", existing: 0o600, mode: 0o644, want: 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "app.conf")
			if tc.existing != 0 {
				put(t, dest, "old\n", tc.existing)
			}
			txn := install(t, file(dest, "new\n", tc.mode))
			if got := txn.Changed(); len(got) != 1 || got[0] != dest {
				t.Errorf("Changed() = %v, want [%s]", got, dest)
			}
			wantContent(t, dest, "new\n")
			wantMeta(t, dest, tc.want, -1, -1)
			noTemps(t, dir)
		})
	}
}

func TestInstallUnchangedIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "same\n", 0o644)
	ino, mtime := inode(t, dest)

	txn := install(t, file(dest, "same\n", 0o644))
	if got := txn.Changed(); len(got) != 0 {
		t.Errorf("Changed() = %v, want none", got)
	}
	if ino2, mtime2 := inode(t, dest); ino2 != ino || !mtime2.Equal(mtime) {
		t.Errorf("unchanged file was rewritten: inode %d→%d, mtime %v→%v", ino, ino2, mtime, mtime2)
	}
}

func TestInstallOwner(t *testing.T) {
	requireRoot(t, "changing a file's owner")
	dir := t.TempDir()

	// A configured owner applies to new and existing files.
	fresh := filepath.Join(dir, "new.conf")
	existing := put(t, filepath.Join(dir, "existing.conf"), "old\n", 0o644)
	install(t,
		File{Path: fresh, Content: []byte("a\n"), Mode: 0o640, UID: nobody, GID: nobody},
		File{Path: existing, Content: []byte("b\n"), Mode: 0o640, UID: nobody, GID: nobody},
	)
	wantMeta(t, fresh, 0o640, nobody, nobody)
	wantMeta(t, existing, 0o640, nobody, nobody)

	// Unset owner and mode: a rewrite keeps the existing ones.
	install(t, file(existing, "c\n", 0))
	wantContent(t, existing, "c\n")
	wantMeta(t, existing, 0o640, nobody, nobody)

	// Unset group only: the configured user applies, the group is kept.
	install(t, File{Path: existing, Content: []byte("d\n"), UID: 0, GID: -1})
	wantMeta(t, existing, 0o640, 0, nobody)
}

func TestMetadataDriftFixedWithoutRewrite(t *testing.T) {
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "content\n", 0o666)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(dest, past, past); err != nil {
		t.Fatal(err)
	}
	ino, mtime := inode(t, dest)

	f := file(dest, "content\n", 0o640)
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		f.UID, f.GID, uid, gid = nobody, nobody, nobody, nobody
	} else {
		t.Log("owner drift not tested: needs root (CI runs the tests as root)")
	}
	txn := install(t, f)

	if got := txn.Changed(); len(got) != 0 {
		t.Errorf("Changed() = %v, want none: only metadata drifted", got)
	}
	if !hasNotice(txn, dest, NoticeMetadataFixed) {
		t.Errorf("Notices() = %v, want %q for %s", txn.Notices(), NoticeMetadataFixed, dest)
	}
	wantMeta(t, dest, 0o640, uid, gid)
	if ino2, mtime2 := inode(t, dest); ino2 != ino || !mtime2.Equal(mtime) {
		t.Errorf("metadata fix rewrote the file: inode %d→%d, mtime %v→%v", ino, ino2, mtime, mtime2)
	}
}

func TestCreateDirs(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "a", "b", "app.conf")

	_, err := Stage([]File{file(dest, "x\n", 0)})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "create_dirs = true") {
		t.Fatalf("Stage without create_dirs: err = %v, want ErrNotExist suggesting create_dirs", err)
	}

	f := file(dest, "x\n", 0)
	f.CreateDirs = true
	install(t, f)
	wantContent(t, dest, "x\n")
	fi, err := os.Stat(filepath.Dir(dest))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("created directory: %v, %v; want mode 0755", fi, err)
	}
}

func TestSymlinkedDestination(t *testing.T) {
	dir := t.TempDir()
	avail := filepath.Join(dir, "sites-available")
	enabled := filepath.Join(dir, "sites-enabled")
	for _, d := range []string{avail, enabled} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := put(t, filepath.Join(avail, "app"), "old\n", 0o644)
	link := filepath.Join(enabled, "app")
	if err := os.Symlink("../sites-available/app", link); err != nil {
		t.Fatal(err)
	}

	install(t, file(link, "new\n", 0))

	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symlink: %v, %v", link, fi, err)
	}
	wantContent(t, target, "new\n")
	noTemps(t, avail, enabled)
}

func TestSymlinkErrors(t *testing.T) {
	dir := t.TempDir()
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "missing"), dangling); err != nil {
		t.Fatal(err)
	}
	loop1, loop2 := filepath.Join(dir, "loop1"), filepath.Join(dir, "loop2")
	if err := os.Symlink(loop2, loop1); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(loop1, loop2); err != nil {
		t.Fatal(err)
	}

	tests := []struct{ name, path, want string }{
		{"dangling", dangling, "dangling"},
		{"loop", loop1, "loop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Stage([]File{file(tc.path, "x\n", 0)})
			if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Stage(%s) error = %v, want one naming the path and saying %q", tc.path, err, tc.want)
			}
			if fi, err := os.Lstat(tc.path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s was replaced: %v, %v", tc.path, fi, err)
			}
			noTemps(t, dir)
		})
	}
}

func TestTempNames(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	txn, err := Stage([]File{file(dest, "x\n", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()

	temp := txn.StagedPath(dest)
	name := filepath.Base(temp)
	if filepath.Dir(temp) != dir || !strings.HasPrefix(name, ".sseconfd.app.conf.") || !IsTemp(name) {
		t.Errorf("StagedPath = %s, want %s/.sseconfd.app.conf.<digits>", temp, dir)
	}
	// Go's Glob lets "*" match a leading dot, unlike glob(3) that nginx and
	// shells use; the name must still dodge the patterns a program uses,
	// and starts with a dot for glob(3).
	for _, glob := range []string{"*.conf", "app*"} {
		if m, _ := filepath.Glob(filepath.Join(dir, glob)); len(m) != 0 {
			t.Errorf("glob %q matches %v while a file is staged, want nothing", glob, m)
		}
	}
	wantContent(t, temp, "x\n")
	txn.Abort()
	if _, err := os.Stat(temp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Abort, %s: %v, want it removed", temp, err)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	stale := []string{".sseconfd.app.conf.123456", ".sseconfd.sseconfd.conf.42"}
	kept := []string{
		"app.conf", ".app.conf" + BackupSuffix, ".sseconfd.conf" + BackupSuffix,
		".sseconfd.app.conf", ".sseconfd.notes.txt", ".sseconfd.", "sseconfd.app.conf.1",
	}
	for _, n := range append(append([]string{}, stale...), kept...) {
		put(t, filepath.Join(dir, n), "x", 0o644)
	}

	removed, err := RemoveStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(stale) {
		t.Errorf("RemoveStale removed %v, want %v", removed, join(dir, stale...))
	}
	for _, p := range join(dir, stale...) {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s survived: %v", p, err)
		}
	}
	for _, p := range join(dir, kept...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("RemoveStale removed %s, which is not a temporary file", p)
		}
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	// A name starting with "sseconfd." gives a backup starting with
	// TempPrefix: RemoveStale must still keep it.
	dest := put(t, filepath.Join(dir, "sseconfd.conf"), "v1\n", 0o600)
	f := file(dest, "v2\n", 0o644)
	f.Backup = true
	install(t, f)

	backup := BackupPath(dest)
	if backup != filepath.Join(dir, ".sseconfd.conf.sseconfd-backup") {
		t.Errorf("BackupPath(%s) = %s", dest, backup)
	}
	wantContent(t, dest, "v2\n")
	wantContent(t, backup, "v1\n")
	wantMeta(t, backup, 0o600, -1, -1)

	f.Content = []byte("v3\n")
	install(t, f)
	wantContent(t, backup, "v2\n")

	if _, err := RemoveStale(dir); err != nil {
		t.Fatal(err)
	}
	wantContent(t, backup, "v2\n")
	noTemps(t, dir)
}

// TestStageFailureRenamesNothing stages three files, the last of which
// cannot be written: nothing is renamed and no temporary file remains.
func TestStageFailureRenamesNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the destination that fails
	}{
		{"parent is a file", func(t *testing.T, dir string) string {
			return filepath.Join(put(t, filepath.Join(dir, "notadir"), "x", 0o644), "c.conf")
		}},
		{"read-only directory", func(t *testing.T, dir string) string {
			ro := filepath.Join(dir, "ro")
			if err := os.Mkdir(ro, 0o755); err != nil {
				t.Fatal(err)
			}
			put(t, filepath.Join(ro, "c.conf"), "old c\n", 0o644)
			readOnly(t, ro)
			return filepath.Join(ro, "c.conf")
		}},
		{"injected write error", func(t *testing.T, dir string) string {
			failWrites(t, func(name string) bool { return strings.Contains(name, "c.conf") })
			return put(t, filepath.Join(dir, "c.conf"), "old c\n", 0o644)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := put(t, filepath.Join(dir, "a.conf"), "old a\n", 0o644)
			b := filepath.Join(dir, "b.conf") // new
			c := tc.setup(t, dir)

			_, err := Stage([]File{file(a, "new a\n", 0), file(b, "new b\n", 0), file(c, "new c\n", 0)})
			if err == nil || !strings.Contains(err.Error(), c) {
				t.Fatalf("Stage error = %v, want one naming %s", err, c)
			}
			wantContent(t, a, "old a\n")
			if _, err := os.Stat(b); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("new %s exists after a failed stage: %v", b, err)
			}
			noTemps(t, dir)
			if fi, err := os.Stat(filepath.Dir(c)); err == nil && fi.IsDir() {
				noTemps(t, filepath.Dir(c))
			}
		})
	}
}

// readOnly makes dir read-only for the agent: a read-only bind mount when
// root (root ignores permission bits), mode 0555 otherwise.
func readOnly(t *testing.T, dir string) {
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o555)
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	mount(t, dir, dir, "", syscall.MS_BIND, "")
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("skipped: remount %s read-only: %v", dir, err)
	}
}

// failWrites makes writes of temporary files whose name matches fail with
// ENOSPC, after writing half, until the test ends.
func failWrites(t *testing.T, match func(name string) bool) {
	orig := writeContent
	writeContent = func(f *os.File, b []byte) error {
		if match(f.Name()) {
			f.Write(b[:len(b)/2])
			return &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return orig(f, b)
	}
	t.Cleanup(func() { writeContent = orig })
}

// TestCommitFailureRestores makes the second of three renames fail: the
// first is put back, the third never happens, no temporary file remains.
func TestCommitFailureRestores(t *testing.T) {
	dir := t.TempDir()
	a := put(t, filepath.Join(dir, "a.conf"), "old a\n", 0o640)
	b := put(t, filepath.Join(dir, "b.conf"), "old b\n", 0o644)
	c := put(t, filepath.Join(dir, "c.conf"), "old c\n", 0o644)
	txn, err := Stage([]File{file(a, "new a\n", 0o644), file(b, "new b\n", 0), file(c, "new c\n", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()

	// b becomes a non-empty directory: a file cannot be renamed over it.
	os.Remove(b)
	if err := os.MkdirAll(filepath.Join(b, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = txn.Commit()
	if err == nil || !strings.Contains(err.Error(), b) {
		t.Fatalf("Commit error = %v, want one naming %s", err, b)
	}
	wantContent(t, a, "old a\n")
	wantMeta(t, a, 0o640, -1, -1)
	wantContent(t, c, "old c\n")
	noTemps(t, dir)
}

func TestRollback(t *testing.T) {
	dir := t.TempDir()
	a := put(t, filepath.Join(dir, "a.conf"), "old a\n", 0o600)
	b := put(t, filepath.Join(dir, "b.conf"), "old b\n", 0o644)
	c := filepath.Join(dir, "c.conf") // new
	uid, gid := -1, -1
	fa := file(a, "new a\n", 0o644)
	if os.Geteuid() == 0 {
		if err := os.Chown(a, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		fa.UID, fa.GID, uid, gid = 0, 0, nobody, nobody
	} else {
		t.Log("owner restore not tested: needs root (CI runs the tests as root)")
	}

	txn := install(t, fa, file(b, "new b\n", 0), file(c, "new c\n", 0))
	wantContent(t, a, "new a\n")
	if err := txn.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	wantContent(t, a, "old a\n")
	wantMeta(t, a, 0o600, uid, gid)
	wantContent(t, b, "old b\n")
	if _, err := os.Stat(c); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("new %s survived the rollback: %v", c, err)
	}
	noTemps(t, dir)
}

func TestUnreadableDestinationReplaced(t *testing.T) {
	dir := t.TempDir()
	dest := put(t, filepath.Join(dir, "app.conf"), "same\n", 0o640)
	orig := readFile
	readFile = func(name string) ([]byte, error) {
		if name == dest {
			return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EIO}
		}
		return orig(name)
	}
	defer func() { readFile = orig }()

	txn := install(t, file(dest, "same\n", 0))
	if got := txn.Changed(); len(got) != 1 {
		t.Errorf("Changed() = %v, want the unreadable %s replaced", got, dest)
	}
	if !hasNotice(txn, dest, NoticeUnreadable) {
		t.Errorf("Notices() = %v, want %q", txn.Notices(), NoticeUnreadable)
	}
	wantMeta(t, dest, 0o640, -1, -1)
}

func TestTwoLinksToOneFile(t *testing.T) {
	dir := t.TempDir()
	real := put(t, filepath.Join(dir, "real.conf"), "old\n", 0o644)
	l1, l2 := filepath.Join(dir, "l1.conf"), filepath.Join(dir, "l2.conf")
	for _, l := range []string{l1, l2} {
		if err := os.Symlink(real, l); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Stage([]File{file(l1, "one\n", 0), file(l2, "two\n", 0)})
	if err == nil || !strings.Contains(err.Error(), l1) || !strings.Contains(err.Error(), l2) {
		t.Fatalf("Stage of two links to one file: err = %v, want one naming both", err)
	}
	wantContent(t, real, "old\n")
	noTemps(t, dir)
}

func TestRenameError(t *testing.T) {
	tests := []struct {
		name  string
		cause error
		want  []string
	}{
		{"busy", syscall.EBUSY, []string{"/etc/app.conf", "mount point", "its directory", "in_place = true"}},
		{"cross device", syscall.EXDEV, []string{"/etc/app.conf", "another filesystem", "in_place = true"}},
		{"other", syscall.EISDIR, []string{"/etc/app.conf", "is a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cause := &os.LinkError{Op: "rename", Old: "/etc/.sseconfd.app.conf.1", New: "/etc/app.conf", Err: tc.cause}
			err := renameError("/etc/app.conf", cause)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("renameError(%v) = %q, want it to contain %q", tc.cause, err, w)
				}
			}
			if !errors.Is(err, tc.cause) {
				t.Errorf("renameError(%v) does not wrap its cause", tc.cause)
			}
		})
	}
}

// Stage keeps up to keptOpen temporary files open until it fsyncs them;
// none stays open after Stage, whether the transaction is then committed
// or aborted, with fewer or more files than that.
func TestStageLeavesNoDescriptorOpen(t *testing.T) {
	openFDs := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("skipped: no /proc/self/fd: %v", err)
		}
		return len(entries)
	}
	dir := t.TempDir()
	for _, n := range []int{1, keptOpen + 5} {
		for _, commit := range []bool{true, false} {
			before := openFDs()
			var files []File
			for i := range n {
				files = append(files, File{Path: filepath.Join(dir, fmt.Sprintf("f%d-%v", i, commit)),
					Content: []byte(fmt.Sprintf("content %d %d\n", n, i)), UID: -1, GID: -1})
			}
			txn, err := Stage(files)
			if err != nil {
				t.Fatal(err)
			}
			if commit {
				err = txn.Commit()
			}
			txn.Abort()
			if err != nil {
				t.Fatal(err)
			}
			if after := openFDs(); after != before {
				t.Errorf("%d files, commit %v: %d descriptors open before, %d after", n, commit, before, after)
			}
			if commit {
				wantContent(t, files[n-1].Path, string(files[n-1].Content))
			}
		}
	}
}

// openFDs returns what each of this process's descriptors leads to.
func openFDs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			out = append(out, link)
		}
	}
	return out
}

// The file a commit replaces is held open until Abort, so that the rename
// does not free its blocks before the caller's signals (see holdOld);
// Abort closes it, and at most keptOpen are held in one Stage.
func TestReplacedFileHeldUntilAbort(t *testing.T) {
	dir := t.TempDir()
	var files []File
	for i := range keptOpen + 4 {
		dest := put(t, filepath.Join(dir, fmt.Sprintf("f%02d.conf", i)), "old\n", 0o644)
		files = append(files, file(dest, "new\n", 0o644))
	}
	// Descriptors into dir only: other tests of the package run meanwhile.
	inDir := func(deleted bool) int {
		n := 0
		for _, link := range openFDs(t) {
			if strings.HasPrefix(link, dir) && (!deleted || strings.HasSuffix(link, " (deleted)")) {
				n++
			}
		}
		return n
	}
	txn, err := Stage(files)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := inDir(true); n != keptOpen {
		t.Errorf("after Commit: %d replaced files held open, want %d", n, keptOpen)
	}
	txn.Abort()
	if n := inDir(false); n != 0 {
		t.Errorf("after Abort: %d descriptors still lead into %s", n, dir)
	}
	for _, f := range files {
		if b, _ := os.ReadFile(f.Path); string(b) != "new\n" {
			t.Fatalf("%s holds %q", f.Path, b)
		}
	}
}
