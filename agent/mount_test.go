package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sseconfd/sseconfd/render"
)

// mount mounts source on target and unmounts it in Cleanup; it skips t
// with the reason when not root or when mounting is not allowed here.
func mount(t *testing.T, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting needs root (CI runs the tests as root)")
	}
	if err := syscall.Mount(source, target, fstype, flags, data); err != nil {
		t.Skipf("skipped: mount %s %s on %s: %v", fstype, source, target, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(target, 0); err != nil {
			syscall.Unmount(target, syscall.MNT_DETACH)
		}
	})
}

// TestFullDiskRejectsUpdate fills a small tmpfs holding the destinations:
// the update is rejected with the old files intact and nothing reloaded,
// and the same update applies once space is freed.
func TestFullDiskRejectsUpdate(t *testing.T) {
	c := newInstallCase(t)
	c.dests = filepath.Join(c.dir, "data")
	os.Mkdir(c.dests, 0o755)
	mount(t, "tmpfs", c.dests, "tmpfs", 0, "size=1m")
	a, logs := c.agent(t, c.config(t, "http://127.0.0.1:1", "", "a", "b"))
	writeFile(t, c.dests, "a.conf", "a old\n")
	writeFile(t, c.dests, "b.conf", "b old\n")
	filler := writeFile(t, c.dests, "filler", strings.Repeat("f", 700<<10))
	big := snapshot(t, strings.Repeat("x", 200<<10))

	a.applyAndLog(context.Background(), big)
	wantFile(t, c.path("a"), "a old\n")
	wantFile(t, c.path("b"), "b old\n")
	if n := c.reloadCount(); n != 0 {
		t.Errorf("reloaded %d times after a full disk, want 0", n)
	}
	rejected := logged(logs, "update rejected")
	if len(rejected) != 1 || !strings.Contains(rejected[0].ContextMap()["error"].(string), "no space left") {
		t.Fatalf("logged %v, want one \"update rejected\" for the full disk", rejected)
	}
	entries, _ := os.ReadDir(c.dests)
	for _, e := range entries {
		if render.IsTemp(e.Name()) {
			t.Errorf("temporary file %s left on the full disk", e.Name())
		}
	}

	os.Remove(filler)
	a.applyAndLog(context.Background(), big)
	if msg := fileHas(c.path("b"), "b xxxx")(); msg != "" {
		t.Error(msg)
	}
	if n := c.reloadCount(); n != 1 {
		t.Errorf("reloaded %d times after space was freed, want 1", n)
	}
}

// TestInPlaceBindMount installs over a bind-mounted single file: refused
// with a clear error by default, written in place with a warning when the
// template sets in_place.
func TestInPlaceBindMount(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "in_place"}[inPlace]
		t.Run(name, func(t *testing.T) {
			c := newInstallCase(t)
			extra := ""
			if inPlace {
				extra = "in_place = true"
			}
			a, logs := c.agent(t, c.config(t, "http://127.0.0.1:1", extra, "a"))
			writeFile(t, c.dir, "a.conf", "")
			source := writeFile(t, t.TempDir(), "mounted.conf", "a old\n")
			mount(t, source, c.path("a"), "", syscall.MS_BIND, "")

			_, err := a.Apply(context.Background(), snapshot(t, "v1"))
			if !inPlace {
				if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), "in_place = true") {
					t.Fatalf("Apply over a bind mount: err = %v, want EBUSY suggesting in_place", err)
				}
				wantFile(t, c.path("a"), "a old\n")
				return
			}
			if err != nil {
				t.Fatalf("Apply with in_place: %v", err)
			}
			wantFile(t, c.path("a"), "a v1\n")
			wantFile(t, source, "a v1\n")
			if n := len(logged(logs, render.NoticeInPlace)); n != 1 {
				t.Errorf("logged %d %q warnings, want 1", n, render.NoticeInPlace)
			}
		})
	}
}

// TestRestoreDriftBindMount edits a bind-mounted destination through the
// mounted file: its directory's watch never sees that, the file's own does.
func TestRestoreDriftBindMount(t *testing.T) {
	c := newInstallCase(t)
	_, url := startServer(t, "dev", map[string]any{"v": "v1"})
	a, logs := c.agent(t, c.config(t, url, "in_place = true\nrestore_drift = true", "a"))
	writeFile(t, c.dir, "a.conf", "")
	source := writeFile(t, t.TempDir(), "mounted.conf", "a old\n")
	mount(t, source, c.path("a"), "", syscall.MS_BIND, "")

	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(c.path("a"), "a v1\n"))
	// The in-place write reads the file back before the update counts as
	// applied; an edit before then is a concurrent writer, not drift.
	eventually(t, 10*time.Second, func() string {
		if len(logged(logs, "update applied")) == 0 {
			return "the first update is not applied yet"
		}
		return ""
	})
	if err := os.WriteFile(source, []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, fileHas(c.path("a"), "a v1\n"))
	if n := len(logged(logs, "destination changed by someone else; restoring it")); n != 1 {
		t.Errorf("logged %d restore warnings, want 1", n)
	}
}
