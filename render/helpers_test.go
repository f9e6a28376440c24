package render

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the uid and gid the owner tests give files; it exists on Debian.
const nobody = 65534

// requireRoot skips t, saying why, unless the test runs as root.
func requireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipped: %s needs root (CI runs the tests as root)", what)
	}
}

// mount mounts source on target and unmounts it in Cleanup; it skips t
// with the reason when not root or when mounting is not allowed here.
func mount(t testing.TB, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	what := "a bind mount"
	if fstype != "" {
		what = "a " + fstype
	}
	requireRoot(t, "mounting "+what)
	if err := syscall.Mount(source, target, fstype, flags, data); err != nil {
		t.Skipf("skipped: mount %s on %s: %v", what, target, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(target, 0); err != nil {
			syscall.Unmount(target, syscall.MNT_DETACH)
		}
	})
}

// put writes content to path with mode, failing the test on error.
func put(t testing.TB, path, content string, mode fs.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantContent fails t unless path holds content.
func wantContent(t testing.TB, path, content string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, []byte(content)) {
		t.Errorf("%s holds %q, want %q", path, got, content)
	}
}

// wantMeta fails t unless path has mode and, when uid >= 0, that owner.
func wantMeta(t testing.TB, path string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s has mode %04o, want %04o", path, got, mode)
	}
	if uid < 0 {
		return
	}
	if gotUID, gotGID := owner(fi); gotUID != uid || gotGID != gid {
		t.Errorf("%s is owned by %d:%d, want %d:%d", path, gotUID, gotGID, uid, gid)
	}
}

// noTemps fails t if a temporary file of the agent is left in any of dirs.
func noTemps(t testing.TB, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), TempPrefix) && !strings.HasSuffix(e.Name(), BackupSuffix) {
				t.Errorf("temporary file %s left in %s", e.Name(), dir)
			}
		}
	}
}

// file is a File with no owner change, for brevity.
func file(path, content string, mode fs.FileMode) File {
	return File{Path: path, Content: []byte(content), Mode: mode, UID: -1, GID: -1}
}

// install stages and commits files, failing t on error.
func install(t testing.TB, files ...File) *Txn {
	t.Helper()
	txn, err := Stage(files)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	t.Cleanup(txn.Abort)
	if err := txn.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return txn
}

// inode returns path's inode number and modification time.
func inode(t testing.TB, path string) (uint64, time.Time) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()
}

// hasNotice reports whether txn reported msg for path.
func hasNotice(txn *Txn, path, msg string) bool {
	for _, n := range txn.Notices() {
		if n.Path == path && n.Msg == msg {
			return true
		}
	}
	return false
}

func join(dir string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}
