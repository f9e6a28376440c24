package render

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// shortRacyWindow makes signatures trusted soon after a write, for the
// length of t, and returns a function that waits until path's stat is old
// enough to be trusted.
func shortRacyWindow(t *testing.T) func(path string) {
	orig := racyWindow
	racyWindow = 20 * time.Millisecond
	t.Cleanup(func() { racyWindow = orig })
	return func(path string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if time.Since(time.Unix(st.Ctim.Unix())) > 2*racyWindow {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("ctime of %s never got older than %v", path, racyWindow)
	}
}

// countReads counts how often Stage reads path back, for the length of t.
func countReads(t *testing.T, path string) *int {
	n := new(int)
	orig := readFile
	readFile = func(name string) ([]byte, error) {
		if name == path {
			*n++
		}
		return orig(name)
	}
	t.Cleanup(func() { readFile = orig })
	return n
}

func TestUnchangedDestinationNotReadAgain(t *testing.T) {
	waitOld := shortRacyWindow(t)
	dest := filepath.Join(t.TempDir(), "app.conf")
	install(t, file(dest, "v=1\n", 0o644))
	waitOld(dest)
	reads := countReads(t, dest)

	install(t, file(dest, "v=1\n", 0o644)) // reads once, then trusts the stat
	for range 3 {
		if got := install(t, file(dest, "v=1\n", 0o644)).Changed(); len(got) != 0 {
			t.Fatalf("Changed() = %v for unchanged content, want none", got)
		}
	}
	if *reads != 1 {
		t.Errorf("an unchanged destination was read %d times in four updates, want once", *reads)
	}
	if got := install(t, file(dest, "v=2\n", 0o644)).Changed(); len(got) != 1 {
		t.Errorf("Changed() = %v for new content, want %s", got, dest)
	}
	wantContent(t, dest, "v=2\n")
}

// editKeepingSizeAndMtime overwrites path in place with content of the same
// length and puts its modification time back, as a careful editor might.
func editKeepingSizeAndMtime(t *testing.T, path, content string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(content)) != fi.Size() {
		t.Fatalf("edit of %d bytes does not keep the size %d", len(content), fi.Size())
	}
	if err := os.WriteFile(path, []byte(content), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func TestSameSizeEditBySomeoneElseSeen(t *testing.T) {
	waitOld := shortRacyWindow(t)
	dest := filepath.Join(t.TempDir(), "app.conf")
	install(t, file(dest, "v=1\n", 0o644))
	waitOld(dest)
	install(t, file(dest, "v=1\n", 0o644)) // the signature is now trusted
	reads := countReads(t, dest)

	editKeepingSizeAndMtime(t, dest, "v=9\n")
	if got := install(t, file(dest, "v=1\n", 0o644)).Changed(); len(got) != 1 {
		t.Fatalf("Changed() = %v after a same-size edit by someone else, want %s", got, dest)
	}
	if *reads != 1 {
		t.Errorf("the edited destination was read %d times, want once", *reads)
	}
	wantContent(t, dest, "v=1\n")
}

// Right after the agent's own write, an edit in the same timestamp tick
// can leave the stat as it was: such a file is read, never trusted.
func TestSameSizeEditRightAfterWriteSeen(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app.conf")
	install(t, file(dest, "v=1\n", 0o644))
	install(t, file(dest, "v=1\n", 0o644))
	editKeepingSizeAndMtime(t, dest, "v=9\n")
	if got := install(t, file(dest, "v=1\n", 0o644)).Changed(); len(got) != 1 {
		t.Fatalf("Changed() = %v after a same-size edit by someone else, want %s", got, dest)
	}
	wantContent(t, dest, "v=1\n")
}

func TestModeChangeBySomeoneElseFixedWithTrustedSignature(t *testing.T) {
	waitOld := shortRacyWindow(t)
	dest := filepath.Join(t.TempDir(), "app.conf")
	install(t, file(dest, "v=1\n", 0o640))
	waitOld(dest)
	install(t, file(dest, "v=1\n", 0o640))

	if err := os.Chmod(dest, 0o666); err != nil {
		t.Fatal(err)
	}
	txn := install(t, file(dest, "v=1\n", 0o640))
	if !hasNotice(txn, dest, NoticeMetadataFixed) {
		t.Errorf("Notices() = %v, want %q", txn.Notices(), NoticeMetadataFixed)
	}
	wantMeta(t, dest, 0o640, -1, -1)
}
