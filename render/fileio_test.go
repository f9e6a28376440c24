package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readFileNoPoll reads what os.ReadFile reads: files of every size around
// the read buffer, an empty one, and a /proc file whose stat says 0 bytes.
func TestReadFileNoPoll(t *testing.T) {
	dir := t.TempDir()
	paths := []string{"/proc/self/status"}
	for _, size := range []int{0, 1, 511, 512, 513, 4096, 100_000} {
		p := filepath.Join(dir, fmt.Sprintf("f-%d", size))
		put(t, p, strings.Repeat("y", size), 0o644)
		paths = append(paths, p)
	}
	for _, p := range paths {
		got, err := readFileNoPoll(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		want, _ := os.ReadFile(p)
		if p == "/proc/self/status" { // changes between reads: compare the start
			got, want = got[:10], want[:10]
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes, want %d", p, len(got), len(want))
		}
	}
	if _, err := readFileNoPoll(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not exist", err)
	}
}

// createTempNoPoll makes a new 0600 file whose name IsTemp recognises.
func TestCreateTempNoPoll(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 20 {
		f, err := createTempNoPoll(dir, TempPrefix+"app.conf.")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		fi, err := os.Stat(f.Name())
		if err != nil || fi.Mode().Perm() != 0o600 || seen[f.Name()] || !IsTemp(filepath.Base(f.Name())) {
			t.Fatalf("%s: %v, mode %v, seen %v, IsTemp %v", f.Name(), err, fi.Mode(), seen[f.Name()],
				IsTemp(filepath.Base(f.Name())))
		}
		seen[f.Name()] = true
	}
}

// A destination stats as a regular file, then someone puts a FIFO (or a
// device) in its place before it is read: opening a FIFO to read blocks
// until a writer comes, which held the whole apply loop. The file read
// must be refused on its own descriptor instead.
func TestReadFileNoPollRefusesWhatIsNotAFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", "/dev/null"} {
		done := make(chan error, 1)
		go func() {
			_, err := readFileNoPoll(p)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: err = %v, want it refused as not a regular file", p, err)
			}
		case <-time.After(10 * time.Second):
			// Let the blocked open return: open the FIFO for writing.
			if w, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			t.Fatalf("%s: still reading after 10 s", p)
		}
	}
}

// ReadRegularFile stops at its limit, reads /proc files whole, and gives
// the modification time.
func TestReadRegularFileLimit(t *testing.T) {
	p := put(t, filepath.Join(t.TempDir(), "f"), strings.Repeat("z", 100), 0o644)
	for _, limit := range []int{1, 65, 100, 200} {
		data, mtime, err := ReadRegularFile(p, limit)
		if want := min(limit, 100); err != nil || len(data) != want {
			t.Errorf("limit %d: %d bytes, %v; want %d", limit, len(data), err, want)
		}
		if fi, _ := os.Stat(p); !mtime.Equal(fi.ModTime()) {
			t.Errorf("limit %d: mtime %v, want %v", limit, mtime, fi.ModTime())
		}
	}
	stat, _, err := ReadRegularFile("/proc/self/stat", 4096)
	if err != nil || !bytes.Contains(stat, []byte(") ")) {
		t.Errorf("/proc/self/stat: %q, %v", stat, err)
	}
}
