package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// tempsIn returns the agent's temporary files in dir.
func tempsIn(dir string) []string {
	found, _ := filepath.Glob(filepath.Join(dir, render.TempPrefix+"*"))
	return found
}

// Many updates of more destinations than spares are kept, over several
// starts and stops of Run: at most 16 spares at a time, each a file on
// disk, and no descriptor or file left once Run has returned.
func TestSparesLeakNothingAcrossRuns(t *testing.T) {
	const dests = 20
	cs, url := startServer(t, "dev", map[string]any{"v": "0"})
	dir := t.TempDir()
	text := baseConfig(url)
	for i := range dests {
		text += templateBlock(t, dir, fmt.Sprintf("f%d.conf", i), "v={{.Settings.v}}\n", "")
	}
	a, _ := newTestAgent(t, dir, text)
	last := filepath.Join(dir, fmt.Sprintf("f%d.conf", dests-1))
	runAgent(t, a)()
	before := openFDs(t)

	for run := range 3 {
		stop := runAgent(t, a)
		for i := range 10 {
			v := fmt.Sprintf("%d.%d", run, i)
			post(t, cs, "dev", map[string]any{"v": v})
			eventually(t, 10*time.Second, fileHas(last, "v="+v+"\n"))
			eventually(t, 10*time.Second, func() string {
				held, temps := render.SparePaths(), tempsIn(dir)
				if len(held) != 16 || len(temps) != len(held) {
					return fmt.Sprintf("%d spares, %d temporary files; want 16 of each", len(held), len(temps))
				}
				return ""
			})
		}
		stop()
		if left := tempsIn(dir); len(left) > 0 {
			t.Fatalf("run %d: left %q", run, left)
		}
		eventually(t, 10*time.Second, func() string {
			if n := openFDs(t); n > before {
				return fmt.Sprintf("run %d: %d descriptors open, %d before", run, n, before)
			}
			return ""
		})
	}
}

// Two agents in one program: when one stops, the other keeps its spares
// (a config reload drops only the reloading agent's, the same way).
func TestOneAgentStoppingKeepsTheOthersSpares(t *testing.T) {
	_, url := startServer(t, "dev", map[string]any{"v": "1"})
	dirA, dirB := t.TempDir(), t.TempDir()
	a, _ := newTestAgent(t, dirA, baseConfig(url)+templateBlock(t, dirA, "a.conf", "v={{.Settings.v}}\n", ""))
	b, _ := newTestAgent(t, dirB, baseConfig(url)+templateBlock(t, dirB, "b.conf", "v={{.Settings.v}}\n", ""))
	stopA := runAgent(t, a)
	stopB := runAgent(t, b)
	defer stopB()
	oneSpare := func(dir string) func() string {
		return func() string {
			if n := len(tempsIn(dir)); n != 1 {
				return fmt.Sprintf("%d temporary files in %s, want a spare", n, dir)
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, oneSpare(dirA))
	eventually(t, 10*time.Second, oneSpare(dirB))
	spareB := tempsIn(dirB)[0]

	stopA()
	if left := tempsIn(dirA); len(left) > 0 {
		t.Fatalf("the stopped agent left %q", left)
	}
	if _, err := os.Stat(spareB); err != nil {
		t.Fatalf("the running agent's spare went when the other stopped: %v", err)
	}
	held := strings.Join(render.SparePaths(), " ")
	if !strings.Contains(held, spareB) {
		t.Fatalf("spares %q: the running agent's %s is no longer held", held, spareB)
	}
}

// A config reload that gives a destination another mode and owner while
// its spare waits: the next update's file has the new mode and owner, and
// the spare made under the old config is gone.
func TestReloadChangesModeAndOwnerWhileASpareWaits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: chown needs root (CI runs the tests as root)")
	}
	cs, url := startServer(t, "dev", map[string]any{"v": "1"})
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	block := templateBlock(t, dir, "app.conf", "v={{.Settings.v}}\n", "")
	path := writeFile(t, dir, "sseconfd.toml", baseConfig(url)+block+"mode = \"0644\"\n")
	a, err := Load(path, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(dest, "v=1\n"))
	eventually(t, 10*time.Second, func() string {
		if len(tempsIn(dir)) != 1 {
			return fmt.Sprintf("temporary files %q, want a spare", tempsIn(dir))
		}
		return ""
	})
	old := tempsIn(dir)[0]

	writeFile(t, dir, "sseconfd.toml", baseConfig(url)+
		block+"mode = \"0600\"\nuser = \"65534\"\ngroup = \"65534\"\n")
	if _, err := a.ReloadConfig(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	post(t, cs, "dev", map[string]any{"v": "2"})
	eventually(t, 10*time.Second, fileHas(dest, "v=2\n"))
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("%s: mode %v owner %d:%d, want 0600 65534:65534", dest, fi.Mode().Perm(), st.Uid, st.Gid)
	}
	if _, err := os.Stat(old); err == nil {
		t.Fatalf("the spare made under the old config, %s, is still there", old)
	}
}

// A reload command started while spares wait inherits none of their
// descriptors.
func TestReloadCommandInheritsNoSpare(t *testing.T) {
	cs, url := startServer(t, "dev", map[string]any{"a": "1", "b": "1"})
	dir := t.TempDir()
	out := filepath.Join(dir, "fds.txt")
	text := baseConfig(url) +
		templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", "") +
		templateBlock(t, dir, "b.conf", "b={{.Settings.b}}\n", "list") +
		fmt.Sprintf("\n[[reload]]\nname = \"list\"\ncommand = \"ls -l /proc/$$/fd/ > %s\"\n", out)
	a, _ := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "b.conf"), "b=1\n"))
	eventually(t, 10*time.Second, func() string {
		if n := len(render.SparePaths()); n != 2 {
			return fmt.Sprintf("%d spares, want 2", n)
		}
		return ""
	})
	os.Remove(out)

	post(t, cs, "dev", map[string]any{"a": "1", "b": "2"}) // a.conf's spare waits meanwhile
	eventually(t, 10*time.Second, fileHas(out, "0"))
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "b.conf"), "b=2\n"))
	b, _ := os.ReadFile(out)
	if strings.Contains(string(b), render.TempPrefix) {
		t.Fatalf("the reload command inherited a spare:\n%s", b)
	}
}
